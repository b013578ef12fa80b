//! LayerNorm on flex, and its node.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::Tensor;

use super::{contiguous, flex_tensor, shape_of, values, AutodiffFlex, OnFlex};
use crate::layer_norm::{layer_norm_backward, layer_norm_forward};

/// LayerNorm over the last axis on flex, with β; `None` if any tensor is on another backend.
pub(crate) fn try_layer_norm<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
) -> Option<Tensor<D>> {
    match (OnFlex::of(x)?, OnFlex::of(gamma)?, OnFlex::of(beta)?) {
        (OnFlex::Plain(x), OnFlex::Plain(gamma), OnFlex::Plain(beta)) => {
            let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
            let forward =
                layer_norm_forward(values(&x), values(&gamma), Some(values(&beta)), epsilon);
            Some(Tensor::from_primitive::<Flex>(flex_tensor(
                forward.output,
                shape_of(&x),
            )))
        }
        (OnFlex::Tracked(x), OnFlex::Tracked(gamma), OnFlex::Tracked(beta)) => {
            let x_values = contiguous(x.primitive().clone());
            let gamma_values = values(&contiguous(gamma.primitive().clone())).to_vec();
            let beta_values = contiguous(beta.primitive().clone());
            let forward = layer_norm_forward(
                values(&x_values),
                &gamma_values,
                Some(values(&beta_values)),
                epsilon,
            );
            let output = flex_tensor(forward.output, shape_of(&x_values));
            let output = match LayerNormNode
                .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let state = LayerNormState {
                        x: x_values,
                        gamma: gamma_values,
                        mean: forward.mean,
                        rstd: forward.rstd,
                    };
                    prep.finish(state, output)
                }
                OpsKind::UnTracked(prep) => prep.finish(output),
            };
            Some(Tensor::from_primitive::<AutodiffFlex>(output))
        }
        _ => None,
    }
}

/// What LayerNorm's backward reads: the input, γ and the per-row statistics.
#[derive(Clone, Debug)]
struct LayerNormState {
    x: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

/// LayerNorm's node, with the input, γ and β as parents.
#[derive(Debug)]
struct LayerNormNode;

impl Backward<Flex, 3> for LayerNormNode {
    type State = LayerNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let s = ops.state;
        let (dx, dgamma, dbeta) =
            layer_norm_backward(values(&s.x), &s.gamma, &s.mean, &s.rstd, values(&dy));
        let width = [s.gamma.len()];
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(dx, shape_of(&s.x)));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(dgamma, width));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(dbeta, width));
        }
    }
}
