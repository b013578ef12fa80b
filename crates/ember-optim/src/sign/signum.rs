//! Signum: sign descent on a moving average of the gradients.

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::SignDescent;
use crate::field_check::FieldCheck;
use crate::transform::{in_dtype, DecoupledWeightDecay, ExponentialMovingAverage};
use crate::OptimConfigError;
use crate::RecordState;

/// Configuration of [`Signum`]. The learning rate η is not here: burn passes it to each step.
///
/// ```
/// use ember_optim::SignumConfig;
///
/// let optim = SignumConfig::new().with_beta(0.95).init();
/// let err = SignumConfig::new().with_beta(1.0).try_init().err().unwrap();
/// assert_eq!(err.field, "beta");
/// ```
#[derive(Config, Debug)]
pub struct SignumConfig {
    /// β, the momentum of `m ← β·m + (1 − β)·g`; Bernstein et al. use 0.9, and `0` gives SignGD.
    /// Must lie in [0, 1).
    #[config(default = 0.9)]
    pub beta: f64,
    /// λ, decoupled weight decay `θ ← θ·(1 − η·λ)` applied before the sign step (`0`: none).
    /// Must be ≥ 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Per-parameter gradient clipping, applied by the `init` methods only. Unlike in SignGD it
    /// can change the step, since it reweights the gradients that enter the average.
    pub grad_clipping: Option<GradientClippingConfig>,
}

/// Signum, sign descent on a momentum average, per parameter tensor:
///
/// ```text
/// m ← β·m + (1 − β)·g      m starts at 0, so the first step is a SignGD step
/// θ ← θ·(1 − η·λ)          decoupled weight decay, first (skipped when λ = 0)
/// θ ← θ − η·sign(m)        element-wise, sign(0) = 0
/// ```
///
/// From Bernstein, Wang, Azizzadenesheli, Anandkumar, *signSGD: Compressed Optimisation for
/// Non-Convex Problems*, ICML 2018 ([arXiv:1802.04434](https://arxiv.org/abs/1802.04434)); it is
/// the momentum form of the SignGD that Li, Huang, Han, Zhou, Suzuki, Zhu, Chen analyse as a
/// surrogate for Adam in *On the Optimization and Generalization of Two-layer Transformers with
/// Sign Gradient Descent*, ICLR 2025 ([arXiv:2410.04870](https://arxiv.org/abs/2410.04870)).
/// It is burn's Lion with `β₁ = β₂`.
///
/// Built from [`ExponentialMovingAverage`] and [`SignDescent`]; `m` stays in the parameter's
/// dtype.
#[derive(Clone, Debug)]
pub struct Signum {
    momentum: ExponentialMovingAverage,
    descent: SignDescent,
}

/// State of [`Signum`] for one parameter tensor.
#[derive(RecordState, Clone)]
pub struct SignumState<const D: usize> {
    /// m, the moving average of the gradients (the parameter's shape).
    pub momentum: Tensor<D>,
}

impl SignumConfig {
    /// Checks every field, naming the first one out of range; [`build`](Self::build) and the
    /// `init` methods run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("SignumConfig");
        check.decay("beta", self.beta)?;
        check.non_negative("weight_decay", self.weight_decay)
    }

    /// Build the bare [`Signum`], which
    /// [`ModuleOptimizer::with_group`](burn::optim::ModuleOptimizer::with_group) takes to optimize
    /// one parameter group; [`init`](Self::init) is the whole-module counterpart and the only one
    /// that applies the configured gradient clipping.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] on `beta` unless `0 ≤ β < 1`, or on `weight_decay` when it is
    /// negative or not finite (see [`validate`](Self::validate)).
    pub fn build(&self) -> Result<Signum, OptimConfigError> {
        self.validate()?;
        Ok(Signum {
            momentum: ExponentialMovingAverage { decay: self.beta },
            descent: SignDescent {
                weight_decay: DecoupledWeightDecay {
                    weight_decay: self.weight_decay,
                },
            },
        })
    }

    crate::assemble::module_optimizer_init!();
}

impl Optimizer for Signum {
    type State<const D: usize> = SignumState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let previous = state.map(|state| in_dtype(state.momentum, tensor.dtype()));
        let momentum = self.momentum.update(grad, previous);
        let tensor = self.descent.apply(lr, tensor, momentum.clone());
        (tensor, Some(SignumState { momentum }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{assert_resume_against_opposed_gradient, SignGdConfig};
    use crate::test_util::{
        assert_close, assert_decreases_least_squares, assert_resume, tensor, values,
    };

    fn vector(values: &[f32]) -> Tensor<1> {
        tensor::<1>(values, [values.len()])
    }

    #[test]
    fn one_step_is_a_sign_step_on_the_scaled_gradient() {
        let optim = SignumConfig::new().build().unwrap();
        let (param, state) = optim.step(
            0.1,
            vector(&[1.0, -2.0, 3.0]),
            vector(&[0.3, -4.0, 0.0]),
            None,
        );
        assert_close(&values(param), &[0.9, -1.9, 3.0], 1e-6);
        // m₁ = (1 − 0.9)·g.
        assert_close(&values(state.unwrap().momentum), &[0.03, -0.4, 0.0], 1e-6);
    }

    #[test]
    fn three_steps_follow_the_momentum_not_the_gradient() {
        let optim = SignumConfig::new().with_beta(0.9).build().unwrap();
        let mut param = vector(&[0.0, 0.0, 0.0]);
        let mut state = None;
        for grad in [[1.0, -2.0, 0.0], [-0.5, -1.0, 0.3], [-2.0, 3.0, -0.1]] {
            (param, state) = optim.step(0.1, param, vector(&grad), state);
        }
        // m₁ = 0.1·g₁ = [0.1, −0.2, 0]                    θ₁ = [−0.1, 0.1, 0]
        // m₂ = 0.9·m₁ + 0.1·g₂ = [0.04, −0.28, 0.03]      θ₂ = [−0.2, 0.2, −0.1]
        //   (entry 0 keeps descending although g₂ < 0 there: m still points up)
        // m₃ = 0.9·m₂ + 0.1·g₃ = [−0.164, 0.048, 0.017]   θ₃ = [−0.1, 0.1, −0.2]
        //   (entry 2 keeps descending although g₃ < 0)
        assert_close(&values(param), &[-0.1, 0.1, -0.2], 1e-6);
        assert_close(
            &values(state.unwrap().momentum),
            &[-0.164, 0.048, 0.017],
            1e-6,
        );
    }

    #[test]
    fn zero_beta_is_sign_gd() {
        let signum = SignumConfig::new().with_beta(0.0).build().unwrap();
        let sign_gd = SignGdConfig::new().build().unwrap();
        let mut a = vector(&[1.0, -2.0, 0.5]);
        let mut b = a.clone();
        let mut state = None;
        for grad in [[1.0, -2.0, 0.0], [-0.5, 1.0, 0.3], [2.0, 3.0, -0.1]] {
            (a, state) = signum.step(0.2, a, vector(&grad), state);
            b = sign_gd.step(0.2, b, vector(&grad), None).0;
        }
        assert_eq!(values(a), values(b));
    }

    #[test]
    fn weight_decay_is_decoupled_and_applied_first() {
        let optim = SignumConfig::new().with_weight_decay(0.1).build().unwrap();
        let (param, _) = optim.step(
            0.5,
            vector(&[1.0, -2.0, 4.0]),
            vector(&[0.5, 0.5, -1.0]),
            None,
        );
        // θ·(1 − 0.5·0.1) − 0.5·sign(m) = [0.95 − 0.5, −1.9 − 0.5, 3.8 + 0.5]. The other order
        // would give [0.475, −2.375, 4.275].
        assert_close(&values(param), &[0.45, -2.4, 4.3], 1e-6);
    }

    #[test]
    fn bad_configs_are_rejected_naming_the_field() {
        let field = |config: SignumConfig| config.try_init().err().unwrap().field;
        for bad in [1.0, 1.5, -0.1, f64::NAN] {
            assert_eq!(field(SignumConfig::new().with_beta(bad)), "beta");
        }
        for bad in [-1e-3, f64::INFINITY] {
            assert_eq!(
                field(SignumConfig::new().with_weight_decay(bad)),
                "weight_decay"
            );
        }
        assert_eq!(
            SignumConfig::new().with_beta(1.0).build().unwrap_err().to_string(),
            "invalid optimizer config field `beta`: SignumConfig.beta = 1: expected a number in [0, 1)"
        );
    }

    #[test]
    fn resumes_identically_through_bytes() {
        let create = || SignumConfig::new().with_weight_decay(0.01).init();
        assert_resume(create);
        assert_resume_against_opposed_gradient(create, true);
    }

    #[test]
    fn least_squares_loss_decreases() {
        assert_decreases_least_squares(|| SignumConfig::new().init(), 0.05);
    }
}
