//! Models for Ember's optimizer comparisons.
//!
//! Every model is a plain burn 0.22 `#[derive(Module)]` struct with a `#[derive(Config)]` config whose
//! `init(&Device)` validates the configuration first, so a bad width or class count is reported with
//! the field's name instead of surfacing later as a shape panic deep inside a kernel.

#![warn(missing_docs)]

mod causal_decoder;
mod classifier;
mod error;
mod mlp;
mod signal_noise_attention;
mod small_cnn;
mod transformer;

pub use causal_decoder::{CausalDecoder, CausalDecoderConfig};
pub use classifier::{AnyClassifier, ImageClassifier};
pub use error::ModelConfigError;
pub use mlp::{Mlp, MlpConfig};
pub use signal_noise_attention::{Probes, SignalNoiseAttention, SignalNoiseAttentionConfig};
pub use small_cnn::{ConvBlock, SmallCnn, SmallCnnConfig, SmallCnnLayer, Stage};
pub use transformer::{
    patchify, EncoderBlock, TokenPool, TwoLayerTransformer, TwoLayerTransformerConfig,
};
