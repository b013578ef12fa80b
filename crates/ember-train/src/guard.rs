//! Numerical guards: what a run does when a loss or an update stops being finite, and which
//! parameter went bad.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use crate::parameters::for_each_float_parameter;
use serde::{Deserialize, Serialize};

/// What the loop does when a step's loss or updated parameters are not finite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NonFinitePolicy {
    /// Stop with an error naming the step and the first non-finite parameter; the last good
    /// checkpoint stays. Costs nothing per step: losses are read once per metrics line.
    #[default]
    Stop,
    /// Undo the step (model, BatchNorm statistics, optimizer state) and go on with the next batch;
    /// stop after [`MAX_CONSECUTIVE_SKIPS`] skipped steps in a row. Reads the loss and a checksum of
    /// the parameters every step (one host sync per step).
    Skip,
}

/// Consecutive skipped steps after which [`NonFinitePolicy::Skip`] gives up and stops.
pub const MAX_CONSECUTIVE_SKIPS: usize = 25;

/// Whether `loss` and every float tensor of `model` are finite, with one host read: the sum of
/// `loss` and of `0·x` over all parameters is NaN exactly when one of them is NaN or infinite.
pub fn step_is_finite<M: Module>(loss: &Tensor<1>, model: &M) -> bool {
    struct ZeroSum(Option<Tensor<1>>);
    impl ModuleVisitor for ZeroSum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let zero = param
                .val()
                .inner()
                .mul_scalar(0.0)
                .sum()
                .cast(burn::tensor::DType::F32);
            self.0 = Some(match self.0.take() {
                Some(acc) => acc + zero,
                None => zero,
            });
        }
    }
    let mut sum = ZeroSum(Some(
        loss.clone().inner().sum().cast(burn::tensor::DType::F32),
    ));
    model.visit(&mut sum);
    sum.0
        .expect("started with the loss")
        .into_scalar::<f64>()
        .is_finite()
}

/// The path (e.g. `stages.0.blocks.1.conv.weight`) of the first float tensor of `model` holding a
/// NaN or an infinity, or `None` when all are finite.
pub fn first_non_finite_parameter<M: Module>(model: &M) -> Option<String> {
    let mut found = None;
    for_each_float_parameter(model, |path, _, values| {
        if found.is_none() {
            let check: f64 = (values.clone() - values).sum().into_scalar::<f64>();
            if !check.is_finite() {
                found = Some(path.to_string());
            }
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use burn::module::ModuleMapper;
    use burn::nn::{Linear, LinearConfig};

    use super::*;

    #[derive(Module, Debug)]
    struct Two {
        first: Linear,
        second: Linear,
    }

    /// Puts `value` into element 0 of every float tensor whose id is `target`.
    struct Poison {
        target: burn::module::ParamId,
        value: f32,
    }

    impl ModuleMapper for Poison {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if param.id != self.target {
                return param;
            }
            let value = self.value;
            param.map(|t| {
                let mut data = t.to_data().convert::<f32>().try_into_vec::<f32>().unwrap();
                data[0] = value;
                Tensor::from_data(burn::tensor::TensorData::new(data, t.shape()), &t.device())
            })
        }
    }

    fn two() -> Two {
        let device = Device::flex();
        Two {
            first: LinearConfig::new(3, 4).init(&device),
            second: LinearConfig::new(4, 2).init(&device),
        }
    }

    #[test]
    fn finds_the_first_bad_parameter_by_path() {
        let model = two();
        assert_eq!(first_non_finite_parameter(&model), None);
        let loss = Tensor::<1>::from_floats([0.5], &Device::flex());
        assert!(step_is_finite(&loss, &model));

        for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let target = model.second.weight.id;
            let bad = model.clone().map(&mut Poison { target, value });
            assert_eq!(
                first_non_finite_parameter(&bad).as_deref(),
                Some("second.weight"),
                "{value}"
            );
            assert!(!step_is_finite(&loss, &bad), "{value}");
        }
        let nan_loss = Tensor::<1>::from_floats([f32::NAN], &Device::flex());
        assert!(!step_is_finite(&nan_loss, &model));
    }
}
