#![cfg(feature = "flex")]
//! The learning-rate range test on a tiny generated data set and a tiny SmallCnn: the learning
//! rates it uses, the divergence stop, and the files it writes.

use burn::prelude::*;
use ember_data::{GeneratedConfig, ImageBatcher, Normalization};
use ember_lab::tools::lr_find::write_lr_find;
use ember_lab::{lr_find, LrFindSettings, OptimizerSpec};
use ember_models::{SmallCnn, SmallCnnConfig};
use ember_optim::{SamConfig, SvrgConfig};
use ember_train::{EvalSplit, ImageClassification, SettingsError, TrainData};

/// The CPU training device, with `Device::default()` pinned to flex too (see train_loop.rs).
fn flex() -> Device {
    static PIN_DEFAULT: std::sync::Once = std::sync::Once::new();
    PIN_DEFAULT.call_once(|| std::env::set_var("BURN_DEVICE", "flex"));
    Device::flex().autodiff()
}

fn data() -> TrainData {
    let split = GeneratedConfig {
        train_size: 64,
        test_size: 8,
        image_size: 8,
        channels: 1,
        num_classes: 4,
        seed: 5,
        ..GeneratedConfig::default()
    }
    .generate()
    .unwrap();
    TrainData {
        batcher: ImageBatcher::new(Normalization::fit(&split.train), None),
        train: split.train,
        test: split.test,
        eval_split: EvalSplit::Test,
    }
}

/// The range test's task: the data in batches of `batch_size`, seed 1.
fn task(
    device: &Device,
    batch_size: usize,
) -> Result<ImageClassification<SmallCnn>, SettingsError> {
    ImageClassification::new(&data(), batch_size, 8, 1, device)
}

fn model(device: &Device) -> SmallCnn {
    SmallCnnConfig::new(1, 4)
        .with_stage_widths(vec![4, 8])
        .with_convs_per_stage(1)
        .init(device)
        .unwrap()
}

fn sgd() -> OptimizerSpec {
    OptimizerSpec::Sgd {
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    }
}

fn settings(end_lr: f64, steps: usize) -> LrFindSettings {
    LrFindSettings {
        start_lr: 1e-4,
        end_lr,
        steps,
        ..LrFindSettings::default()
    }
}

#[test]
fn sweeps_geometrically_from_start_to_end_and_cycles_the_data() {
    let device = flex();
    let task = task(&device, 16).unwrap();
    // 10 steps of 16 images over 64 images: the data is cycled through 3 passes.
    let settings = settings(1e-2, 10);
    let curve = lr_find(model(&device), sgd().build(16).unwrap(), &task, &settings).unwrap();
    assert!(!curve.stopped_early);
    assert_eq!(curve.points.len(), 10);
    let lrs: Vec<f64> = curve.points.iter().map(|p| p.lr).collect();
    assert_eq!(lrs[0], 1e-4);
    assert_eq!(lrs[9], 1e-2);
    let ratio = (1e-2f64 / 1e-4).powf(1.0 / 9.0);
    for pair in lrs.windows(2) {
        assert!((pair[1] / pair[0] - ratio).abs() < 1e-9, "{lrs:?}");
    }
    assert!(curve
        .points
        .iter()
        .enumerate()
        .all(|(i, p)| p.step == i && p.loss.is_finite() && p.smoothed_loss.is_finite()));
}

#[test]
fn stops_early_when_the_loss_diverges_and_still_writes_its_files() {
    let device = flex();
    let task = task(&device, 16).unwrap();
    let settings = settings(1e8, 60);
    let curve = lr_find(model(&device), sgd().build(16).unwrap(), &task, &settings).unwrap();
    assert!(curve.stopped_early, "lr up to 1e8 must diverge: {curve:?}");
    assert!(curve.points.len() < 60);
    let last = curve.points.last().unwrap();
    let best = curve
        .points
        .iter()
        .map(|p| p.smoothed_loss)
        .fold(f64::INFINITY, f64::min);
    assert!(
        !last.smoothed_loss.is_finite() || last.smoothed_loss > 4.0 * best,
        "stopped at {last:?} with best {best}"
    );

    let dir = tempfile::tempdir().unwrap();
    let suggestion = curve.suggest().ok();
    let files = write_lr_find(
        dir.path(),
        &settings,
        &curve,
        suggestion.as_ref(),
        &serde_json::json!({}),
    )
    .unwrap();
    let csv = std::fs::read_to_string(&files.csv).unwrap();
    assert_eq!(csv.lines().count(), curve.points.len() + 1);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
    assert_eq!(json["stopped_early"], true);
    assert!(files.plot_drawn);
    assert!(std::fs::metadata(&files.plot).unwrap().len() > 0);
}

#[test]
fn bad_settings_are_refused_before_training() {
    let device = flex();
    // A batch larger than the training set is refused when the task is built…
    let Err(err) = task(&device, 65) else {
        panic!("a batch of 65 from 64 images was accepted")
    };
    assert_eq!(err.field, "batch_size", "{err}");
    // …and a bad sweep before the first step.
    let err = lr_find(
        model(&device),
        sgd().build(16).unwrap(),
        &task(&device, 16).unwrap(),
        &LrFindSettings {
            end_lr: 1e-5,
            ..settings(1.0, 10)
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("end_lr"), "{err}");
}

#[test]
fn closure_optimizers_sweep_through_the_same_loop() {
    let device = flex();
    let task = task(&device, 16).unwrap();
    let base = Box::new(sgd());
    // SVRG takes a full-data snapshot at every pass over the data, which the sweep crosses at step 4.
    for spec in [
        OptimizerSpec::Sam {
            base: base.clone(),
            sam: SamConfig::new(),
        },
        OptimizerSpec::Svrg {
            base,
            svrg: SvrgConfig::new(),
        },
    ] {
        let curve = lr_find(
            model(&device),
            spec.build_rule::<SmallCnn>(16).unwrap(),
            &task,
            &settings(1e-2, 6),
        )
        .unwrap();
        assert_eq!(curve.points.len(), 6, "{}", spec.name());
        assert!(curve.points.iter().all(|p| p.loss.is_finite()));
    }
}
