//! SmallCnn's parts (its default configuration): named as in the Python profile (`conv1`, `bn1`,
//! `relu1`, …, `pool1`, …, `gap`, `head`), the loss last.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use ember_models::{SmallCnnConfig, SmallCnnLayer};

use super::parts::{one, Chain, Value};
use super::{CHANNELS, CLASSES};

/// SmallCnn's layers as SmallCnn runs them (conv and BatchNorm on Ember's kernels where the
/// device is flex), then the cross-entropy against `targets`.
pub(super) fn parts(targets: Tensor<1, Int>, device: &Device) -> anyhow::Result<Chain> {
    let mut chain = Chain::default();
    for (name, layer) in SmallCnnConfig::new(CHANNELS, CLASSES)
        .init(device)?
        .into_layers()
    {
        match layer {
            SmallCnnLayer::GlobalPool(pool) => chain.then(name, "gap", move |x| {
                vec![Value::Flat(pool.forward(one(x).image()).flatten::<2>(1, 3))]
            }),
            SmallCnnLayer::Head(head) => chain.then(name, "linear", move |x| {
                vec![Value::Flat(head.forward(one(x).flat()))]
            }),
            layer => chain.then(name, kind(&layer), move |x| {
                let y = layer.forward_maps(one(x).image());
                vec![Value::Image(y.expect("only the head takes flat features"))]
            }),
        };
    }
    let loss = CrossEntropyLossConfig::new().init(device);
    chain.then("loss", "loss", move |x| {
        vec![Value::Scalar(loss.forward(one(x).flat(), targets.clone()))]
    });
    Ok(chain)
}

fn kind(layer: &SmallCnnLayer) -> &'static str {
    match layer {
        SmallCnnLayer::Conv(_) => "conv",
        SmallCnnLayer::Norm(_) => "batchnorm",
        SmallCnnLayer::Relu(_) => "relu",
        SmallCnnLayer::Pool(_) => "maxpool",
        SmallCnnLayer::GlobalPool(_) => "gap",
        SmallCnnLayer::Head(_) => "linear",
    }
}
