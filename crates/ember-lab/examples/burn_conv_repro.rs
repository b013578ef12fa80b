//! A minimal reproduction, using burn alone, of where burn's CPU backend (`flex`) trails PyTorch on
//! a small CNN: a 3×3 convolution's backward pass and BatchNorm. It times, on 2 threads, the
//! forward and the backward of one `Conv2d` (32 → 32 channels, 3×3, padding 1, no bias) on a
//! `[64, 32, 32, 32]` input, and of one `BatchNorm` on the same shape, as medians of 20 runs.
//! experiments/cpu-profile/README.md holds its numbers next to PyTorch's and the text of the
//! upstream report.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p ember-lab --example burn_conv_repro
//! ```
//! The PyTorch side of the same measurement is `experiments/cpu-profile/torch_profile.py`
//! (rows `conv2` and `bn2`).

use std::time::Instant;

use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;

/// Median of `reps` timings of `f`, in milliseconds, after 3 untimed runs.
fn median_ms(reps: usize, mut f: impl FnMut() -> f64) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<f64> = (0..reps).map(|_| f()).collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2] * 1e3
}

fn main() {
    let device = Device::flex().autodiff();
    let shape = [64, 32, 32, 32];
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random(shape, normal, &device).require_grad();
    let g = Tensor::<4>::random(shape, normal, &device);

    let conv = Conv2dConfig::new([32, 32], [3, 3])
        .with_padding(PaddingConfig2d::Same)
        .with_bias(false)
        .init(&device);
    let norm = BatchNormConfig::new(32).init(&device);

    let layers: [(&str, &dyn Fn(Tensor<4>) -> Tensor<4>); 2] = [
        ("conv2d 32→32 3×3", &|x| conv.forward(x)),
        ("batchnorm 32", &|x| norm.forward(x)),
    ];
    for (name, forward) in layers {
        let forward_ms = median_ms(20, || {
            let start = Instant::now();
            let y = forward(x.clone());
            device.sync().unwrap();
            let t = start.elapsed().as_secs_f64();
            drop(y);
            t
        });
        let backward_ms = median_ms(20, || {
            let y = forward(x.clone());
            let start = Instant::now();
            let _grads = y.mul(g.clone()).sum().backward();
            device.sync().unwrap();
            start.elapsed().as_secs_f64()
        });
        println!(
            "{name} on [64, 32, 32, 32]: forward {forward_ms:.2} ms, backward {backward_ms:.2} ms"
        );
    }
}
