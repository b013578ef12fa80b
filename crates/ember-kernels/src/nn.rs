//! burn's own modules (`Conv2d`, `BatchNorm`, `MaxPool2d`, `Linear`, `LayerNorm`,
//! `MultiHeadAttention`) run on Ember's kernels: call these where a model calls the modules'
//! `forward`. Parameters, record keys and checkpoints stay burn's.

use burn::nn::attention::{MhaInput, MultiHeadAttention};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, LayerNorm, Linear, PaddingConfig2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Bool, Tensor};

/// `conv.forward(input)`, through [`crate::ops::conv2d`].
pub fn conv2d(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    let padding = padding_pairs(&conv.padding, &input, conv.kernel_size, conv.stride);
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    crate::ops::conv2d(
        input,
        conv.weight.val(),
        conv.bias.as_ref().map(|bias| bias.val()),
        options,
    )
}

/// The `(begin, end)` padding burn's `Conv2d` and `MaxPool2d` apply to `input` along height and
/// width.
fn padding_pairs(
    padding: &PaddingConfig2d,
    input: &Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
) -> [(usize, usize); 2] {
    let [_, _, height, width] = input.dims();
    [0, 1].map(|axis| match *padding {
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)][axis],
        PaddingConfig2d::Same => {
            // burn's rule: the smallest total padding giving ceil(size / stride) outputs, the
            // odd one after.
            let size = [height, width][axis];
            let outputs = size.div_ceil(stride[axis]);
            let total = if outputs > 0 {
                ((outputs - 1) * stride[axis] + kernel[axis]).saturating_sub(size)
            } else {
                0
            };
            (total / 2, total - total / 2)
        }
    })
}

/// `norm.forward(input)`: in training (an autodiff device and the layer not frozen) through
/// [`crate::ops::batch_norm_train`], folding the batch statistics into the running ones exactly as
/// burn's `BatchNorm` does; otherwise burn's own inference forward.
pub fn batch_norm<const D: usize>(norm: &BatchNorm, input: Tensor<D>) -> Tensor<D> {
    if !(input.device().is_autodiff() && norm.training.is_enabled()) {
        return norm.forward(input);
    }
    let device = input.device();
    let result =
        crate::ops::batch_norm_train(input, norm.gamma.val(), norm.beta.val(), norm.epsilon);
    let momentum = norm.momentum;
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    let running_mean = running_mean
        .mul_scalar(1.0 - momentum)
        .add(result.mean.detach().mul_scalar(momentum));
    let running_var = running_var
        .mul_scalar(1.0 - momentum)
        .add(result.variance.detach().mul_scalar(momentum));
    norm.running_mean.update(running_mean.detach());
    norm.running_var.update(running_var.detach());
    result.output
}

/// `mha.forward(MhaInput::self_attn(x))` (with `mask_attn` applied if given), returning the context:
/// burn's computation step for step (projections split into heads, `q·kᵀ/√d_k`, mask, softmax,
/// dropout, `w·v`, heads merged, output projection) with the projections and the softmax on
/// Ember's kernels. A layer
/// with `quiet_softmax` runs burn's own forward.
pub fn self_attention(
    mha: &MultiHeadAttention,
    x: Tensor<3>,
    mask_attn: Option<Tensor<3, Bool>>,
) -> Tensor<3> {
    if mha.quiet_softmax {
        let input = MhaInput::self_attn(x);
        let input = match mask_attn {
            Some(mask) => input.mask_attn(mask),
            None => input,
        };
        return mha.forward(input).context;
    }
    let [batch, tokens, d_model] = x.dims();
    let heads = |projection: &Linear| {
        linear(projection, x.clone())
            .reshape([batch, tokens, mha.n_heads, mha.d_k])
            .swap_dims(1, 2)
    };
    let (query, key, value) = (heads(&mha.query), heads(&mha.key), heads(&mha.value));
    let mut scores = query
        .matmul(key.transpose())
        .div_scalar((mha.d_k as f32).sqrt());
    if let Some(mask) = mask_attn {
        let [mask_batch, rows, columns] = mask.dims();
        scores = scores.mask_fill(mask.reshape([mask_batch, 1, rows, columns]), mha.min_float);
    }
    let weights = mha.dropout.forward(crate::ops::softmax(scores, 3));
    let context = weights
        .matmul(value)
        .swap_dims(1, 2)
        .reshape([batch, tokens, d_model]);
    linear(&mha.output, context)
}

/// `norm.forward(input)` for an f32 input, through [`crate::ops::layer_norm`]. burn's `LayerNorm`
/// keeps its ε private, so pass the one it was built with (`LayerNormConfig`'s default is 1e-5).
pub fn layer_norm<const D: usize>(norm: &LayerNorm, epsilon: f64, input: Tensor<D>) -> Tensor<D> {
    crate::ops::layer_norm(
        input,
        norm.gamma.val(),
        norm.beta.as_ref().map(|beta| beta.val()),
        epsilon,
    )
}

/// `linear.forward(input)`, through [`crate::ops::linear`].
pub fn linear<const D: usize>(linear: &Linear, input: Tensor<D>) -> Tensor<D> {
    crate::ops::linear(
        input,
        linear.weight.val(),
        linear.bias.as_ref().map(|bias| bias.val()),
    )
}

/// `pool.forward(input)`, through [`crate::ops::max_pool2d`].
pub fn max_pool2d(pool: &MaxPool2d, input: Tensor<4>) -> Tensor<4> {
    let padding = padding_pairs(&pool.padding, &input, pool.kernel_size, pool.stride);
    let options = MaxPoolOptions::new(pool.kernel_size)
        .with_stride(pool.stride)
        .with_padding_pairs(padding)
        .with_dilation(pool.dilation)
        .with_ceil_mode(pool.ceil_mode);
    crate::ops::max_pool2d(input, options)
}
