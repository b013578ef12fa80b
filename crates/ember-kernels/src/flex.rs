//! The kernels on burn's `flex` tensors: plain `Flex` (inference) and `Autodiff<Flex>` (training,
//! one autodiff node per op with a hand-written backward, as burn's own ops are recorded).
//!
//! Each `try_*` function returns `None` unless every input lives on one of those two backends, so
//! the caller falls back to burn's op on every other device.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, BackendTypes, Flex};
use burn::tensor::{Shape, Tensor, TensorData};

use crate::activation::{gelu_backward, gelu_forward, softmax_backward, softmax_forward};
use crate::batch_norm::{batch_norm_backward, batch_norm_forward, NormGeometry};
use crate::conv2d::{conv2d_backward, conv2d_forward, ConvGeometry};
use crate::layer_norm::{layer_norm_backward, layer_norm_forward};
use crate::linear::{linear_backward, linear_forward};
use crate::pool::{max_pool_backward, max_pool_forward, PoolGeometry};

/// The autodiff backend `device.autodiff()` gives on a flex device (no gradient checkpointing).
type AutodiffFlex = Autodiff<Flex>;
/// A float tensor of [`AutodiffFlex`]: a flex tensor and its node in the graph.
type TrackedTensor = <AutodiffFlex as BackendTypes>::FloatTensorPrimitive;

/// Where a tensor lives, as far as the kernels care.
enum OnFlex {
    /// On `Autodiff<Flex>`.
    Tracked(TrackedTensor),
    /// On plain `Flex`.
    Plain(FlexTensor),
}

impl OnFlex {
    fn of<const D: usize>(tensor: &Tensor<D>) -> Option<Self> {
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
fn contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

/// The values of a tensor [`contiguous`] made contiguous.
fn values(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("kernels only see contiguous f32 tensors")
}

fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

fn shape_of(tensor: &FlexTensor) -> Shape {
    tensor.layout().shape().clone()
}

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

/// `f` applied to the values of `x` (one output of `x`'s shape), with `node` recording it for
/// autodiff on `Autodiff<Flex>`: the node's state is what `state` makes of `(x, y)`. `None` if
/// `x` is on another backend.
fn try_elementwise<const D: usize, N>(
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
