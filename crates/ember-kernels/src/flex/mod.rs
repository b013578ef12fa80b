//! The kernels on burn's `flex` tensors: plain `Flex` (inference) and `Autodiff<Flex>` (training,
//! one autodiff node per op with a hand-written backward, as burn's own ops are recorded).
//!
//! Each `try_*` function returns `None` unless every input lives on one of those two backends, so
//! the caller falls back to burn's op on every other device.
//!
//! One file per kind of op; this one holds what they share: where a tensor lives, its values,
//! and the recording of a one-input op.

mod activation;
mod batch_norm;
mod conv2d;
mod layer_norm;
mod linear;
mod pool;

pub(crate) use activation::{try_gelu, try_softmax_last};
pub(crate) use batch_norm::try_batch_norm_train;
pub(crate) use conv2d::try_conv2d;
pub(crate) use layer_norm::try_layer_norm;
pub(crate) use linear::try_linear;
pub(crate) use pool::try_max_pool2d;

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, BackendTypes, Flex};
use burn::tensor::{Shape, Tensor, TensorData};

/// The autodiff backend `device.autodiff()` gives on a flex device (no gradient checkpointing).
pub(super) type AutodiffFlex = Autodiff<Flex>;
/// A float tensor of [`AutodiffFlex`]: a flex tensor and its node in the graph.
pub(super) type TrackedTensor = <AutodiffFlex as BackendTypes>::FloatTensorPrimitive;

/// Where a tensor lives, as far as the kernels care.
pub(super) enum OnFlex {
    /// On `Autodiff<Flex>`.
    Tracked(TrackedTensor),
    /// On plain `Flex`.
    Plain(FlexTensor),
}

impl OnFlex {
    pub(super) fn of<const D: usize>(tensor: &Tensor<D>) -> Option<Self> {
        if let Ok(tracked) = tensor.clone().try_into_primitive::<AutodiffFlex>() {
            return Some(Self::Tracked(tracked));
        }
        tensor
            .clone()
            .try_into_primitive::<Flex>()
            .ok()
            .map(Self::Plain)
    }
}

/// `tensor` with its values contiguous from offset 0 (a copy only if they were not).
pub(super) fn contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

/// The values of a tensor [`contiguous`] made contiguous.
pub(super) fn values(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("kernels only see contiguous f32 tensors")
}

pub(super) fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

pub(super) fn shape_of(tensor: &FlexTensor) -> Shape {
    tensor.layout().shape().clone()
}

/// `f` applied to the values of `x` (one output of `x`'s shape), with `node` recording it for
/// autodiff on `Autodiff<Flex>`: the node's state is what `state` makes of `(x, y)`. `None` if
/// `x` is on another backend.
pub(super) fn try_elementwise<const D: usize, N>(
    x: &Tensor<D>,
    f: impl FnOnce(&[f32]) -> Vec<f32>,
    node: N,
    state: impl FnOnce(FlexTensor, FlexTensor) -> N::State,
) -> Option<Tensor<D>>
where
    N: Backward<Flex, 1>,
{
    match OnFlex::of(x)? {
        OnFlex::Plain(x) => {
            let x = contiguous(x);
            let y = flex_tensor(f(values(&x)), shape_of(&x));
            Some(Tensor::from_primitive::<Flex>(y))
        }
        OnFlex::Tracked(tracked) => {
            let x = contiguous(tracked.primitive().clone());
            let y = flex_tensor(f(values(&x)), shape_of(&x));
            let y = match node
                .prepare::<NoCheckpointing>([tracked.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(state(x, y.clone()), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            Some(Tensor::from_primitive::<AutodiffFlex>(y))
        }
    }
}
