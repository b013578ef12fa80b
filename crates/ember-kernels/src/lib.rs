//! Ember's CPU kernels for burn 0.22's `flex` backend, for the ops where burn's own were the
//! bottleneck of Ember's models (`experiments/cpu-profile/`): 2-D convolution (forward, input and
//! weight gradients) as im2col GEMMs spread over the threads, BatchNorm's training forward and
//! backward in two passes each, non-overlapping max-pool, and for the transformers Linear,
//! LayerNorm, GELU and the attention softmax in one pass each way.
//!
//! They plug in below burn's tensor API: [`ops`] has burn's signatures and [`nn`] runs burn's own
//! modules (`Conv2d`, `BatchNorm`, `MaxPool2d`, `Linear`, `LayerNorm`, `MultiHeadAttention`). On a
//! flex device (with or without autodiff) the kernels run; on every other device (wgpu, ndarray,
//! …) and for what the kernels do not cover (groups, dilation, overlapping pools, other float
//! types) the same call is burn's op. A model switches by calling
//! `ember_kernels::nn::conv2d(&self.conv, x)` where it called `self.conv.forward(x)`:
//!
//! ```
//! use burn::nn::conv::Conv2dConfig;
//! use burn::nn::{BatchNormConfig, PaddingConfig2d};
//! use burn::prelude::*;
//!
//! let device = Device::flex().autodiff();
//! let conv = Conv2dConfig::new([3, 8], [3, 3])
//!     .with_padding(PaddingConfig2d::Same)
//!     .init(&device);
//! let norm = BatchNormConfig::new(8).init(&device);
//! let images = Tensor::<4>::ones([2, 3, 9, 9], &device);
//!
//! let x = ember_kernels::nn::conv2d(&conv, images.clone());
//! let y = ember_kernels::nn::batch_norm(&norm, x);
//! assert_eq!(y.dims(), [2, 8, 9, 9]);
//! # let reference = norm.forward(conv.forward(images));
//! # y.into_data().assert_approx_eq::<f32>(&reference.into_data(), Default::default());
//! ```
//!
//! Set `EMBER_KERNELS=burn` in the environment (or call [`set_enabled`]) to run burn's own ops
//! everywhere instead, e.g. to measure the kernels against burn's in one build.
//!
//! Results are deterministic: every sum runs in a fixed order that does not depend on the number
//! of threads, so one machine gives the same bits for the same inputs.

#[cfg(feature = "flex")]
mod activation;
pub mod allocator;
#[cfg(feature = "flex")]
mod batch_norm;
#[cfg(feature = "flex")]
mod conv2d;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod gemm;
#[cfg(feature = "flex")]
mod layer_norm;
#[cfg(feature = "flex")]
mod linear;
pub mod nn;
pub mod ops;
#[cfg(feature = "flex")]
mod pool;
#[cfg(feature = "flex")]
mod simd;

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not yet read from the environment; 1: kernels on; 2: burn's ops everywhere.
static ENABLED: AtomicU8 = AtomicU8::new(0);

/// Whether the kernels run (on flex devices): yes unless `EMBER_KERNELS` is `burn` (read once)
/// or [`set_enabled`] said otherwise.
pub fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var("EMBER_KERNELS").map_or(true, |v| v != "burn");
            ENABLED.store(if on { 1 } else { 2 }, Ordering::Relaxed);
            on
        }
    }
}

/// Turns the kernels on or off for the whole process (off: every op is burn's).
pub fn set_enabled(on: bool) {
    ENABLED.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}
