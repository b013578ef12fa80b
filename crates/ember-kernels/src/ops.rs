//! Tensor-level ops with burn's signatures: Ember's kernels on flex (with or without autodiff),
//! burn's own op everywhere else, for the cases the kernels do not cover, and when the kernels are
//! switched off ([`crate::set_enabled`]). Every op has the same shape: the kernel if
//! `kernel::OP` takes the call, else burn's op, with burn's checks and panics for bad shapes.

use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::Tensor;

/// [`burn::tensor::module::conv2d`]; the kernels take f32 convolutions with one group and no
/// dilation.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = kernel::conv2d(&x, &weight, bias.as_ref(), &options) {
        return y;
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// [`burn::tensor::module::batch_norm_train`]: the batch statistics are the mean and the biased
/// variance, detached, as burn's.
pub fn batch_norm_train<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormTrainOutput<D> {
    #[cfg(feature = "flex")]
    if let Some(result) = kernel::batch_norm_train(&input, &gamma, &beta, epsilon) {
        return result;
    }
    burn::tensor::module::batch_norm_train(input, gamma, beta, epsilon)
}

/// [`burn::tensor::activation::gelu`] (exact, erf-based).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = kernel::gelu(&x) {
        return y;
    }
    burn::tensor::activation::gelu(x)
}

/// [`burn::tensor::activation::softmax`] along `dim`; the kernel takes the last axis.
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = kernel::softmax(&x, dim) {
        return y;
    }
    burn::tensor::activation::softmax(x, dim)
}

/// [`burn::tensor::module::layer_norm`] over the last axis; the kernel takes it with a β.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    epsilon: f64,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = kernel::layer_norm(&x, &gamma, beta.as_ref(), epsilon) {
        return y;
    }
    burn::tensor::module::layer_norm(x, gamma, beta, epsilon)
}

/// [`burn::tensor::module::linear`] (`x · W + b` over the last axis, `W` of `[d_in, d_out]`); the
/// kernel takes it with a bias and `x` of two axes or more.
pub fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = kernel::linear(&x, &weight, bias.as_ref()) {
        return y;
    }
    burn::tensor::module::linear(x, weight, bias)
}

/// [`burn::tensor::module::max_pool2d`]; the kernel takes non-overlapping windows (kernel equal
/// to stride) without padding or dilation.
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = kernel::max_pool2d(&x, &options) {
        return y;
    }
    burn::tensor::module::max_pool2d(x, options)
}

/// Which calls the kernels take: switched on, f32 tensors of consistent shapes within each
/// kernel's scope, all on flex (the `flex::try_*` functions answer `None` on another backend).
#[cfg(feature = "flex")]
mod kernel {
    use burn::tensor::module::BatchNormTrainOutput;
    use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
    use burn::tensor::{DType, Tensor};

    use crate::{batch_norm::NormGeometry, conv2d::ConvGeometry, flex, pool::PoolGeometry};

    /// Switched on, and every tensor f32.
    fn takes(dtypes: &[DType]) -> bool {
        crate::enabled() && dtypes.iter().all(|&d| d == DType::F32)
    }

    pub(super) fn conv2d(
        x: &Tensor<4>,
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        let bias_fits = bias.is_none_or(|b| takes(&[b.dtype()]) && b.dims() == [weight.dims()[0]]);
        if !takes(&[x.dtype(), weight.dtype()]) || !bias_fits {
            return None;
        }
        if options.groups != 1 || options.dilation != [1, 1] {
            return None;
        }
        let geometry = ConvGeometry::new(x.dims(), weight.dims(), options.stride, options.padding)?;
        let y = flex::try_conv2d(x, weight, geometry)?;
        Some(match bias {
            Some(bias) => y + bias.clone().reshape([1, geometry.out_channels, 1, 1]),
            None => y,
        })
    }

    pub(super) fn batch_norm_train<const D: usize>(
        input: &Tensor<D>,
        gamma: &Tensor<1>,
        beta: &Tensor<1>,
        epsilon: f64,
    ) -> Option<BatchNormTrainOutput<D>> {
        if D < 2 || !takes(&[input.dtype(), gamma.dtype(), beta.dtype()]) {
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
        let (output, mean, variance) =
            flex::try_batch_norm_train(input, gamma, beta, epsilon, geometry)?;
        Some(BatchNormTrainOutput {
            output,
            mean,
            variance,
        })
    }

    pub(super) fn gelu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
        takes(&[x.dtype()]).then(|| flex::try_gelu(x)).flatten()
    }

    pub(super) fn softmax<const D: usize>(x: &Tensor<D>, dim: usize) -> Option<Tensor<D>> {
        (dim + 1 == D && takes(&[x.dtype()]))
            .then(|| flex::try_softmax_last(x))
            .flatten()
    }

    pub(super) fn layer_norm<const D: usize>(
        x: &Tensor<D>,
        gamma: &Tensor<1>,
        beta: Option<&Tensor<1>>,
        epsilon: f64,
    ) -> Option<Tensor<D>> {
        let beta = beta?;
        let fits = x.dims().last() == Some(&gamma.dims()[0]) && beta.dims() == gamma.dims();
        (fits && takes(&[x.dtype(), gamma.dtype(), beta.dtype()]))
            .then(|| flex::try_layer_norm(x, gamma, beta, epsilon))
            .flatten()
    }

    pub(super) fn linear<const D: usize>(
        x: &Tensor<D>,
        weight: &Tensor<2>,
        bias: Option<&Tensor<1>>,
    ) -> Option<Tensor<D>> {
        let bias = bias?;
        let [d_in, d_out] = weight.dims();
        let fits = D >= 2 && x.dims()[D - 1] == d_in && bias.dims() == [d_out];
        (fits && takes(&[x.dtype(), weight.dtype(), bias.dtype()]))
            .then(|| flex::try_linear(x, weight, bias))
            .flatten()
    }

    pub(super) fn max_pool2d(x: &Tensor<4>, options: &MaxPoolOptions<2>) -> Option<Tensor<4>> {
        let [batch, channels, height, width] = x.dims();
        let window = options.kernel_size;
        let simple = window == options.stride
            && options.padding == [(0, 0); 2]
            && options.dilation == [1, 1]
            && !window.contains(&0);
        // Ceil mode only changes anything where a window would hang over the edge.
        let exact = height % window[0] == 0 && width % window[1] == 0;
        if !simple || (options.ceil_mode && !exact) || !takes(&[x.dtype()]) {
            return None;
        }
        let geometry = PoolGeometry {
            planes: batch * channels,
            input: [height, width],
            window,
            output: [height / window[0], width / window[1]],
        };
        if geometry.output.contains(&0) || geometry.planes == 0 {
            return None;
        }
        flex::try_max_pool2d(x, geometry)
    }
}
