//! Ember's GELU, softmax and self-attention against burn's on random inputs: outputs and input
//! gradients (and, for attention, every projection's weight gradient), with and without a mask.
//!
//! Tolerance: |ours − burn's| ≤ 1e-5 + 1e-4 · |burn's| + 4e-6 · max |burn's| (f32; our `exp` and
//! `erf` are polynomials accurate to about 2e-7, and a gradient summed over a thousand rows in
//! another order differs by the rounding of its largest terms, not of its own, smaller, value).

use burn::nn::attention::{generate_autoregressive_mask, MhaInput, MultiHeadAttentionConfig};
use burn::nn::LayerNormConfig;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};

mod common;
use common::{assert_within, weighted_sum_grads, Tolerance};

/// Polynomial `exp`/`erf` (about 2e-7) and gradients summed over a thousand rows in another order.
const TOLERANCE: Tolerance = Tolerance {
    absolute: 1e-5,
    relative: 1e-4,
    of_largest: 4e-6,
};

fn assert_close(what: &str, ours: TensorData, burns: TensorData) {
    assert_within(what, &ours, &burns, &TOLERANCE);
}

/// `(f(x), d sum(f(x) · g) / dx)` on the autodiff flex device, for the same `x` and `g`.
fn value_and_grad(
    x: &TensorData,
    g: &TensorData,
    f: impl Fn(Tensor<4>) -> Tensor<4>,
) -> (TensorData, TensorData) {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::from_data(x.clone(), &device).require_grad();
    let y = f(x.clone());
    let grads = weighted_sum_grads(&y, g);
    (y.into_data(), x.grad(&grads).unwrap().into_data())
}

fn random(shape: [usize; 4], scale: f64) -> TensorData {
    Tensor::<4>::random(shape, Distribution::Normal(0.0, scale), &Device::flex()).into_data()
}

#[test]
fn gelu_and_softmax_values_and_gradients_match_burns() {
    // Odd sizes, and values out to ±12 where erf saturates and exp underflows.
    let x = random([3, 2, 7, 33], 4.0);
    let g = random([3, 2, 7, 33], 1.0);
    let ours = value_and_grad(&x, &g, ember_kernels::ops::gelu);
    let burns = value_and_grad(&x, &g, burn::tensor::activation::gelu);
    assert_close("gelu", ours.0, burns.0);
    assert_close("gelu grad", ours.1, burns.1);

    let ours = value_and_grad(&x, &g, |x| ember_kernels::ops::softmax(x, 3));
    let burns = value_and_grad(&x, &g, |x| burn::tensor::activation::softmax(x, 3));
    assert_close("softmax", ours.0, burns.0);
    assert_close("softmax grad", ours.1, burns.1);

    // Another axis is burn's op, unchanged.
    let ours = value_and_grad(&x, &g, |x| ember_kernels::ops::softmax(x, 1));
    let burns = value_and_grad(&x, &g, |x| burn::tensor::activation::softmax(x, 1));
    assert_eq!(ours, burns);
}

#[test]
fn self_attention_matches_burns_multi_head_attention_with_and_without_a_mask() {
    let device = Device::flex().autodiff();
    let mha = MultiHeadAttentionConfig::new(16, 4)
        .with_dropout(0.0)
        .init(&device);
    let x = Tensor::<3>::random([2, 9, 16], Distribution::Normal(0.0, 1.0), &Device::flex())
        .into_data();
    let g = Tensor::<3>::random([2, 9, 16], Distribution::Normal(0.0, 1.0), &Device::flex())
        .into_data();
    for masked in [false, true] {
        let run = |ours: bool| {
            let x = Tensor::<3>::from_data(x.clone(), &device).require_grad();
            let mask = masked.then(|| generate_autoregressive_mask(2, 9, &device));
            let y = if ours {
                ember_kernels::nn::self_attention(&mha, x.clone(), mask)
            } else {
                let input = MhaInput::self_attn(x.clone());
                mha.forward(match mask {
                    Some(mask) => input.mask_attn(mask),
                    None => input,
                })
                .context
            };
            let grads = weighted_sum_grads(&y, &g);
            let weight_grad =
                |l: &burn::nn::Linear| l.weight.val().grad(&grads).unwrap().into_data();
            vec![
                y.into_data(),
                x.grad(&grads).unwrap().into_data(),
                weight_grad(&mha.query),
                weight_grad(&mha.key),
                weight_grad(&mha.value),
                weight_grad(&mha.output),
            ]
        };
        let names = [
            "context",
            "input grad",
            "query grad",
            "key grad",
            "value grad",
            "output grad",
        ];
        for ((name, a), b) in names.iter().zip(run(true)).zip(run(false)) {
            assert_close(&format!("masked {masked}: {name}"), a, b);
        }
    }
}

#[test]
fn layer_norm_values_and_gradients_match_burns() {
    let device = Device::flex().autodiff();
    // 3 × 7 rows of 37 (not a multiple of the 8 lanes), offset and scaled per run; ε 1e-3.
    let x = random([3, 7, 1, 37], 3.0);
    let g = random([3, 7, 1, 37], 1.0);
    let mut norm = LayerNormConfig::new(37).with_epsilon(1e-3).init(&device);
    let affine = || {
        let values = Tensor::<1>::random([37], Distribution::Normal(0.5, 1.0), &Device::flex());
        Tensor::<1>::from_data(values.into_data(), &device).require_grad()
    };
    norm.gamma = norm.gamma.map(|_| affine());
    norm.beta = norm.beta.map(|b| b.map(|_| affine()));
    let run = |ours: bool| {
        let x = Tensor::<4>::from_data(x.clone(), &device).require_grad();
        let y = if ours {
            ember_kernels::nn::layer_norm(&norm, 1e-3, x.clone())
        } else {
            norm.forward(x.clone())
        };
        let grads = weighted_sum_grads(&y, &g);
        let beta = norm.beta.as_ref().unwrap().val();
        vec![
            y.into_data(),
            x.grad(&grads).unwrap().into_data(),
            norm.gamma.val().grad(&grads).unwrap().into_data(),
            beta.grad(&grads).unwrap().into_data(),
        ]
    };
    let names = ["output", "input grad", "gamma grad", "beta grad"];
    for ((name, a), b) in names.iter().zip(run(true)).zip(run(false)) {
        assert_close(name, a, b);
    }
}

#[test]
fn linear_values_and_gradients_match_burns_over_many_row_chunks() {
    let device = Device::flex().autodiff();
    // 3 × 401 rows: three chunks of the weight-gradient sum, the last partial.
    let linear = burn::nn::LinearConfig::new(24, 40).init(&device);
    let x = Tensor::<3>::random(
        [3, 401, 24],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    )
    .into_data();
    let g = Tensor::<3>::random(
        [3, 401, 40],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    )
    .into_data();
    let run = |ours: bool| {
        let x = Tensor::<3>::from_data(x.clone(), &device).require_grad();
        let y = if ours {
            ember_kernels::nn::linear(&linear, x.clone())
        } else {
            linear.forward(x.clone())
        };
        let grads = weighted_sum_grads(&y, &g);
        vec![
            y.into_data(),
            x.grad(&grads).unwrap().into_data(),
            linear.weight.val().grad(&grads).unwrap().into_data(),
            linear
                .bias
                .as_ref()
                .unwrap()
                .val()
                .grad(&grads)
                .unwrap()
                .into_data(),
        ]
    };
    let names = ["output", "input grad", "weight grad", "bias grad"];
    for ((name, a), b) in names.iter().zip(run(true)).zip(run(false)) {
        assert_close(name, a, b);
    }
}
