//! A small GPT-style causal decoder for language modelling, built from the same pre-norm blocks
//! as [`crate::TwoLayerTransformer`] with a causal attention mask.

use burn::module::Param;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm, Linear, LinearConfig};
use burn::prelude::*;

use crate::transformer::{layer_norm, normalize, EncoderBlock};
use crate::ModelConfigError;

/// Configuration of [`CausalDecoder`]: token embedding + learned positions, `blocks` pre-norm
/// blocks (LayerNorm → causal multi-head self-attention → residual, LayerNorm → Linear → GELU →
/// Linear → residual), a final LayerNorm and a linear head over the vocabulary — the head's
/// weights tied to the embedding's when `tie_embeddings` (GPT-2's choice; it saves
/// `vocab · dim` parameters).
///
/// The defaults (`dim` 128, 4 heads, MLP 512, 4 blocks, context 128) on a 65-character
/// vocabulary give 826,433 trainable parameters untied (see
/// [`trainable_params`](Self::trainable_params)).
#[derive(Config, Debug)]
pub struct CausalDecoderConfig {
    /// Tokens in the vocabulary (256 for bytes).
    pub vocab_size: usize,
    /// Longest sequence the model reads (its learned positions).
    #[config(default = 128)]
    pub context: usize,
    /// Width of the token states (the embedding size).
    #[config(default = 128)]
    pub dim: usize,
    /// Attention heads per block (must divide `dim`).
    #[config(default = 4)]
    pub heads: usize,
    /// Hidden width of each block's MLP.
    #[config(default = 512)]
    pub mlp_dim: usize,
    /// Number of pre-norm decoder blocks.
    #[config(default = 4)]
    pub blocks: usize,
    /// Whether the head reuses the token embedding (logits = states · embeddingᵀ + bias).
    #[config(default = false)]
    pub tie_embeddings: bool,
}

/// The decoder; see [`CausalDecoderConfig`].
#[derive(Module, Debug)]
pub struct CausalDecoder {
    embedding: Embedding,
    /// `[1, context, dim]`.
    positions: Param<Tensor<3>>,
    blocks: Vec<EncoderBlock>,
    norm: LayerNorm,
    /// Absent when tied: the embedding's weights are the head's.
    head: Option<Linear>,
    /// The tied head's bias `[vocab]`.
    head_bias: Option<Param<Tensor<1>>>,
}

impl CausalDecoderConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        for (field, value) in [
            ("context", self.context),
            ("dim", self.dim),
            ("heads", self.heads),
            ("mlp_dim", self.mlp_dim),
            ("blocks", self.blocks),
        ] {
            if value == 0 {
                return Err(ModelConfigError::new(field, "must be at least 1"));
            }
        }
        if self.vocab_size < 2 {
            return Err(ModelConfigError::new(
                "vocab_size",
                format!("must be at least 2, got {}", self.vocab_size),
            ));
        }
        if !self.dim.is_multiple_of(self.heads) {
            return Err(ModelConfigError::new(
                "heads",
                format!("dim {} is not divisible by {} heads", self.dim, self.heads),
            ));
        }
        Ok(())
    }

    /// Trainable parameters, computed from the config.
    pub fn trainable_params(&self) -> usize {
        let (v, d, m) = (self.vocab_size, self.dim, self.mlp_dim);
        let linear = |inputs: usize, outputs: usize| inputs * outputs + outputs;
        let layer_norm = 2 * d;
        let block = layer_norm + 4 * linear(d, d) + layer_norm + linear(d, m) + linear(m, d);
        let head = if self.tie_embeddings { v } else { linear(d, v) };
        v * d + self.context * d + self.blocks * block + layer_norm + head
    }

    /// Builds the model on `device` after validating the config.
    pub fn init(&self, device: &Device) -> Result<CausalDecoder, ModelConfigError> {
        self.validate()?;
        let d = self.dim;
        // GPT-2's initialisation of embeddings and positions: N(0, 0.02²).
        let small = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Ok(CausalDecoder {
            embedding: EmbeddingConfig::new(self.vocab_size, d)
                .with_initializer(small.clone())
                .init(device),
            positions: small.init([1, self.context, d], device),
            blocks: (0..self.blocks)
                .map(|_| EncoderBlock::init(d, self.heads, self.mlp_dim, device))
                .collect(),
            norm: layer_norm(d, device),
            head: (!self.tie_embeddings)
                .then(|| LinearConfig::new(d, self.vocab_size).init(device)),
            head_bias: self
                .tie_embeddings
                .then(|| Initializer::Zeros.init([self.vocab_size], device)),
        })
    }
}

impl CausalDecoder {
    /// Next-token logits `[batch, tokens, vocab]` for `tokens` `[batch, tokens]` (at most the
    /// context): position `t`'s logits depend only on tokens `0..=t`.
    ///
    /// # Panics
    /// If the sequence is longer than the context the model was built for.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [batch, length] = tokens.dims();
        let [_, context, dim] = self.positions.dims();
        assert!(
            length <= context,
            "the model reads at most {context} tokens, got {length}"
        );
        let device = tokens.device();
        let x = self.embedding.forward(tokens) + self.positions.val().narrow(1, 0, length);
        let mask = generate_autoregressive_mask(batch, length, &device);
        let x = self
            .blocks
            .iter()
            .fold(x, |x, block| block.forward(x, Some(mask.clone())));
        let x = normalize(&self.norm, x);
        match (&self.head, &self.head_bias) {
            (Some(head), _) => ember_kernels::nn::linear(head, x),
            (None, Some(bias)) => {
                let weight = self.embedding.weight.val(); // [vocab, dim]
                let vocab = weight.dims()[0];
                let logits = x
                    .reshape([batch * length, dim])
                    .matmul(weight.transpose())
                    .reshape([batch, length, vocab]);
                logits + bias.val().reshape([1, 1, vocab])
            }
            (None, None) => unreachable!("a decoder has a head or a tied bias"),
        }
    }

    /// The longest sequence the model reads.
    pub fn context(&self) -> usize {
        self.positions.dims()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn device() -> Device {
        Device::flex()
    }

    fn tiny(tie: bool) -> CausalDecoderConfig {
        CausalDecoderConfig::new(11)
            .with_context(8)
            .with_dim(16)
            .with_heads(2)
            .with_mlp_dim(32)
            .with_blocks(2)
            .with_tie_embeddings(tie)
    }

    #[test]
    fn the_parameter_count_is_burns() {
        for tie in [false, true] {
            let config = tiny(tie);
            let model = config.init(&device()).unwrap();
            assert_eq!(model.num_params(), config.trainable_params(), "tie {tie}");
        }
        assert_eq!(
            CausalDecoderConfig::new(65).trainable_params(),
            826_433,
            "the documented default"
        );
    }

    #[test]
    fn a_later_token_never_changes_an_earlier_prediction() {
        for tie in [false, true] {
            let model = tiny(tie).init(&device()).unwrap();
            let a =
                Tensor::<2, Int>::from_data(TensorData::from([[1i64, 2, 3, 4, 5, 6]]), &device());
            let b =
                Tensor::<2, Int>::from_data(TensorData::from([[1i64, 2, 3, 9, 9, 9]]), &device());
            let (la, lb) = (model.forward(a), model.forward(b));
            assert_eq!(la.dims(), [1, 6, 11]);
            let prefix = |l: Tensor<3>| l.narrow(1, 0, 3).into_data().try_to_vec::<f32>().unwrap();
            let after = |l: Tensor<3>| l.narrow(1, 3, 1).into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(
                prefix(la.clone()),
                prefix(lb.clone()),
                "positions 0..3 see only 1, 2, 3"
            );
            assert_ne!(after(la), after(lb), "position 3 sees its own token");
        }
    }

    #[test]
    fn bad_configs_name_the_field() {
        let err = tiny(false)
            .with_heads(3)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("heads"), "{err}");
        let err = CausalDecoderConfig::new(1)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("vocab_size"), "{err}");
        let err = tiny(false)
            .with_context(0)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("context"), "{err}");
    }
}
