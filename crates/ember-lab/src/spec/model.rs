use burn::prelude::Device;
use ember_data::ImageShape;
use ember_models::{
    AnyClassifier, MlpConfig, SmallCnnConfig, TokenPool, TwoLayerTransformerConfig,
};
use serde::{Deserialize, Serialize};

use super::SpecError;

/// The model a run trains, with its shape; the image size and class count come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelSpec {
    /// SmallCnn: stages of `convs_per_stage` × [conv3×3 → BatchNorm → ReLU] + 2×2 max-pool, one
    /// stage per entry of `widths` (its channels), global pool, linear head.
    Cnn {
        /// Output channels of each stage, one stage per entry (default `[32, 64, 128]`).
        widths: Vec<usize>,
        /// Conv → BatchNorm → ReLU layers per stage (default 2).
        convs_per_stage: usize,
    },
    /// MLP on the flattened image: `hidden` layers of Linear → ReLU, then a linear head.
    Mlp {
        /// Widths of the hidden layers, in order (default `[256]`).
        hidden: Vec<usize>,
    },
    /// ViT-style TwoLayerTransformer.
    Transformer(TransformerSpec),
}

/// The shape of a [`ModelSpec::Transformer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformerSpec {
    /// Side of the square patches that become tokens (must divide the image size).
    pub patch_size: usize,
    /// Width of the token states.
    pub dim: usize,
    /// Attention heads (must divide `dim`).
    pub heads: usize,
    /// Hidden width of each block's MLP.
    pub mlp_dim: usize,
    /// Pre-norm encoder blocks.
    pub blocks: usize,
    /// What the head classifies.
    pub pool: TokenPoolSpec,
}

/// [`TokenPool`] with the names the command line and `config.json` use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenPoolSpec {
    /// Classify the final state of a learned class token (ViT).
    ClassToken,
    /// Classify the mean of the final token states.
    Mean,
}

impl From<TokenPoolSpec> for TokenPool {
    fn from(p: TokenPoolSpec) -> Self {
        match p {
            TokenPoolSpec::ClassToken => TokenPool::ClassToken,
            TokenPoolSpec::Mean => TokenPool::Mean,
        }
    }
}

impl ModelSpec {
    /// Every model kind with the shape `ember train` uses by default.
    pub fn defaults() -> Vec<ModelSpec> {
        vec![
            ModelSpec::Cnn {
                widths: vec![32, 64, 128],
                convs_per_stage: 2,
            },
            ModelSpec::Mlp { hidden: vec![256] },
            ModelSpec::Transformer(TransformerSpec {
                patch_size: 4,
                dim: 64,
                heads: 4,
                mlp_dim: 128,
                blocks: 2,
                pool: TokenPoolSpec::ClassToken,
            }),
        ]
    }

    /// The `kind` a spec file and `--model` name it by.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Cnn { .. } => "cnn",
            ModelSpec::Mlp { .. } => "mlp",
            ModelSpec::Transformer(_) => "transformer",
        }
    }

    /// The model's type name, for the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            ModelSpec::Cnn { .. } => "SmallCnn",
            ModelSpec::Mlp { .. } => "Mlp",
            ModelSpec::Transformer(_) => "TwoLayerTransformer",
        }
    }

    /// A freshly initialised model for images of `shape` and `classes` classes (initialised from
    /// the device's generator: seed it first).
    pub fn init(
        &self,
        shape: &ImageShape,
        classes: usize,
        device: &Device,
    ) -> Result<AnyClassifier, SpecError> {
        let bad = |e: ember_models::ModelConfigError| SpecError::new("model", e.to_string());
        Ok(match self {
            ModelSpec::Cnn {
                widths,
                convs_per_stage,
            } => {
                let config = SmallCnnConfig::new(shape.channels, classes)
                    .with_stage_widths(widths.clone())
                    .with_convs_per_stage(*convs_per_stage);
                if shape.height.min(shape.width) < config.min_image_size() {
                    return Err(SpecError::new(
                        "model.widths",
                        format!(
                            "images of {}x{} are too small for {} pooling stages (need at least {} pixels a side)",
                            shape.height,
                            shape.width,
                            widths.len(),
                            config.min_image_size()
                        ),
                    ));
                }
                config.init(device).map_err(bad)?.into()
            }
            ModelSpec::Mlp { hidden } => {
                MlpConfig::new(shape.channels * shape.height * shape.width, classes)
                    .with_hidden(hidden.clone())
                    .init(device)
                    .map_err(bad)?
                    .into()
            }
            ModelSpec::Transformer(t) => {
                TwoLayerTransformerConfig::new(shape.channels, shape.height, shape.width, classes)
                    .with_patch_size(t.patch_size)
                    .with_dim(t.dim)
                    .with_heads(t.heads)
                    .with_mlp_dim(t.mlp_dim)
                    .with_blocks(t.blocks)
                    .with_pool(t.pool.into())
                    .init(device)
                    .map_err(bad)?
                    .into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cnn_too_deep_for_the_images_names_its_widths() {
        let device = ember_train::DeviceChoice::Flex.device().unwrap();
        let shape = ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        let deep = ModelSpec::Cnn {
            widths: vec![4, 4, 4],
            convs_per_stage: 1,
        };
        let err = deep.init(&shape, 2, &device).err().unwrap();
        assert_eq!(err.field, "model.widths");
        assert!(
            err.message.contains("too small for 3 pooling stages"),
            "{err}"
        );
        let shallow = ModelSpec::Cnn {
            widths: vec![4, 4],
            convs_per_stage: 1,
        };
        assert!(shallow.init(&shape, 2, &device).is_ok());
    }
}
