use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

use crate::{ImageClassifier, ModelConfigError};

/// Configuration of [`SmallCnn`]: stages of `convs_per_stage` × [conv3×3 → BatchNorm → ReLU], each
/// followed by a 2×2 max-pool, then global average pooling and a linear head.
///
/// The defaults (widths 32/64/128, two convs per stage) give 288,746 trainable parameters (plus 896
/// BatchNorm running statistics) for 3-channel input and 10 classes — small enough to train on two CPU cores, deep enough that optimizers differ.
#[derive(Config, Debug)]
pub struct SmallCnnConfig {
    /// Channels of the input images (3 for CIFAR, 1 for Fashion-MNIST).
    pub in_channels: usize,
    /// Number of classes, i.e. the width of the linear head.
    pub num_classes: usize,
    /// Output channels of each stage; one 2×2 max-pool per stage.
    #[config(default = "vec![32, 64, 128]")]
    pub stage_widths: Vec<usize>,
    /// Conv → BatchNorm → ReLU blocks per stage.
    #[config(default = 2)]
    pub convs_per_stage: usize,
}

/// Conv3×3 (no bias: the BatchNorm shift makes it redundant) → BatchNorm → ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: BatchNorm,
    activation: Relu,
}

/// A stage of conv blocks at one resolution, closed by a 2×2 max-pool that halves it.
#[derive(Module, Debug)]
pub struct Stage {
    blocks: Vec<ConvBlock>,
    pool: MaxPool2d,
}

/// A small VGG-style CNN for 32×32 (or 28×28) images; the project's reference model for comparing
/// optimizers on image classification.
#[derive(Module, Debug)]
pub struct SmallCnn {
    stages: Vec<Stage>,
    global_pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl SmallCnnConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        if self.in_channels == 0 {
            return Err(ModelConfigError::new("in_channels", "must be at least 1"));
        }
        if self.num_classes < 2 {
            return Err(ModelConfigError::new(
                "num_classes",
                format!("must be at least 2, got {}", self.num_classes),
            ));
        }
        if self.stage_widths.is_empty() || self.stage_widths.contains(&0) {
            return Err(ModelConfigError::new(
                "stage_widths",
                format!(
                    "needs at least one stage and no zero width, got {:?}",
                    self.stage_widths
                ),
            ));
        }
        if self.convs_per_stage == 0 {
            return Err(ModelConfigError::new(
                "convs_per_stage",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Trainable parameters (weights, BatchNorm scales and shifts, head), computed from the config;
    /// burn's `num_params` also counts the BatchNorm running statistics.
    pub fn trainable_params(&self) -> usize {
        let mut channels = self.in_channels;
        let mut total = 0;
        for &width in &self.stage_widths {
            for _ in 0..self.convs_per_stage {
                total += channels * width * 9 + 2 * width;
                channels = width;
            }
        }
        total + channels * self.num_classes + self.num_classes
    }

    /// The smallest square input that survives every stage's 2×2 pooling.
    pub fn min_image_size(&self) -> usize {
        1 << self.stage_widths.len()
    }

    /// Builds the model on `device` after validating the config.
    pub fn init(&self, device: &Device) -> Result<SmallCnn, ModelConfigError> {
        self.validate()?;
        let mut channels = self.in_channels;
        let stages = self
            .stage_widths
            .iter()
            .map(|&width| {
                let blocks = (0..self.convs_per_stage)
                    .map(|_| {
                        let block = ConvBlock {
                            conv: Conv2dConfig::new([channels, width], [3, 3])
                                .with_padding(PaddingConfig2d::Same)
                                .with_bias(false)
                                .init(device),
                            norm: BatchNormConfig::new(width).init(device),
                            activation: Relu::new(),
                        };
                        channels = width;
                        block
                    })
                    .collect();
                Stage {
                    blocks,
                    pool: MaxPool2dConfig::new([2, 2]).init(),
                }
            })
            .collect();
        Ok(SmallCnn {
            stages,
            global_pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(channels, self.num_classes).init(device),
        })
    }
}

/// One of SmallCnn's layers on its own, for tools that run them one at a time (`ember bench
/// profile` times each against PyTorch's profile of the same layer).
#[derive(Debug)]
pub enum SmallCnnLayer {
    /// A 3×3 convolution (padding 1, no bias: the BatchNorm after it has one).
    Conv(Conv2d),
    /// Batch normalisation after each convolution.
    Norm(BatchNorm),
    /// The activation after each BatchNorm.
    Relu(Relu),
    /// The 2×2 max-pool that ends each stage.
    Pool(MaxPool2d),
    /// Global average pooling; the classifier flattens its `[batch, channels, 1, 1]` output to
    /// `[batch, channels]` before the head.
    GlobalPool(AdaptiveAvgPool2d),
    /// The linear classifier on the pooled features.
    Head(Linear),
}

impl SmallCnn {
    /// The layers in forward order, named as the PyTorch profile names them: `conv1`, `bn1`,
    /// `relu1`, … (numbered across stages), `pool1`, … (one per stage), `gap`, `head`.
    pub fn into_layers(self) -> Vec<(String, SmallCnnLayer)> {
        let mut layers = Vec::new();
        let mut index = 0;
        for (stage_index, stage) in self.stages.into_iter().enumerate() {
            for block in stage.blocks {
                index += 1;
                layers.push((format!("conv{index}"), SmallCnnLayer::Conv(block.conv)));
                layers.push((format!("bn{index}"), SmallCnnLayer::Norm(block.norm)));
                layers.push((
                    format!("relu{index}"),
                    SmallCnnLayer::Relu(block.activation),
                ));
            }
            let name = format!("pool{}", stage_index + 1);
            layers.push((name, SmallCnnLayer::Pool(stage.pool)));
        }
        layers.push(("gap".into(), SmallCnnLayer::GlobalPool(self.global_pool)));
        layers.push(("head".into(), SmallCnnLayer::Head(self.head)));
        layers
    }
}

impl ConvBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = ember_kernels::nn::conv2d(&self.conv, x);
        self.activation
            .forward(ember_kernels::nn::batch_norm(&self.norm, x))
    }
}

impl SmallCnnLayer {
    /// The layer on a batch of feature maps, as [`SmallCnn`] runs it (conv, BatchNorm and max-pool
    /// on Ember's CPU kernels where the device is flex); `None` for the head, which takes the pooled
    /// features flattened.
    pub fn forward_maps(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        match self {
            Self::Conv(conv) => Some(ember_kernels::nn::conv2d(conv, x)),
            Self::Norm(norm) => Some(ember_kernels::nn::batch_norm(norm, x)),
            Self::Relu(relu) => Some(relu.forward(x)),
            Self::Pool(pool) => Some(ember_kernels::nn::max_pool2d(pool, x)),
            Self::GlobalPool(pool) => Some(pool.forward(x)),
            Self::Head(_) => None,
        }
    }
}

impl Stage {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        ember_kernels::nn::max_pool2d(&self.pool, x)
    }
}

impl ImageClassifier for SmallCnn {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.stages.iter().fold(images, |x, stage| stage.forward(x));
        // [batch, channels, 1, 1] -> [batch, channels]
        let x = self.global_pool.forward(x).flatten::<2>(1, 3);
        self.head.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn default_width_has_the_documented_parameter_count() {
        let model = SmallCnnConfig::new(3, 10).init(&device()).unwrap();
        // convs: 3·32·9 + 32·32·9 + 32·64·9 + 64·64·9 + 64·128·9 + 128·128·9 = 286,560
        // batch norms (gamma, beta): 2·(32+32+64+64+128+128) = 896; head: 128·10 + 10 = 1,290.
        // burn's `num_params` also counts the BatchNorm running mean and variance (another 896).
        let trainable = 286_560 + 896 + 1_290;
        assert_eq!(trainable, 288_746);
        assert_eq!(SmallCnnConfig::new(3, 10).trainable_params(), trainable);
        assert_eq!(model.num_params(), trainable + 896);
    }

    #[test]
    fn the_layers_one_at_a_time_are_the_model() {
        let dev = device();
        dev.seed(3);
        let config = SmallCnnConfig::new(3, 10).with_stage_widths(vec![4, 8]);
        let model = config.init(&dev).unwrap();
        let x = Tensor::<4>::random([2, 3, 8, 8], burn::tensor::Distribution::Default, &dev);
        let whole = model.forward(x.clone()).into_data();
        let layers = model.into_layers();
        let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv1", "bn1", "relu1", "conv2", "bn2", "relu2", "pool1", "conv3", "bn3", "relu3",
                "conv4", "bn4", "relu4", "pool2", "gap", "head"
            ]
        );
        let (mut image, mut flat) = (Some(x), None);
        for (_, layer) in &layers {
            match layer {
                SmallCnnLayer::Conv(_)
                | SmallCnnLayer::Norm(_)
                | SmallCnnLayer::Relu(_)
                | SmallCnnLayer::Pool(_) => image = image.map(|x| layer.forward_maps(x).unwrap()),
                SmallCnnLayer::GlobalPool(l) => {
                    flat = image.take().map(|x| l.forward(x).flatten::<2>(1, 3))
                }
                SmallCnnLayer::Head(l) => flat = flat.map(|x| l.forward(x)),
            }
        }
        assert_eq!(flat.unwrap().into_data(), whole);
    }

    #[test]
    fn cifar_and_mnist_shapes_give_logits_per_class() {
        let dev = device();
        let cifar = SmallCnnConfig::new(3, 10).init(&dev).unwrap();
        let x = Tensor::<4>::zeros([2, 3, 32, 32], &dev);
        assert_eq!(cifar.forward(x).dims(), [2, 10]);

        let mnist = SmallCnnConfig::new(1, 7)
            .with_stage_widths(vec![8, 16, 16])
            .with_convs_per_stage(1)
            .init(&dev)
            .unwrap();
        let x = Tensor::<4>::zeros([3, 1, 28, 28], &dev);
        assert_eq!(mnist.forward(x).dims(), [3, 7]);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let dev = device();
        let err = SmallCnnConfig::new(3, 1).init(&dev).unwrap_err();
        assert_eq!(err.field, "num_classes");
        let err = SmallCnnConfig::new(3, 10)
            .with_stage_widths(vec![32, 0])
            .init(&dev)
            .unwrap_err();
        assert_eq!(err.field, "stage_widths");
        assert!(err.to_string().contains("stage_widths"));
        let err = SmallCnnConfig::new(0, 10).init(&dev).unwrap_err();
        assert_eq!(err.field, "in_channels");
    }

    #[test]
    fn batch_norm_makes_train_and_eval_outputs_differ_until_stats_settle() {
        // In training mode BatchNorm normalises with batch statistics; `valid()` uses the running
        // statistics, which start at mean 0 / var 1. On a non-centred input the two must differ.
        let dev = device().autodiff();
        let model = SmallCnnConfig::new(1, 3)
            .with_stage_widths(vec![4])
            .with_convs_per_stage(1)
            .init(&dev)
            .unwrap();
        let x = Tensor::<4>::ones([2, 1, 8, 8], &dev).add_scalar(5.0);
        let train = model.forward(x.clone()).into_data();
        let eval = model.valid().forward(x.inner()).into_data();
        assert_ne!(train, eval);
    }
}
