//! BatchNorm's training forward on flex, and its node.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::Tensor;

use super::{contiguous, flex_tensor, shape_of, values, AutodiffFlex, OnFlex, TrackedTensor};
use crate::batch_norm::{batch_norm_backward, batch_norm_forward, NormGeometry};

/// BatchNorm's training forward on flex: `(output, batch mean, batch variance)`, the statistics
/// detached; `None` if any tensor is on another backend.
pub(crate) fn try_batch_norm_train<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
    geometry: NormGeometry,
) -> Option<(Tensor<D>, Tensor<1>, Tensor<1>)> {
    let channels = [geometry.channels];
    match (OnFlex::of(x)?, OnFlex::of(gamma)?, OnFlex::of(beta)?) {
        (OnFlex::Plain(x), OnFlex::Plain(gamma), OnFlex::Plain(beta)) => {
            let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
            let forward = batch_norm_forward(
                &geometry,
                values(&x),
                values(&gamma),
                values(&beta),
                epsilon,
            );
            Some((
                Tensor::from_primitive::<Flex>(flex_tensor(forward.output, shape_of(&x))),
                Tensor::from_primitive::<Flex>(flex_tensor(forward.mean, channels)),
                Tensor::from_primitive::<Flex>(flex_tensor(forward.variance, channels)),
            ))
        }
        (OnFlex::Tracked(x), OnFlex::Tracked(gamma), OnFlex::Tracked(beta)) => {
            let x_values = contiguous(x.primitive().clone());
            let gamma_values = values(&contiguous(gamma.primitive().clone())).to_vec();
            let beta_values = contiguous(beta.primitive().clone());
            let forward = batch_norm_forward(
                &geometry,
                values(&x_values),
                &gamma_values,
                values(&beta_values),
                epsilon,
            );
            let output = flex_tensor(forward.output, shape_of(&x_values));
            let output = match BatchNormNode
                .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let state = BatchNormState {
                        x: x_values,
                        gamma: gamma_values,
                        mean: forward.mean.clone(),
                        variance: forward.variance.clone(),
                        epsilon,
                        geometry,
                    };
                    prep.finish(state, output)
                }
                OpsKind::UnTracked(prep) => prep.finish(output),
            };
            let statistic = |values: Vec<f32>| {
                Tensor::from_primitive::<AutodiffFlex>(TrackedTensor::new(flex_tensor(
                    values, channels,
                )))
            };
            Some((
                Tensor::from_primitive::<AutodiffFlex>(output),
                statistic(forward.mean),
                statistic(forward.variance),
            ))
        }
        _ => None,
    }
}

/// What BatchNorm's backward reads: the input, γ and the batch statistics.
#[derive(Clone, Debug)]
struct BatchNormState {
    x: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    variance: Vec<f32>,
    epsilon: f64,
    geometry: NormGeometry,
}

/// BatchNorm's training node, with the input, γ and β as parents.
#[derive(Debug)]
struct BatchNormNode;

impl Backward<Flex, 3> for BatchNormNode {
    type State = BatchNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let s = ops.state;
        let (dx, dgamma, dbeta) = batch_norm_backward(
            &s.geometry,
            values(&s.x),
            &s.gamma,
            &s.mean,
            &s.variance,
            s.epsilon,
            values(&dy),
        );
        let channels = [s.geometry.channels];
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(dx, shape_of(&s.x)));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(dgamma, channels));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(dbeta, channels));
        }
    }
}
