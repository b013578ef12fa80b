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

/// One of the image classifiers, chosen at run time (e.g. by a command-line flag), itself a burn
/// module: the trainer, checkpoints and optimizers handle it like any concrete model.
#[derive(Module, Debug)]
// One model lives per run and moves once per optimizer step; a few hundred bytes of move are
// nothing next to a forward pass, and burn has no `Module` for `Box` to shrink the variant with.
#[allow(clippy::large_enum_variant)]
pub enum AnyClassifier {
    /// The convolutional network of the CIFAR experiments.
    SmallCnn(crate::SmallCnn),
    /// A multi-layer perceptron on the flattened image.
    Mlp(crate::Mlp),
    /// The ViT-style transformer of the SignGD study.
    Transformer(crate::TwoLayerTransformer),
}

impl ImageClassifier for AnyClassifier {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Self::SmallCnn(m) => m.forward(images),
            Self::Mlp(m) => m.forward(images),
            Self::Transformer(m) => m.forward(images),
        }
    }
}

impl From<crate::SmallCnn> for AnyClassifier {
    fn from(m: crate::SmallCnn) -> Self {
        Self::SmallCnn(m)
    }
}

impl From<crate::Mlp> for AnyClassifier {
    fn from(m: crate::Mlp) -> Self {
        Self::Mlp(m)
    }
}

impl From<crate::TwoLayerTransformer> for AnyClassifier {
    fn from(m: crate::TwoLayerTransformer) -> Self {
        Self::Transformer(m)
    }
}
