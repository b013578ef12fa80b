use burn::prelude::*;

/// A model that maps a batch of images `[batch, channels, height, width]` to class logits
/// `[batch, classes]`.
///
/// The trainer, the evaluation code and the benchmarks only need this one method, so any model that
/// implements it (a CNN, a ViT-style transformer, an MLP that flattens its input) trains through the
/// same loop.
pub trait ImageClassifier: Module {
    /// Class logits (not probabilities) for a batch of normalised images.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;
}
