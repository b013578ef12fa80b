#![cfg(feature = "flex")]
//! End-to-end tests of the training loop on tiny data: learning happens, files are written, and a
//! resumed run reproduces an uninterrupted one exactly.

mod common;

use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use common::train;
use ember_data::{ImageBatcher, ImageSet, ImageShape, Normalization};
use ember_models::{SmallCnn, SmallCnnConfig};
use ember_optim::{
    DirectionRule, GamConfig, IfShampooConfig, PlrsConfig, RfRmsPropConfig, SignumConfig,
    VamoConfig,
};
use ember_train::{
    Budget, CheckpointStore, EvalSplit, MetricsRecord, RecordKind, RunDir, StepRule, TrainData,
    TrainError, TrainParts, TrainSettings,
};

/// 2 classes of 8×8 grey images: class 0 is bright in the top half, class 1 in the bottom half,
/// with deterministic pseudo-random noise on top.
fn halves(n: usize, salt: u64) -> ImageSet {
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let mut pixels = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    let mut state = salt.wrapping_mul(6364136223846793005).wrapping_add(1);
    for i in 0..n {
        let label = (i % 2) as u16;
        for y in 0..8 {
            for _ in 0..8 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = (state >> 58) as u8; // 0..63
                let bright = (y < 4) == (label == 0);
                pixels.push(if bright { 150 + noise } else { 40 + noise });
            }
        }
        labels.push(label);
    }
    ImageSet::new(shape, pixels, labels, vec!["top".into(), "bottom".into()]).unwrap()
}

/// The CPU training device. Also pins `Device::default()` to flex: burn reloads optimizer state
/// there, and with wgpu compiled in it would otherwise start a GPU adapter during resume tests.
fn flex() -> Device {
    static PIN_DEFAULT: std::sync::Once = std::sync::Once::new();
    PIN_DEFAULT.call_once(|| std::env::set_var("BURN_DEVICE", "flex"));
    Device::flex().autodiff()
}

/// Model initialisation draws from the device's global generator (`device.seed`), which every test
/// thread shares; tests that compare two seeded runs hold this lock so no other test draws in
/// between.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded() -> std::sync::MutexGuard<'static, ()> {
    SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn data() -> TrainData {
    let train = halves(64, 1);
    let test = halves(32, 2);
    let batcher = ImageBatcher::new(Normalization::fit(&train), None);
    TrainData {
        train,
        test,
        eval_split: EvalSplit::Test,
        batcher,
    }
}

fn settings(epochs: usize) -> TrainSettings {
    TrainSettings {
        budget: Budget::Epochs { epochs },
        batch_size: 16,
        eval_batch_size: 32,
        seed: 3,
        log_every: 2,
        progress: false,
        on_nonfinite: Default::default(),
    }
}

/// An optimizer the tests train with, built afresh for every run as a new process would.
#[derive(Clone, Copy, Debug)]
enum Optimizer {
    Sgd,
    Adam,
    RfRmsProp,
    IfShampoo,
    Signum,
    Gam,
    /// VAMO around SGD with `directions` random directions, adaptive α or not.
    Vamo {
        directions: usize,
        adaptive: bool,
    },
}

/// SGD with heavy-ball momentum 0.9 (no dampening) and L2 weight decay 5e-4.
fn sgd() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        }))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init()
}

impl Optimizer {
    fn build(self) -> StepRule<SmallCnn> {
        match self {
            Self::Sgd => sgd().into(),
            Self::Adam => AdamConfig::new().with_epsilon(1e-8).init().into(),
            Self::RfRmsProp => RfRmsPropConfig::new(16).init().into(),
            Self::IfShampoo => IfShampooConfig::new(16).init().into(),
            Self::Signum => SignumConfig::new().init().into(),
            Self::Gam => {
                StepRule::Closure(Box::new(GamConfig::new().build().unwrap().with_base(sgd())))
            }
            Self::Vamo {
                directions,
                adaptive,
            } => StepRule::Closure(Box::new(
                VamoConfig::new()
                    .with_directions(directions)
                    .with_adaptive_alpha(adaptive)
                    .try_init::<SmallCnn>(sgd())
                    .unwrap(),
            )),
        }
    }
}

/// A learning-rate schedule the tests train with.
#[derive(Clone, Copy, Debug)]
enum Schedule {
    /// Cosine from 0.05 to 0.001 over the run.
    Cosine,
    /// PLRS in [0.01, 0.05] with a 2-step warm-up, redrawn every step.
    Plrs,
}

impl Schedule {
    fn build(self, total_steps: usize) -> ModuleLrScheduler {
        match self {
            Self::Cosine => CosineAnnealingLrSchedulerConfig::new(0.05, total_steps)
                .with_min_lr(0.001)
                .init()
                .unwrap(),
            Self::Plrs => PlrsConfig::new(0.01, 0.05)
                .with_warmup_steps(2)
                .with_seed(9)
                .init()
                .unwrap(),
        }
    }
}

fn parts(optimizer: Optimizer, total_steps: usize) -> TrainParts<SmallCnn> {
    parts_with(optimizer, Schedule::Cosine, total_steps)
}

fn parts_with(
    optimizer: Optimizer,
    schedule: Schedule,
    total_steps: usize,
) -> TrainParts<SmallCnn> {
    let device = flex();
    device.seed(11);
    TrainParts {
        model: SmallCnnConfig::new(1, 2)
            .with_stage_widths(vec![4, 8])
            .with_convs_per_stage(1)
            .init(&device)
            .unwrap(),
        optimizer: optimizer.build(),
        scheduler: schedule.build(total_steps),
        schedule_spans_run: None,
    }
}

fn config(epochs: usize) -> serde_json::Value {
    serde_json::json!({ "epochs": epochs, "what": "train_loop test" })
}

/// One metrics line's learning-relevant numbers, as exact bit patterns:
/// (kind, step, train loss, test loss, test accuracy, lr).
type CurvePoint = (String, u64, u64, Option<u64>, Option<u64>, u64, Option<u64>);

/// The learning-relevant numbers of a metrics file (wall times and throughput left out).
fn learning_curve(records: &[MetricsRecord]) -> Vec<CurvePoint> {
    records
        .iter()
        .map(|r| {
            (
                format!("{:?}", r.kind),
                r.step,
                r.train_loss.to_bits(),
                r.eval_metric("loss").map(f64::to_bits),
                r.eval_metric("accuracy").map(f64::to_bits),
                r.lr.to_bits(),
                r.diagnostics.get("alpha").map(|a| a.to_bits()),
            )
        })
        .collect()
}

#[test]
fn trains_and_writes_metrics_summary_and_checkpoints() {
    let _serial = seeded();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    let data = data();
    let summary = train(
        &run,
        &config(4),
        &settings(4),
        &data,
        parts(Optimizer::Sgd, 16),
        &flex(),
        false,
    )
    .unwrap();
    assert_eq!(summary.steps, 16, "4 epochs × 64/16 steps");
    assert!(
        summary.final_value() >= 0.9,
        "a trivially separable task should be learnt: {summary:?}"
    );

    let records = run.read_metrics().unwrap();
    let epochs: Vec<&MetricsRecord> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Eval)
        .collect();
    let steps: Vec<&MetricsRecord> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Step)
        .collect();
    assert_eq!(epochs.len(), 4);
    assert_eq!(steps.len(), 8, "a step line every 2 of 16 steps");
    assert!(epochs
        .iter()
        .all(|r| r.eval_metric("accuracy").is_some() && r.items_per_s > 0.0));
    assert!(
        epochs[3].train_loss < epochs[0].train_loss,
        "training loss should fall: {:?}",
        epochs.iter().map(|r| r.train_loss).collect::<Vec<_>>()
    );
    // The cosine schedule is visible in the logged learning rates.
    assert!(steps[0].lr > steps[7].lr);

    let summary_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.summary()).unwrap()).unwrap();
    assert_eq!(summary_json["summary"]["steps"], 16);
    assert_eq!(summary_json["config"]["what"], "train_loop test");
    let kept = CheckpointStore::new(run.checkpoints(), 2).list();
    assert_eq!(
        kept.len(),
        2,
        "only the newest two checkpoints are kept: {kept:?}"
    );
    assert!(kept[0].ends_with("epoch-0004"));
}

#[test]
fn resumed_runs_match_uninterrupted_runs_bit_for_bit() {
    let _serial = seeded();
    let cases = [
        ("sgd", Optimizer::Sgd, Schedule::Cosine),
        ("adam", Optimizer::Adam, Schedule::Cosine),
        ("rf-rmsprop", Optimizer::RfRmsProp, Schedule::Cosine),
        ("if-shampoo", Optimizer::IfShampoo, Schedule::Cosine),
        ("signum", Optimizer::Signum, Schedule::Cosine),
        ("sgd+plrs", Optimizer::Sgd, Schedule::Plrs),
        ("gam(sgd)", Optimizer::Gam, Schedule::Cosine),
        (
            "vamo(sgd), adaptive α",
            Optimizer::Vamo {
                directions: 2,
                adaptive: true,
            },
            Schedule::Cosine,
        ),
    ];
    for (name, optimizer, scheduler) in cases {
        let dir = tempfile::tempdir().unwrap();
        let device = flex();
        let data = data();
        let run = |path: &str, epochs: usize, resume: bool| {
            let parts = parts_with(optimizer, scheduler, 12);
            let dir = RunDir::new(dir.path().join(path));
            train(
                &dir,
                &config(epochs),
                &settings(epochs),
                &data,
                parts,
                &device,
                resume,
            )
            .unwrap()
        };
        let full = run("full", 3, false);
        // Stop after one epoch, then resume the same run up to three epochs with fresh objects.
        run("split", 1, false);
        let resumed = run("split", 3, true);
        assert_eq!(resumed.resumed_from_round, 1, "{name}");
        // The summary covers the whole run, the epoch before the resume included.
        assert_eq!(resumed.best_value, full.best_value, "{name}");
        assert_eq!(resumed.steps, full.steps, "{name}");

        let curve = |path: &str| {
            learning_curve(&RunDir::new(dir.path().join(path)).read_metrics().unwrap())
        };
        assert_eq!(
            curve("full"),
            curve("split"),
            "{name}: resumed metrics differ from the uninterrupted run"
        );
    }
}

#[test]
fn every_run_reports_its_passes_per_step() {
    let _serial = seeded();
    let dir = tempfile::tempdir().unwrap();
    let device = flex();
    let data = data();
    let q = 2;
    let cases = [
        ("sgd", Optimizer::Sgd, 1.0, 1.0),
        ("gam", Optimizer::Gam, 4.0, 4.0),
        (
            // Per step: the gradient, then q + 1 forward passes at the snapshot; per epoch, q + 1
            // forward passes on each full-data batch, as many as there are steps here.
            "vamo",
            Optimizer::Vamo {
                directions: q,
                adaptive: false,
            },
            1.0 + 2.0 * (q as f64 + 1.0),
            1.0,
        ),
    ];
    for (name, optimizer, forward, backward) in cases {
        let run = RunDir::new(dir.path().join(name));
        let summary = train(
            &run,
            &config(1),
            &settings(1),
            &data,
            parts_with(optimizer, Schedule::Cosine, 4),
            &device,
            false,
        )
        .unwrap();
        assert_eq!(summary.forward_passes_per_step, forward, "{name}");
        assert_eq!(summary.backward_passes_per_step, backward, "{name}");
        let records = run.read_metrics().unwrap();
        let epoch = records.iter().find(|r| r.kind == RecordKind::Eval).unwrap();
        assert_eq!(epoch.forward_passes, Some(forward), "{name}");
        assert_eq!(epoch.backward_passes, Some(backward), "{name}");
    }
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_previous_one() {
    let _serial = seeded();
    let dir = tempfile::tempdir().unwrap();
    let device = flex();
    let data = data();
    let run = RunDir::new(dir.path().join("run"));
    train(
        &run,
        &config(2),
        &settings(2),
        &data,
        parts(Optimizer::Sgd, 8),
        &device,
        false,
    )
    .unwrap();

    // Cut the newest checkpoint's optimizer state in half, as a crash mid-copy would.
    let newest = CheckpointStore::new(run.checkpoints(), 2).list()[0].clone();
    let optimizer_file = newest.join("optimizer.bpk");
    let bytes = std::fs::read(&optimizer_file).unwrap();
    std::fs::write(&optimizer_file, &bytes[..bytes.len() / 2]).unwrap();

    let resumed = train(
        &run,
        &config(2),
        &settings(2),
        &data,
        parts(Optimizer::Sgd, 8),
        &device,
        true,
    )
    .unwrap();
    assert_eq!(
        resumed.resumed_from_round, 1,
        "fell back to the epoch-1 checkpoint"
    );
    let records = run.read_metrics().unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.kind == RecordKind::Eval)
            .count(),
        2,
        "epoch 2 was rerun and its lines replaced, not duplicated"
    );
}

#[test]
fn refuses_to_overwrite_a_run_or_resume_a_different_one() {
    let _serial = seeded();
    let dir = tempfile::tempdir().unwrap();
    let device = flex();
    let data = data();
    let run = RunDir::new(dir.path().join("run"));
    train(
        &run,
        &config(1),
        &settings(1),
        &data,
        parts(Optimizer::Sgd, 4),
        &device,
        false,
    )
    .unwrap();

    let err = train(
        &run,
        &config(1),
        &settings(1),
        &data,
        parts(Optimizer::Sgd, 4),
        &device,
        false,
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::RunExists(_)), "{err}");
    assert!(err.to_string().contains("--resume"));

    let other = serde_json::json!({ "epochs": 1, "what": "something else" });
    let err = train(
        &run,
        &other,
        &settings(1),
        &data,
        parts(Optimizer::Sgd, 4),
        &device,
        true,
    )
    .unwrap_err();
    assert!(err.to_string().contains("what"), "{err}");
}

#[test]
fn rejects_a_batch_larger_than_the_training_set() {
    let _serial = seeded();
    let dir = tempfile::tempdir().unwrap();
    let mut bad = settings(1);
    bad.batch_size = 1000;
    let err = train(
        &RunDir::new(dir.path().join("run")),
        &config(1),
        &bad,
        &data(),
        parts(Optimizer::Sgd, 4),
        &flex(),
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
}

/// A learning rate of 0.05 except at steps `from..=to`, where it is `lr` (infinite: that step's
/// update makes every parameter non-finite; negative: the steps climb the loss).
#[derive(Clone)]
struct SpikeAt {
    from: u64,
    to: u64,
    lr: f64,
    step: u64,
}

impl burn::lr_scheduler::LrScheduler for SpikeAt {
    fn step(&mut self) -> f64 {
        self.step += 1;
        if (self.from..=self.to).contains(&self.step) {
            self.lr
        } else {
            0.05
        }
    }

    fn to_record(&self) -> burn::lr_scheduler::LrSchedulerRecord {
        burn::lr_scheduler::LrSchedulerRecord::new().with_scalar("step", self.step)
    }

    fn load_record(&mut self, record: burn::lr_scheduler::LrSchedulerRecord) {
        self.step = record.scalar::<u64>("step").unwrap_or(self.step);
    }
}

fn spiking_parts(spike: u64) -> TrainParts<SmallCnn> {
    scheduled_parts(SpikeAt {
        from: spike,
        to: spike,
        lr: f64::INFINITY,
        step: 0,
    })
}

fn scheduled_parts(schedule: SpikeAt) -> TrainParts<SmallCnn> {
    let mut parts = parts(Optimizer::Sgd, 12);
    parts.scheduler = burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler::new(schedule);
    parts
}

#[test]
fn a_non_finite_update_stops_naming_the_step_and_parameter() {
    let _serial = seeded();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    // Step 6 (epoch 2) sets the parameters to ±∞/NaN; step 7's loss is the first non-finite one.
    let err = train(
        &run,
        &config(3),
        &settings(3),
        &data(),
        spiking_parts(6),
        &flex(),
        false,
    )
    .unwrap_err();
    match &err {
        TrainError::NonFinite {
            step,
            round,
            parameter,
            ..
        } => {
            assert_eq!((*step, *round), (7, 2), "{err}");
            assert_eq!(parameter.as_deref(), Some("stages.0.blocks.0.conv.weight"));
        }
        other => panic!("expected NonFinite, got {other}"),
    }
    assert!(
        err.to_string().contains("first non-finite parameter"),
        "{err}"
    );
    // The epoch-1 checkpoint stays the newest; nothing from the bad epoch was written.
    let kept = CheckpointStore::new(run.checkpoints(), 2).list();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].ends_with("epoch-0001"));
}

#[test]
fn the_skip_policy_undoes_a_non_finite_step_and_carries_on() {
    let _serial = seeded();
    let dir = tempfile::tempdir().unwrap();
    let mut skip = settings(3);
    skip.on_nonfinite = ember_train::NonFinitePolicy::Skip;
    let summary = train(
        &RunDir::new(dir.path().join("run")),
        &config(3),
        &skip,
        &data(),
        spiking_parts(6),
        &flex(),
        false,
    )
    .unwrap();
    assert_eq!(summary.skipped_steps, 1);
    assert!(summary.final_train_loss.is_finite());
    assert!(summary.final_eval.loss.is_finite());

    // The count survives a resume: stop after the skipped step's epoch, then finish the run.
    let mut two = skip.clone();
    two.budget = Budget::Epochs { epochs: 2 };
    let run = RunDir::new(dir.path().join("split"));
    let first = train(
        &run,
        &config(2),
        &two,
        &data(),
        spiking_parts(6),
        &flex(),
        false,
    )
    .unwrap();
    assert_eq!(first.skipped_steps, 1);
    let resumed = train(
        &run,
        &config(3),
        &skip,
        &data(),
        spiking_parts(6),
        &flex(),
        true,
    )
    .unwrap();
    assert_eq!(resumed.resumed_from_round, 2);
    assert_eq!(resumed.skipped_steps, 1);
}

#[test]
fn a_resumed_run_remembers_its_best_epoch() {
    let _serial = seeded();
    // Epoch 3 (steps 9-12) climbs the loss, so the best test accuracy is an earlier epoch's.
    let climb = || {
        scheduled_parts(SpikeAt {
            from: 9,
            to: 12,
            lr: -0.5,
            step: 0,
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let full = RunDir::new(dir.path().join("full"));
    let full = train(
        &full,
        &config(3),
        &settings(3),
        &data(),
        climb(),
        &flex(),
        false,
    )
    .unwrap();
    assert!(
        full.best_value > full.final_value(),
        "the climb should cost accuracy: best {}, final {}",
        full.best_value,
        full.final_value()
    );
    let split = RunDir::new(dir.path().join("split"));
    train(
        &split,
        &config(2),
        &settings(2),
        &data(),
        climb(),
        &flex(),
        false,
    )
    .unwrap();
    let resumed = train(
        &split,
        &config(3),
        &settings(3),
        &data(),
        climb(),
        &flex(),
        true,
    )
    .unwrap();
    assert_eq!(resumed.resumed_from_round, 2);
    assert_eq!(resumed.best_value, full.best_value);
}
