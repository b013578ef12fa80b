//! Half-precision optimizer steps on the `wgpu` backend through a software Vulkan adapter: the
//! root-free methods exist to be stable in low precision, so f16 and bf16 parameters must stay
//! finite and keep their dtype. Skipped, with a message, where no Vulkan driver is installed or the
//! adapter lacks the dtype.
#![cfg(feature = "wgpu")]

mod common;

use burn::optim::Optimizer;
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use ember_optim::{IfShampooConfig, RfRmsPropConfig};
use ember_train::DeviceChoice;

/// A [4, 3] weight and a gradient with entries spread over three orders of magnitude, cast to
/// `dtype`.
fn weight_and_grad(device: &Device, dtype: FloatDType, step: usize) -> (Tensor<2>, Tensor<2>) {
    let w: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) * 0.1).collect();
    let g: Vec<f32> = (0..12)
        .map(|i| ((i * 7 + step * 3) % 11) as f32 * 10f32.powi((i % 3) as i32 - 2) - 0.2)
        .collect();
    let w = Tensor::<2>::from_data(TensorData::new(w, [4, 3]), device).cast(dtype);
    let g = Tensor::<2>::from_data(TensorData::new(g, [4, 3]), device).cast(dtype);
    (w, g)
}

fn run<O: Optimizer>(optimizer: &O, device: &Device, dtype: FloatDType, name: &str) {
    let (mut weight, _) = weight_and_grad(device, dtype, 0);
    let mut state = None;
    for step in 0..6 {
        let (_, grad) = weight_and_grad(device, dtype, step);
        let (w, s) = optimizer.step(1e-2, weight, grad, state);
        weight = w;
        state = s;
    }
    assert_eq!(
        weight.dtype(),
        DType::from(dtype),
        "{name} changed the dtype"
    );
    let values: Vec<f32> = weight.into_data().iter::<f32>().collect();
    assert!(
        values.iter().all(|v| v.is_finite()),
        "{name} in {dtype:?} produced non-finite values: {values:?}"
    );
}

#[test]
fn root_free_steps_stay_finite_in_half_precision() {
    if !common::wgpu_tests_can_run("root_free_steps_stay_finite_in_half_precision") {
        return;
    }
    let device = DeviceChoice::WgpuCpu.device().unwrap().inner();
    let rf = RfRmsPropConfig::new(32).build().unwrap();
    let shampoo = IfShampooConfig::new(32).build().unwrap();
    let mut tested = 0;
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        if !device.supports_dtype(DType::from(dtype)) {
            eprintln!("skipping {dtype:?}: the adapter does not support it");
            continue;
        }
        run(&rf, &device, dtype, "RF-RMSProp");
        run(&shampoo, &device, dtype, "IF-Shampoo");
        tested += 1;
    }
    if tested == 0 {
        // Nothing was checked: say so in the convention every wgpu test skips with.
        eprintln!(
            "SKIPPED: root_free_steps_stay_finite_in_half_precision: the wgpu-cpu adapter \
             supports neither f16 nor bf16"
        );
    } else {
        eprintln!("half-precision dtypes tested on wgpu-cpu: {tested}");
    }
}
