//! TwoLayerTransformer's parts (its defaults on 3×32×32 images: 64 patches of 4×4 and a class
//! token, dim 64, 4 heads, MLP 128, 2 pre-norm blocks), named as in the Python profile. Each part
//! runs as the model runs it (LayerNorm, Linear, softmax and GELU on Ember's kernels where the
//! device is flex), with
//! attention split the way burn's `MultiHeadAttention` computes it: the query, key and value
//! projections (each reshaped into heads), the scores `q·kᵀ/√d`, the softmax, the context `w·v`
//! (heads merged back) and the output projection.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{LayerNormConfig, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use ember_kernels::nn::linear;
use ember_models::patchify;

use super::parts::{one, two, Chain, Source, Value};
use crate::tools::bench::BenchModel;

/// The transformer's parts in forward order, then the cross-entropy against `targets`.
pub(super) fn parts(targets: Tensor<1, Int>, device: &Device) -> anyhow::Result<Chain> {
    let config = BenchModel::transformer();
    config.validate()?;
    let (d, heads, patch) = (config.dim, config.heads, config.patch_size);
    let head_dim = d / heads;
    let new_linear =
        |inputs: usize, outputs: usize| LinearConfig::new(inputs, outputs).init(device);
    let epsilon = LayerNormConfig::new(d).epsilon;
    let layer_norm = || LayerNormConfig::new(d).init(device);
    let mut chain = Chain::default();

    chain.then("patchify", "patchify", move |x| {
        vec![Value::Tokens(patchify(one(x).image(), patch))]
    });
    let embed = new_linear(config.token_features(), d);
    chain.then("embed", "linear", move |x| {
        vec![Value::Tokens(linear(&embed, one(x).tokens()))]
    });
    let class_token = Tensor::<3>::zeros([1, 1, d], device).require_grad();
    let positions = Tensor::<3>::random(
        [1, config.seq_len() + 1, d],
        Distribution::Normal(0.0, 0.02),
        device,
    )
    .require_grad();
    chain.then("tokens", "tokens", move |x| {
        let x = one(x).tokens();
        let class_tokens = class_token.clone().repeat_dim(0, x.dims()[0]);
        vec![Value::Tokens(
            Tensor::cat(vec![class_tokens, x], 1) + positions.clone(),
        )]
    });

    for b in 1..=config.blocks {
        let block_input = chain.last();
        let norm = layer_norm();
        chain.then(format!("norm{b}a"), "layernorm", move |x| {
            vec![Value::Tokens(ember_kernels::nn::layer_norm(
                &norm,
                epsilon,
                one(x).tokens(),
            ))]
        });
        let projections = [new_linear(d, d), new_linear(d, d), new_linear(d, d)];
        let qkv = chain.then(format!("qkv{b}"), "attn-proj", move |x| {
            let x = one(x).tokens();
            let [batch, tokens, _] = x.dims();
            projections
                .iter()
                .map(|p| {
                    let split = linear(p, x.clone()).reshape([batch, tokens, heads, head_dim]);
                    Value::Image(split.swap_dims(1, 2))
                })
                .collect()
        });
        let scale = (head_dim as f32).sqrt();
        let sources = vec![Source::Part(qkv, 0), Source::Part(qkv, 1)];
        chain.push(format!("scores{b}"), "attn-matmul", sources, move |x| {
            let (q, k) = two(x);
            let scores = q.image().matmul(k.image().transpose()).div_scalar(scale);
            vec![Value::Image(scores)]
        });
        chain.then(format!("softmax{b}"), "softmax", |x| {
            vec![Value::Image(ember_kernels::ops::softmax(one(x).image(), 3))]
        });
        let sources = vec![chain.last(), Source::Part(qkv, 2)];
        chain.push(format!("context{b}"), "attn-matmul", sources, move |x| {
            let (weights, values) = two(x);
            let context = weights.image().matmul(values.image());
            let [batch, _, tokens, _] = context.dims();
            vec![Value::Tokens(
                context.swap_dims(1, 2).reshape([batch, tokens, d]),
            )]
        });
        let output = new_linear(d, d);
        chain.then(format!("out{b}"), "attn-proj", move |x| {
            vec![Value::Tokens(linear(&output, one(x).tokens()))]
        });
        let residual = |x: Vec<Value>| {
            let (x, branch) = two(x);
            vec![Value::Tokens(x.tokens() + branch.tokens())]
        };
        let sources = vec![block_input, chain.last()];
        let attended = chain.push(format!("residual{b}a"), "residual", sources, residual);
        let norm = layer_norm();
        chain.then(format!("norm{b}b"), "layernorm", move |x| {
            vec![Value::Tokens(ember_kernels::nn::layer_norm(
                &norm,
                epsilon,
                one(x).tokens(),
            ))]
        });
        let mlp_in = new_linear(d, config.mlp_dim);
        chain.then(format!("mlp_in{b}"), "mlp", move |x| {
            vec![Value::Tokens(linear(&mlp_in, one(x).tokens()))]
        });
        chain.then(format!("gelu{b}"), "gelu", |x| {
            vec![Value::Tokens(ember_kernels::ops::gelu(one(x).tokens()))]
        });
        let mlp_out = new_linear(config.mlp_dim, d);
        chain.then(format!("mlp_out{b}"), "mlp", move |x| {
            vec![Value::Tokens(linear(&mlp_out, one(x).tokens()))]
        });
        let sources = vec![Source::Part(attended, 0), chain.last()];
        chain.push(format!("residual{b}b"), "residual", sources, residual);
    }

    let norm = layer_norm();
    chain.then("norm", "layernorm", move |x| {
        vec![Value::Tokens(ember_kernels::nn::layer_norm(
            &norm,
            epsilon,
            one(x).tokens(),
        ))]
    });
    let head = new_linear(d, config.num_classes);
    chain.then("head", "linear", move |x| {
        let x = one(x).tokens();
        let batch = x.dims()[0];
        vec![Value::Flat(linear(
            &head,
            x.narrow(1, 0, 1).reshape([batch, d]),
        ))]
    });
    let loss = CrossEntropyLossConfig::new().init(device);
    chain.then("loss", "loss", move |x| {
        vec![Value::Scalar(loss.forward(one(x).flat(), targets.clone()))]
    });
    Ok(chain)
}
