use burn::nn::{Linear, LinearConfig, Relu};
use burn::prelude::*;

use crate::{ImageClassifier, ModelConfigError};

/// Configuration of [`Mlp`]: the image flattened, hidden layers of `Linear → ReLU`, a linear head.
///
/// The default (one hidden layer of 256) on 28×28 grey images is the kind of MLP the VAMO paper
/// trains on MNIST: 203,530 parameters, cheap enough for zeroth-order methods' many forward passes.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Values per input image (channels × height × width).
    pub input_size: usize,
    /// Number of classes, i.e. the width of the head.
    pub num_classes: usize,
    /// Width of each hidden layer (empty: a linear classifier).
    #[config(default = "vec![256]")]
    pub hidden: Vec<usize>,
}

/// A multi-layer perceptron over flattened images.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    activation: Relu,
    head: Linear,
}

impl MlpConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        if self.input_size == 0 {
            return Err(ModelConfigError::new("input_size", "must be at least 1"));
        }
        if self.num_classes < 2 {
            return Err(ModelConfigError::new(
                "num_classes",
                format!("must be at least 2, got {}", self.num_classes),
            ));
        }
        if self.hidden.contains(&0) {
            return Err(ModelConfigError::new(
                "hidden",
                format!("no hidden layer may have width 0, got {:?}", self.hidden),
            ));
        }
        Ok(())
    }

    /// Trainable parameters (weights and biases).
    pub fn trainable_params(&self) -> usize {
        let mut width = self.input_size;
        let mut total = 0;
        for &h in self.hidden.iter().chain(std::iter::once(&self.num_classes)) {
            total += width * h + h;
            width = h;
        }
        total
    }

    /// Builds the model on `device` after validating the config.
    pub fn init(&self, device: &Device) -> Result<Mlp, ModelConfigError> {
        self.validate()?;
        let mut width = self.input_size;
        let hidden = self
            .hidden
            .iter()
            .map(|&h| {
                let layer = LinearConfig::new(width, h).init(device);
                width = h;
                layer
            })
            .collect();
        Ok(Mlp {
            hidden,
            activation: Relu::new(),
            head: LinearConfig::new(width, self.num_classes).init(device),
        })
    }
}

impl ImageClassifier for Mlp {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x: Tensor<2> = images.flatten(1, 3);
        for layer in &self.hidden {
            x = self.activation.forward(layer.forward(x));
        }
        self.head.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_matches_burn_and_shapes_flow() {
        let device = Device::flex();
        let config = MlpConfig::new(784, 10);
        assert_eq!(config.trainable_params(), 784 * 256 + 256 + 256 * 10 + 10);
        let model = config.init(&device).unwrap();
        assert_eq!(model.num_params(), config.trainable_params());
        let logits = model.forward(Tensor::zeros([3, 1, 28, 28], &device));
        assert_eq!(logits.dims(), [3, 10]);
        let linear = MlpConfig::new(12, 3).with_hidden(vec![]);
        assert_eq!(linear.trainable_params(), 39);
        assert_eq!(linear.init(&device).unwrap().num_params(), 39);
    }

    #[test]
    fn bad_config_names_the_field() {
        let device = Device::flex();
        let err = MlpConfig::new(784, 10)
            .with_hidden(vec![64, 0])
            .init(&device)
            .unwrap_err();
        assert_eq!(err.field, "hidden");
        assert_eq!(
            MlpConfig::new(0, 10).init(&device).unwrap_err().field,
            "input_size"
        );
        assert_eq!(
            MlpConfig::new(5, 1).init(&device).unwrap_err().field,
            "num_classes"
        );
    }
}
