//! Max pooling on flex, and its node.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Flex;
use burn::tensor::{Shape, Tensor};

use super::{contiguous, flex_tensor, shape_of, values, AutodiffFlex, OnFlex};
use crate::pool::{max_pool_backward, max_pool_forward, PoolGeometry};

/// Max pooling over non-overlapping windows on flex; `None` on another backend.
pub(crate) fn try_max_pool2d(x: &Tensor<4>, geometry: PoolGeometry) -> Option<Tensor<4>> {
    let [batch, channels, _, _] = x.dims();
    let out_shape = [batch, channels, geometry.output[0], geometry.output[1]];
    match OnFlex::of(x)? {
        OnFlex::Plain(x) => {
            let x = contiguous(x);
            let (y, _) = max_pool_forward(&geometry, values(&x));
            Some(Tensor::from_primitive::<Flex>(flex_tensor(y, out_shape)))
        }
        OnFlex::Tracked(tracked) => {
            let x = contiguous(tracked.primitive().clone());
            let (y, argmax) = max_pool_forward(&geometry, values(&x));
            let y = flex_tensor(y, out_shape);
            let y = match MaxPoolNode
                .prepare::<NoCheckpointing>([tracked.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((argmax, geometry, shape_of(&x)), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            Some(Tensor::from_primitive::<AutodiffFlex>(y))
        }
    }
}

/// The max-pool's node: keeps the index of each window's maximum.
#[derive(Debug)]
struct MaxPoolNode;

impl Backward<Flex, 1> for MaxPoolNode {
    type State = (Vec<u32>, PoolGeometry, Shape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (argmax, geometry, shape) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |dy| {
            let dy = contiguous(dy);
            flex_tensor(max_pool_backward(&geometry, &argmax, values(&dy)), shape)
        });
    }
}
