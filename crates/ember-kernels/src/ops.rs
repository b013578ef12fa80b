//! Tensor-level ops with burn's signatures: Ember's kernels on flex (with or without autodiff),
//! burn's own op everywhere else and for the cases the kernels do not cover.

use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};

#[cfg(feature = "flex")]
use crate::{batch_norm::NormGeometry, conv2d::ConvGeometry, flex};

/// [`burn::tensor::module::conv2d`], on Ember's kernels where `x` and `weight` are f32 flex
/// tensors and the convolution has one group and no dilation (the kernels' scope); burn's op
/// otherwise, with burn's checks and panics for inconsistent shapes.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = crate::enabled()
        .then(|| kernel_conv2d(&x, &weight, bias.as_ref(), &options))
        .flatten()
    {
        return match bias {
            Some(bias) => {
                let channels = bias.dims()[0];
                y + bias.reshape([1, channels, 1, 1])
            }
            None => y,
        };
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

#[cfg(feature = "flex")]
fn kernel_conv2d(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let f32_inputs = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.is_none_or(|b| b.dtype() == DType::F32 && b.dims() == [weight.dims()[0]]);
    if !f32_inputs || options.groups != 1 || options.dilation != [1, 1] {
        return None;
    }
    let geometry = ConvGeometry::new(x.dims(), weight.dims(), options.stride, options.padding)?;
    flex::try_conv2d(x, weight, geometry)
}

/// [`burn::tensor::module::batch_norm_train`], on Ember's fused kernels where every tensor is an
/// f32 flex tensor of consistent shape; burn's op otherwise. The statistics are the biased batch
/// variance and the mean, detached, as burn's.
pub fn batch_norm_train<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormTrainOutput<D> {
    #[cfg(feature = "flex")]
    if let Some((output, mean, variance)) = crate::enabled()
        .then(|| kernel_batch_norm_train(&input, &gamma, &beta, epsilon))
        .flatten()
    {
        return BatchNormTrainOutput {
            output,
            mean,
            variance,
        };
    }
    burn::tensor::module::batch_norm_train(input, gamma, beta, epsilon)
}

#[cfg(feature = "flex")]
fn kernel_batch_norm_train<const D: usize>(
    input: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
) -> Option<(Tensor<D>, Tensor<1>, Tensor<1>)> {
    if D < 2 || [input.dtype(), gamma.dtype(), beta.dtype()] != [DType::F32; 3] {
        return None;
    }
    let dims = input.dims();
    if gamma.dims() != [dims[1]] || beta.dims() != [dims[1]] {
        return None;
    }
    let geometry = NormGeometry {
        batch: dims[0],
        channels: dims[1],
        pixels: dims[2..].iter().product(),
    };
    flex::try_batch_norm_train(input, gamma, beta, epsilon, geometry)
}

/// [`burn::tensor::activation::gelu`] (exact, erf-based), on Ember's one-pass kernel where `x` is
/// an f32 flex tensor; burn's op otherwise.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::enabled() && x.dtype() == DType::F32 {
        if let Some(y) = flex::try_gelu(&x) {
            return y;
        }
    }
    burn::tensor::activation::gelu(x)
}

/// [`burn::tensor::activation::softmax`] along `dim`, on Ember's one-pass kernel where `dim` is
/// the last axis and `x` an f32 flex tensor; burn's op otherwise.
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::enabled() && dim + 1 == D && x.dtype() == DType::F32 {
        if let Some(y) = flex::try_softmax_last(&x) {
            return y;
        }
    }
    burn::tensor::activation::softmax(x, dim)
}

/// [`burn::tensor::module::layer_norm`] over the last axis, on Ember's one-pass kernel where every
/// tensor is an f32 flex tensor of consistent shape and there is a β; burn's op otherwise.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    epsilon: f64,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(beta) = &beta {
        let consistent = x.dims().last() == Some(&gamma.dims()[0]) && beta.dims() == gamma.dims();
        let f32s = [x.dtype(), gamma.dtype(), beta.dtype()] == [DType::F32; 3];
        if crate::enabled() && consistent && f32s {
            if let Some(y) = flex::try_layer_norm(&x, &gamma, beta, epsilon) {
                return y;
            }
        }
    }
    burn::tensor::module::layer_norm(x, gamma, beta, epsilon)
}

/// [`burn::tensor::module::linear`] (`x · W + b` over the last axis, `W` of `[d_in, d_out]`), on
/// Ember's kernel where every tensor is an f32 flex tensor of consistent shape, `x` has at least
/// two axes and there is a bias; burn's op otherwise.
pub fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(bias) = &bias {
        let [d_in, d_out] = weight.dims();
        let consistent = D >= 2 && x.dims()[D - 1] == d_in && bias.dims() == [d_out];
        let f32s = [x.dtype(), weight.dtype(), bias.dtype()] == [DType::F32; 3];
        if crate::enabled() && consistent && f32s {
            if let Some(y) = flex::try_linear(&x, &weight, bias) {
                return y;
            }
        }
    }
    burn::tensor::module::linear(x, weight, bias)
}
