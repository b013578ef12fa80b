//! Float parameters by module path (`stages.0.blocks.1.conv.weight`: burn's field names joined by
//! dots), the name a diagnostic, a replay kit or a test gives a parameter.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

/// Calls `visit(path, shape, values)` for every float parameter of `model`, in burn's visiting
/// order, `values` flattened to one dimension (`shape` is the parameter's own).
pub fn for_each_float_parameter<M: Module>(
    model: &M,
    mut visit: impl FnMut(&str, &[usize], Tensor<1>),
) {
    struct PathVisitor<'a> {
        path: Vec<String>,
        visit: &'a mut dyn FnMut(&str, &[usize], Tensor<1>),
    }
    impl ModuleVisitor for PathVisitor<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            let shape = tensor.dims();
            (self.visit)(&self.path.join("."), &shape, tensor.flatten(0, D - 1));
        }
    }
    model.visit(&mut PathVisitor {
        path: Vec::new(),
        visit: &mut visit,
    });
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};

    use super::*;
    use crate::DeviceChoice;

    #[derive(Module, Debug)]
    struct Outer {
        inner: Inner,
        head: Linear,
    }

    #[derive(Module, Debug)]
    struct Inner {
        layers: Vec<Linear>,
    }

    #[test]
    fn paths_join_field_names_and_values_keep_their_order() {
        let device = DeviceChoice::Flex.device().unwrap();
        let model = Outer {
            inner: Inner {
                layers: vec![LinearConfig::new(2, 3).init(&device)],
            },
            head: LinearConfig::new(3, 1).with_bias(false).init(&device),
        };
        let mut seen = Vec::new();
        for_each_float_parameter(&model, |path, shape, values| {
            seen.push((path.to_string(), shape.to_vec(), values.dims()[0]));
        });
        let expected = [
            ("inner.layers.0.weight", vec![2, 3], 6),
            ("inner.layers.0.bias", vec![3], 3),
            ("head.weight", vec![3, 1], 3),
        ];
        let expected: Vec<_> = expected
            .into_iter()
            .map(|(p, s, n)| (p.to_string(), s, n))
            .collect();
        assert_eq!(seen, expected);
        let weight = model.inner.layers[0].weight.val().into_data();
        for_each_float_parameter(&model, |path, _, values| {
            if path == "inner.layers.0.weight" {
                assert_eq!(
                    values.into_data().as_slice::<f32>(),
                    weight.as_slice::<f32>()
                );
            }
        });
    }
}
