//! GELU and the last-axis softmax on flex, and their nodes.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::Tensor;

use super::{contiguous, flex_tensor, shape_of, try_elementwise, values};
use crate::activation::{gelu_backward, gelu_forward, softmax_backward, softmax_forward};

/// GELU on flex; `None` on another backend.
pub(crate) fn try_gelu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    try_elementwise(x, gelu_forward, GeluNode, |x, _| x)
}

/// GELU's node: keeps its input.
#[derive(Debug)]
struct GeluNode;

impl Backward<Flex, 1> for GeluNode {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |dy| {
            let dy = contiguous(dy);
            flex_tensor(gelu_backward(values(&x), values(&dy)), shape_of(&x))
        });
    }
}

/// Softmax over the last axis on flex; `None` on another backend.
pub(crate) fn try_softmax_last<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    let row = *x.dims().last()?;
    try_elementwise(
        x,
        |x| softmax_forward(x, row),
        SoftmaxNode,
        move |_, y| (y, row),
    )
}

/// The softmax's node: keeps its output and row length.
#[derive(Debug)]
struct SoftmaxNode;

impl Backward<Flex, 1> for SoftmaxNode {
    type State = (FlexTensor, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (y, row) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |dy| {
            let dy = contiguous(dy);
            flex_tensor(softmax_backward(values(&y), values(&dy), row), shape_of(&y))
        });
    }
}
