//! The convolution on flex, and its node.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::Tensor;

use super::{contiguous, flex_tensor, shape_of, values, AutodiffFlex, OnFlex};
use crate::conv2d::{conv2d_backward, conv2d_forward, ConvGeometry};

/// `x ⊛ weight` without bias, or `None` if either tensor is on another backend.
pub(crate) fn try_conv2d(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    geometry: ConvGeometry,
) -> Option<Tensor<4>> {
    let out_shape = [
        geometry.batch,
        geometry.out_channels,
        geometry.output[0],
        geometry.output[1],
    ];
    match (OnFlex::of(x)?, OnFlex::of(weight)?) {
        (OnFlex::Plain(x), OnFlex::Plain(weight)) => {
            let (x, weight) = (contiguous(x), contiguous(weight));
            let y = conv2d_forward(&geometry, values(&x), values(&weight));
            Some(Tensor::from_primitive::<Flex>(flex_tensor(y, out_shape)))
        }
        (OnFlex::Tracked(x), OnFlex::Tracked(weight)) => {
            let x_values = contiguous(x.primitive().clone());
            let w_values = contiguous(weight.primitive().clone());
            let y = flex_tensor(
                conv2d_forward(&geometry, values(&x_values), values(&w_values)),
                out_shape,
            );
            let y = match Conv2dNode
                .prepare::<NoCheckpointing>([x.node(), weight.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((x_values, w_values, geometry), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            Some(Tensor::from_primitive::<AutodiffFlex>(y))
        }
        _ => None,
    }
}

/// The convolution's node: keeps its input and weights for the two gradients.
#[derive(Debug)]
struct Conv2dNode;

impl Backward<Flex, 2> for Conv2dNode {
    type State = (FlexTensor, FlexTensor, ConvGeometry);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, weight, geometry) = ops.state;
        let (dx, dw) = conv2d_backward(
            &geometry,
            values(&x),
            values(&weight),
            values(&dy),
            node_x.is_some(),
            node_weight.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, flex_tensor(dx, shape_of(&x)));
        }
        if let (Some(node), Some(dw)) = (node_weight, dw) {
            grads.register::<Flex>(node.id, flex_tensor(dw, shape_of(&weight)));
        }
    }
}
