//! The linear layer on flex, and its node.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::Tensor;

use super::{contiguous, flex_tensor, shape_of, values, AutodiffFlex, OnFlex};
use crate::linear::{linear_backward, linear_forward};

/// `x · W + b` on flex; `None` if any tensor is on another backend.
pub(crate) fn try_linear<const D: usize>(
    x: &Tensor<D>,
    weight: &Tensor<2>,
    bias: &Tensor<1>,
) -> Option<Tensor<D>> {
    let [d_in, d_out] = weight.dims();
    let mut out_shape = x.dims();
    out_shape[D - 1] = d_out;
    match (OnFlex::of(x)?, OnFlex::of(weight)?, OnFlex::of(bias)?) {
        (OnFlex::Plain(x), OnFlex::Plain(weight), OnFlex::Plain(bias)) => {
            let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
            let y = linear_forward(values(&x), values(&weight), values(&bias), d_in);
            Some(Tensor::from_primitive::<Flex>(flex_tensor(y, out_shape)))
        }
        (OnFlex::Tracked(x), OnFlex::Tracked(weight), OnFlex::Tracked(bias)) => {
            let x_values = contiguous(x.primitive().clone());
            let w_values = contiguous(weight.primitive().clone());
            let b_values = contiguous(bias.primitive().clone());
            let y = linear_forward(
                values(&x_values),
                values(&w_values),
                values(&b_values),
                d_in,
            );
            let y = flex_tensor(y, out_shape);
            let y = match LinearNode
                .prepare::<NoCheckpointing>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((x_values, w_values, d_out), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            Some(Tensor::from_primitive::<AutodiffFlex>(y))
        }
        _ => None,
    }
}

/// The linear layer's node, with the input, weight and bias as parents.
#[derive(Debug)]
struct LinearNode;

impl Backward<Flex, 3> for LinearNode {
    type State = (FlexTensor, FlexTensor, usize);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, weight, d_out) = ops.state;
        let d_in = weight.layout().shape()[0];
        let need = [node_x.is_some(), node_weight.is_some(), node_bias.is_some()];
        let linear = linear_backward(values(&x), values(&weight), values(&dy), d_in, need);
        if let (Some(node), Some(dx)) = (node_x, linear.x) {
            grads.register::<Flex>(node.id, flex_tensor(dx, shape_of(&x)));
        }
        if let (Some(node), Some(dw)) = (node_weight, linear.weight) {
            grads.register::<Flex>(node.id, flex_tensor(dw, shape_of(&weight)));
        }
        if let (Some(node), Some(db)) = (node_bias, linear.bias) {
            grads.register::<Flex>(node.id, flex_tensor(db, [d_out]));
        }
    }
}
