//! Small gradient transformations that the optimizers of this crate are assembled from.
//!
//! Each piece takes a direction (and, where it keeps one, its state) and returns the transformed
//! direction (and the new state), in the spirit of optax's `chain`: a published method reads as
//! the list of its pieces. Every piece computes in the dtype of the tensors it is given, so a
//! half-precision parameter keeps half-precision state.

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
