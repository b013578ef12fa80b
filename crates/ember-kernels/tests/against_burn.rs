//! Ember's kernels against burn's own ops on random inputs: outputs and every gradient, over the
//! shapes SmallCnn never uses as well as those it does (strides 1 and 2, padding 0 and 1, kernels
//! 1 and 3, odd and non-square sizes, batch 1), and bit-for-bit repeatability.
//!
//! Tolerance: |ours − burn's| ≤ 1e-4 + 1e-4 · |burn's| for every value (f32; both sides sum up to
//! 1,152 products per output in different orders, ours partly in f64).

use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, TensorData};

mod common;
use common::{assert_within, weighted_sum_grads, Tolerance};

/// A seeded N(0, 1) draw. The seed is the flex device's, shared by the tests running in parallel,
/// so seeding and drawing hold a lock.
fn random<const D: usize>(shape: [usize; D], seed: u64) -> TensorData {
    static SEEDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _seeding = SEEDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let device = Device::flex();
    device.seed(seed);
    Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device).into_data()
}

/// f32 sums of up to 1,152 products in another order than burn's (ours partly in f64).
const TOLERANCE: Tolerance = Tolerance {
    absolute: 1e-4,
    relative: 1e-4,
    of_largest: 0.0,
};

fn assert_close(what: &str, ours: &TensorData, burns: &TensorData) {
    assert_within(what, ours, burns, &TOLERANCE);
}

/// One convolution's inputs, with the upstream gradient `g` of `sum(y · g)`.
struct ConvCase {
    x: TensorData,
    weight: TensorData,
    bias: Option<TensorData>,
    g: TensorData,
    options: ConvOptions<2>,
}

/// `(y, dx, dweight, dbias)` of `sum(conv(x) · g)` through `conv`, on `device`.
fn conv_run(
    case: &ConvCase,
    device: &Device,
    conv: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>,
) -> Vec<TensorData> {
    let x = Tensor::<4>::from_data(case.x.clone(), device).require_grad();
    let weight = Tensor::<4>::from_data(case.weight.clone(), device).require_grad();
    let bias = case
        .bias
        .clone()
        .map(|b| Tensor::<1>::from_data(b, device).require_grad());
    let y = conv(
        x.clone(),
        weight.clone(),
        bias.clone(),
        case.options.clone(),
    );
    let grads = weighted_sum_grads(&y, &case.g);
    let mut out = vec![
        y.into_data(),
        x.grad(&grads).unwrap().into_data(),
        weight.grad(&grads).unwrap().into_data(),
    ];
    if let Some(bias) = bias {
        out.push(bias.grad(&grads).unwrap().into_data());
    }
    out
}

fn conv_case(
    x: [usize; 4],
    weight: [usize; 4],
    stride: usize,
    padding: usize,
    bias: bool,
    seed: u64,
) -> ConvCase {
    let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
    let out = |size: usize, k: usize| (size + 2 * padding - k) / stride + 1;
    let out_shape = [x[0], weight[0], out(x[2], weight[2]), out(x[3], weight[3])];
    ConvCase {
        x: random(x, seed),
        weight: random(weight, seed + 1),
        bias: bias.then(|| random([weight[0]], seed + 2)),
        g: random(out_shape, seed + 3),
        options,
    }
}

#[test]
fn conv2d_output_and_gradients_match_burns_over_strides_paddings_kernels_and_odd_sizes() {
    let device = Device::flex().autodiff();
    let mut seed = 10;
    let mut cases = 0;
    for kernel in [1, 3] {
        for stride in [1, 2] {
            for padding in [0, 1] {
                for (batch, [h, w]) in [(1, [7, 5]), (3, [9, 9]), (5, [6, 11])] {
                    for bias in [false, true] {
                        let case = conv_case(
                            [batch, 3, h, w],
                            [4, 3, kernel, kernel],
                            stride,
                            padding,
                            bias,
                            seed,
                        );
                        seed += 4;
                        let ours = conv_run(&case, &device, ember_kernels::ops::conv2d);
                        let burns = conv_run(&case, &device, |x, w, b, o| {
                            burn::tensor::module::conv2d(x, w, b, o)
                        });
                        let what = format!(
                            "kernel {kernel} stride {stride} padding {padding} batch {batch} {h}x{w} bias {bias}"
                        );
                        for (name, (a, b)) in ["output", "input grad", "weight grad", "bias grad"]
                            .iter()
                            .zip(ours.iter().zip(&burns))
                        {
                            assert_close(&format!("{what}: {name}"), a, b);
                        }
                        assert_eq!(ours.len(), burns.len());
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 48);
}

#[test]
fn conv2d_matches_burn_at_smallcnn_widths_and_asymmetric_padding() {
    let device = Device::flex().autodiff();
    // A SmallCnn layer's shape (batch 9: two tasks of four images and one of one).
    let case = conv_case([9, 32, 8, 8], [32, 32, 3, 3], 1, 1, false, 100);
    let ours = conv_run(&case, &device, ember_kernels::ops::conv2d);
    let burns = conv_run(&case, &device, |x, w, b, o| {
        burn::tensor::module::conv2d(x, w, b, o)
    });
    for (a, b) in ours.iter().zip(&burns) {
        assert_close("32→32 3×3", a, b);
    }
    // burn's `Same` padding for an even kernel is asymmetric: (0, 1) on each axis.
    let mut case = conv_case([2, 2, 5, 6], [3, 2, 2, 2], 1, 0, true, 200);
    case.options = ConvOptions::new_with_padding([1, 1], [(0, 1), (0, 1)], [1, 1], 1);
    case.g = random([2, 3, 5, 6], 204);
    let ours = conv_run(&case, &device, ember_kernels::ops::conv2d);
    let burns = conv_run(&case, &device, |x, w, b, o| {
        burn::tensor::module::conv2d(x, w, b, o)
    });
    for (a, b) in ours.iter().zip(&burns) {
        assert_close("2×2 same", a, b);
    }
}

#[test]
fn conv2d_without_autodiff_and_outside_the_kernels_scope_equals_burns() {
    // Plain flex (inference), and a dilated and a grouped convolution (burn's op, by fallback).
    let device = Device::flex();
    let x = Tensor::<4>::from_data(random([2, 4, 9, 7], 300), &device);
    let w = Tensor::<4>::from_data(random([6, 4, 3, 3], 301), &device);
    let w_grouped = Tensor::<4>::from_data(random([6, 2, 3, 3], 302), &device);
    for (weight, options) in [
        (w.clone(), ConvOptions::new([2, 1], [1, 0], [1, 1], 1)),
        (w.clone(), ConvOptions::new([1, 1], [1, 1], [2, 2], 1)),
        (w_grouped, ConvOptions::new([1, 1], [1, 1], [1, 1], 2)),
    ] {
        let ours = ember_kernels::ops::conv2d(x.clone(), weight.clone(), None, options.clone());
        let burns = burn::tensor::module::conv2d(x.clone(), weight, None, options);
        assert_close("plain flex", &ours.into_data(), &burns.into_data());
    }
}

#[test]
fn other_backends_run_burns_ops_through_the_same_calls() {
    #[allow(deprecated)] // burn deprecates ndarray; any non-flex backend shows the fallback
    let device = Device::ndarray().autodiff();
    let case = conv_case([2, 3, 7, 5], [4, 3, 3, 3], 2, 1, true, 400);
    let ours = conv_run(&case, &device, ember_kernels::ops::conv2d);
    let burns = conv_run(&case, &device, |x, w, b, o| {
        burn::tensor::module::conv2d(x, w, b, o)
    });
    for (a, b) in ours.iter().zip(&burns) {
        // Bit-identical: the same burn op ran on both sides.
        assert_eq!(a, b);
    }
    let x = Tensor::<4>::from_data(random([3, 2, 4, 4], 401), &device);
    let norm = BatchNormConfig::new(2).init(&device);
    let ours = ember_kernels::nn::batch_norm(&norm, x.clone());
    assert_eq!(ours.into_data(), norm.forward(x).into_data());
}

/// `(output, dx, dgamma, dbeta, running mean, running var)` after one training forward of a
/// BatchNorm (γ, β not at their initial 1, 0) and the backward of `sum(y · g)`.
fn batch_norm_run(
    x: &TensorData,
    g: &TensorData,
    forward: fn(&BatchNorm, Tensor<4>) -> Tensor<4>,
) -> Vec<TensorData> {
    let device = Device::flex().autodiff();
    let channels = x.shape()[1];
    let mut norm = BatchNormConfig::new(channels).init(&device);
    norm.gamma = norm
        .gamma
        .map(|_| Tensor::from_data(random([channels], 501), &device).require_grad());
    norm.beta = norm
        .beta
        .map(|_| Tensor::from_data(random([channels], 502), &device).require_grad());
    let x = Tensor::<4>::from_data(x.clone(), &device).require_grad();
    let y = forward(&norm, x.clone());
    let grads = weighted_sum_grads(&y, g);
    vec![
        y.into_data(),
        x.grad(&grads).unwrap().into_data(),
        norm.gamma.val().grad(&grads).unwrap().into_data(),
        norm.beta.val().grad(&grads).unwrap().into_data(),
        norm.running_mean.value().into_data(),
        norm.running_var.value().into_data(),
    ]
}

#[test]
fn batch_norm_output_gradients_and_running_statistics_match_burns() {
    for (shape, seed) in [
        ([1, 3, 5, 3], 600),
        ([4, 5, 7, 7], 610),
        ([7, 2, 1, 9], 620),
    ] {
        let mut x = random(shape, seed);
        // An offset and scale per run, so the statistics are not those of N(0, 1).
        x = Tensor::<4>::from_data(x, &Device::flex())
            .mul_scalar(3.0)
            .add_scalar(1.5)
            .into_data();
        let g = random(shape, seed + 1);
        let ours = batch_norm_run(&x, &g, ember_kernels::nn::batch_norm);
        let burns = batch_norm_run(&x, &g, |norm, x| norm.forward(x));
        let names = [
            "output",
            "input grad",
            "gamma grad",
            "beta grad",
            "running mean",
            "running var",
        ];
        for (name, (a, b)) in names.iter().zip(ours.iter().zip(&burns)) {
            assert_close(&format!("{shape:?}: {name}"), a, b);
        }
    }
}

#[test]
fn the_same_inputs_give_the_same_bits_on_one_thread_and_on_several() {
    let case = conv_case([9, 8, 10, 10], [8, 8, 3, 3], 1, 1, true, 700);
    let bn_x = random([9, 8, 10, 10], 710);
    let bn_g = random([9, 8, 10, 10], 711);
    let run = || {
        let mut out = conv_run(
            &case,
            &Device::flex().autodiff(),
            ember_kernels::ops::conv2d,
        );
        out.extend(batch_norm_run(&bn_x, &bn_g, ember_kernels::nn::batch_norm));
        out
    };
    let first = run();
    assert_eq!(first, run(), "two runs on the global pool");
    let single = rayon_pool(1).install(run);
    let three = rayon_pool(3).install(run);
    for (i, ((a, b), c)) in first.iter().zip(&single).zip(&three).enumerate() {
        assert_eq!(a, b, "output {i}: one thread");
        assert_eq!(a, c, "output {i}: three threads");
    }
}

fn rayon_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn modules_forward_like_burns_conv2d_with_same_padding_and_bias() {
    let device = Device::flex().autodiff();
    for (kernel, stride) in [([3, 3], [1, 1]), ([2, 4], [2, 1]), ([1, 1], [1, 1])] {
        let conv = Conv2dConfig::new([3, 5], kernel)
            .with_stride(stride)
            .with_padding(PaddingConfig2d::Same)
            .init(&device);
        let x = Tensor::<4>::from_data(random([2, 3, 7, 8], 800), &device);
        let ours = ember_kernels::nn::conv2d(&conv, x.clone());
        assert_close(
            &format!("Conv2d {kernel:?} stride {stride:?}"),
            &ours.into_data(),
            &conv.forward(x).into_data(),
        );
    }
}

#[test]
fn max_pool_output_and_gradient_match_burns_with_ties_odd_sizes_and_overlap() {
    use burn::nn::pool::MaxPool2dConfig;
    let device = Device::flex().autodiff();
    // Inputs on a coarse grid (multiples of 0.5), so windows often tie: the gradient must go
    // where burn sends it.
    for (shape, window, stride, seed) in [
        ([3, 4, 8, 8], [2, 2], [2, 2], 900),
        ([1, 2, 7, 5], [2, 2], [2, 2], 910),
        ([2, 3, 9, 6], [3, 2], [3, 2], 920),
        ([2, 2, 7, 7], [3, 3], [2, 2], 930), // overlapping windows: burn's op
    ] {
        let pool = MaxPool2dConfig::new(window).with_strides(stride).init();
        let x = Tensor::<4>::from_data(random(shape, seed), &Device::flex())
            .mul_scalar(2.0)
            .round()
            .div_scalar(2.0)
            .into_data();
        let run = |ours: bool| {
            let x = Tensor::<4>::from_data(x.clone(), &device).require_grad();
            let y = if ours {
                ember_kernels::nn::max_pool2d(&pool, x.clone())
            } else {
                pool.forward(x.clone())
            };
            let grads = weighted_sum_grads(&y, &random(y.dims(), seed + 1));
            [y.into_data(), x.grad(&grads).unwrap().into_data()]
        };
        let (ours, burns) = (run(true), run(false));
        assert_eq!(
            ours, burns,
            "{shape:?} window {window:?}: the same values, bit for bit"
        );
    }
}
