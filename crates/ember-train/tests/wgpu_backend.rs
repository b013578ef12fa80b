//! The same training loop on the `wgpu` backend, through a software Vulkan adapter (Mesa lavapipe)
//! on machines without a GPU. Skipped, with a `SKIPPED:` line on the terminal, where no Vulkan
//! driver is installed (`apt-get install mesa-vulkan-drivers libvulkan1`); a failure instead under
//! `CI=true`, since `.ci/run` installs it.
#![cfg(feature = "wgpu")]

mod common;

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::nn::{Linear, LinearConfig};
use burn::optim::AdamConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use common::train;
use ember_data::{epoch_order, Augmentation, ImageBatcher, ImageSet, ImageShape, Normalization};
use ember_models::SmallCnnConfig;
use ember_optim::{Batch, ClosureOptimizer, Objective, ZoSgdConfig};
use ember_train::{Budget, DeviceChoice, EvalSplit, RunDir, TrainData, TrainParts, TrainSettings};

/// Two 1×8×8 classes (bright left vs bright right half).
fn tiny_set(n: usize) -> ImageSet {
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let label = (i % 2) as u16;
        for _y in 0..8 {
            for x in 0..8 {
                let bright = (x < 4) == (label == 0);
                pixels.push(if bright { 200 } else { 30 } + (i % 7) as u8);
            }
        }
        labels.push(label);
    }
    ImageSet::new(shape, pixels, labels, vec!["left".into(), "right".into()]).unwrap()
}

#[test]
fn smallcnn_trains_on_a_software_wgpu_adapter() {
    if !common::wgpu_tests_can_run("smallcnn_trains_on_a_software_wgpu_adapter") {
        return;
    }
    let device = DeviceChoice::WgpuCpu.device().unwrap();
    device.seed(1);
    let train_set = tiny_set(32);
    let data = TrainData {
        batcher: ImageBatcher::new(Normalization::fit(&train_set), None),
        test: tiny_set(16),
        eval_split: EvalSplit::Test,
        train: train_set,
    };
    let parts = TrainParts {
        model: SmallCnnConfig::new(1, 2)
            .with_stage_widths(vec![4])
            .with_convs_per_stage(1)
            .init(&device)
            .unwrap(),
        optimizer: AdamConfig::new().with_epsilon(1e-8).init().into(),
        scheduler: ModuleLrScheduler::new(0.01),
        schedule_spans_run: None,
    };
    let settings = TrainSettings {
        budget: Budget::Epochs { epochs: 2 },
        batch_size: 8,
        eval_batch_size: 16,
        seed: 0,
        log_every: 2,
        progress: false,
        on_nonfinite: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("wgpu"));
    let summary = train(
        &run,
        &serde_json::json!({"device": "wgpu-cpu"}),
        &settings,
        &data,
        parts,
        &device,
        false,
    )
    .unwrap();
    let records = run.read_metrics().unwrap();
    assert!(records.iter().all(|r| r.train_loss.is_finite()));
    let first = records.first().unwrap().train_loss;
    assert!(
        summary.final_train_loss < first,
        "loss should fall on wgpu: first {first}, final {}",
        summary.final_train_loss
    );
}

/// The skip rule itself, on this very test binary with the driver hidden from the Vulkan loader
/// (`VK_DRIVER_FILES` naming no file): a visible `SKIPPED` line and a pass normally, a failure
/// naming the reason under `CI=true`.
#[test]
fn without_a_driver_the_gpu_tests_skip_visibly_and_fail_under_ci() {
    let this = std::env::current_exe().unwrap();
    let run = |ci: Option<&str>| {
        let mut command = std::process::Command::new(&this);
        command
            .args(["--exact", "smallcnn_trains_on_a_software_wgpu_adapter"])
            .env("VK_DRIVER_FILES", "/nonexistent/lvp_icd.x86_64.json")
            .env_remove("VK_ICD_FILENAMES")
            .env_remove("CI");
        if let Some(ci) = ci {
            command.env("CI", ci);
        }
        let out = command.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (passed, text) = run(None);
    assert!(passed, "{text}");
    assert!(
        text.contains("SKIPPED: smallcnn_trains_on_a_software_wgpu_adapter")
            && text.contains("no software Vulkan driver"),
        "the skip must say so, visibly:\n{text}"
    );
    assert!(text.contains("1 passed"), "the test itself ran: {text}");
    let (passed, text) = run(Some("true"));
    assert!(
        !passed,
        "CI=true must turn the skip into a failure:\n{text}"
    );
    assert!(text.contains("CI=true"), "{text}");
}

/// The device data path gives the same batches on wgpu as on flex: the `u8` upload, the gather,
/// the crop/flip gather and the normalisation, for a training batch and an evaluation batch.
#[test]
fn device_batches_on_wgpu_equal_those_on_flex() {
    if !common::wgpu_tests_can_run("device_batches_on_wgpu_equal_those_on_flex") {
        return;
    }
    let set = tiny_set(24);
    let batcher = ImageBatcher::new(Normalization::fit(&set), Some(Augmentation::cifar()));
    let order = epoch_order(set.len(), 3, 1);
    let batches_on = |device: &Device| {
        let images = batcher.upload(&set, device);
        let train = batcher.epoch(&images, &order, 3, 1).batch(4, 16);
        let eval = batcher.eval_batch(&images, 8, 16);
        [train, eval].map(|b| {
            let pixels: Vec<f32> = b
                .images
                .to_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            let targets: Vec<i64> = b
                .targets
                .to_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap();
            (pixels, targets)
        })
    };
    let on_flex = batches_on(&DeviceChoice::Flex.device().unwrap());
    let on_wgpu = batches_on(&DeviceChoice::WgpuCpu.device().unwrap());
    for ((flex_pixels, flex_targets), (wgpu_pixels, wgpu_targets)) in on_flex.iter().zip(&on_wgpu) {
        assert_eq!(flex_targets, wgpu_targets);
        assert_eq!(flex_pixels.len(), 16 * 64);
        for (i, (a, b)) in flex_pixels.iter().zip(wgpu_pixels).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "pixel {i}: flex {a}, wgpu {b}"
            );
        }
    }
}

/// Least squares of a `Linear` on fixed data: the objective of the ZO-SGD comparison below.
struct LeastSquares {
    x: Tensor<2>,
    y: Tensor<2>,
}

impl Objective<Linear> for LeastSquares {
    fn gradient(&mut self, model: &Linear, batch: Batch) -> (Tensor<1>, GradientsParams) {
        let loss = self.loss(model, batch);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss.detach(), grads)
    }

    fn loss(&mut self, model: &Linear, _batch: Batch) -> Tensor<1> {
        (model.forward(self.x.clone()) - self.y.clone())
            .square()
            .mean()
    }

    fn full_batches(&self) -> usize {
        0
    }
}

/// ZO-SGD's random directions are drawn on the device (a counter-based generator of integer
/// tensor ops): the same seed and step give the same step on wgpu as on flex.
#[test]
fn zo_sgd_draws_the_same_directions_on_wgpu_as_on_flex() {
    if !common::wgpu_tests_can_run("zo_sgd_draws_the_same_directions_on_wgpu_as_on_flex") {
        return;
    }
    let flex = DeviceChoice::Flex.device().unwrap();
    let model = LinearConfig::new(6, 2).init(&flex);
    let x: Vec<f32> = (0..48)
        .map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.5)
        .collect();
    let y: Vec<f32> = (0..16).map(|i| (i % 3) as f32 - 1.0).collect();
    let step_on = |device: &Device| -> Vec<f32> {
        let mut objective = LeastSquares {
            x: Tensor::from_data(TensorData::new(x.clone(), [8, 6]), device),
            y: Tensor::from_data(TensorData::new(y.clone(), [8, 2]), device),
        };
        // A wide μ: the finite differences of f32 losses then amplify rounding little.
        let mut zo = ZoSgdConfig::new()
            .with_mu(0.05)
            .with_directions(3)
            .with_seed(11)
            .init(SgdConfig::new().init());
        // `fork`, not `to_device`: the copy's parameters still require gradients.
        let mut model = model.clone().fork(device);
        for _ in 0..2 {
            model = zo.step(0.5.into(), model, &mut objective).model;
        }
        let weight = model.weight.val().into_data().convert::<f32>();
        weight.try_to_vec::<f32>().unwrap()
    };
    let before: Vec<f32> = model.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let on_flex = step_on(&flex);
    let wgpu = DeviceChoice::WgpuCpu.device().unwrap();
    // With 64-bit integers the generator runs on the adapter itself (else on the host).
    assert!(wgpu.supports_dtype(burn::tensor::DType::I64));
    let on_wgpu = step_on(&wgpu);
    let moved: f32 = on_flex
        .iter()
        .zip(&before)
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(moved > 1e-3, "the steps moved the weights: {moved}");
    for (i, (a, b)) in on_flex.iter().zip(&on_wgpu).enumerate() {
        assert!((a - b).abs() < 1e-4, "weight {i}: flex {a}, wgpu {b}");
    }
}
