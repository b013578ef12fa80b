//! The transformer models on the `wgpu` backend (Mesa lavapipe where there is no GPU): the same
//! weights give the same outputs as on `flex`. Forward passes only: on lavapipe every new kernel
//! is compiled at first use, and a training run would cost minutes. Skipped, with a message, where
//! no Vulkan driver is installed.
#![cfg(feature = "wgpu")]

mod common;

use burn::prelude::*;
use burn::tensor::Distribution;
use ember_models::{ImageClassifier, SignalNoiseAttentionConfig, TwoLayerTransformerConfig};
use ember_train::DeviceChoice;

fn max_abs_difference<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let a = a
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    let b = b
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn transformer_models_give_the_same_outputs_on_wgpu_as_on_flex() {
    if !common::wgpu_tests_can_run("transformer_models_give_the_same_outputs_on_wgpu_as_on_flex") {
        return;
    }
    let wgpu = DeviceChoice::WgpuCpu.device().unwrap();
    let flex = Device::flex();
    flex.seed(5);

    let transformer = TwoLayerTransformerConfig::new(1, 8, 8, 3)
        .with_dim(16)
        .with_heads(2)
        .with_mlp_dim(16)
        .init(&flex)
        .unwrap();
    let images = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &flex);
    let expected = transformer.forward(images.clone());
    let inner = wgpu.clone().inner();
    let got = transformer.fork(&inner).forward(images.to_device(&inner));
    let gap = max_abs_difference(expected, got.to_device(&flex));
    assert!(
        gap < 1e-4,
        "transformer logits differ by {gap} between flex and wgpu"
    );

    let attention = SignalNoiseAttentionConfig::new(16)
        .with_key_width(3)
        .with_value_width(3);
    let model = attention.with_init_std(0.3).init(&flex).unwrap();
    let inputs = Tensor::<3>::random([4, 2, 16], Distribution::Normal(0.0, 1.0), &flex);
    let expected = model.forward(inputs.clone());
    let got = model.fork(&inner).forward(inputs.to_device(&inner));
    let gap = max_abs_difference(expected, got.to_device(&flex));
    assert!(
        gap < 1e-5,
        "attention model outputs differ by {gap} between flex and wgpu"
    );
}
