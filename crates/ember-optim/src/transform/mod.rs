//! Small gradient transformations that the optimizers of this crate are assembled from: the
//! root-free curvature, momentum, the two kinds of weight decay, and B's shared handle.
//!
//! They are helpers with the signature each one's maths needs (the curvature reads the gradient
//! and B, decoupled decay reads the learning rate and the parameter), not a composable
//! `chain` in optax's sense: each optimizer's `step` calls them in the order its paper writes, so a
//! reader checks a method against its equations in one function. A common trait would have to
//! carry every piece's extra inputs through one signature for the sake of composition no user
//! of this crate has asked for; burn's own optimizers are written the same way. Every piece
//! computes in the dtype of the tensors it is given, so a half-precision parameter keeps
//! half-precision state.

mod batch_size;
mod curvature;
mod momentum;
mod weight_decay;

pub use batch_size::BatchSizeHandle;
pub use curvature::{CurvatureAccumulation, RootFreeCurvature};
pub use momentum::{ExponentialMovingAverage, HeavyBallMomentum};
pub use weight_decay::{AddedWeightDecay, DecoupledWeightDecay};

use burn::tensor::{DType, FloatDType, Tensor};

/// Cast a state tensor to the parameter's float dtype; a no-op when they already agree.
///
/// `#[derive(RecordState)]` reloads tensors in the device's default float dtype, so a state saved
/// from half-precision parameters comes back as f32; this puts it back before it meets the
/// parameter.
pub(crate) fn in_dtype<const D: usize>(tensor: Tensor<D>, dtype: DType) -> Tensor<D> {
    tensor.cast(FloatDType::from(dtype))
}
