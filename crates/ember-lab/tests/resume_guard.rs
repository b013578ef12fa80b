#![cfg(feature = "flex")]
//! Resume refuses every change that would alter a run's trajectory, naming the setting, and never
//! rewrites a finished run's summary.

use burn::prelude::*;
use ember_data::{ImageBatcher, ImageSet, ImageShape, Normalization};
use ember_lab::{OptimizerSpec, SchedulerSpec};
use ember_models::{SmallCnn, SmallCnnConfig};
use ember_train::{
    Budget, EvalSplit, ImageClassification, RunDir, RunSummary, TrainData, TrainError, TrainParts,
    TrainSettings,
};

/// 2 classes of 8×8 grey images (bright top vs bright bottom half), with `salt`-seeded noise.
fn halves(n: usize, salt: u64) -> ImageSet {
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let mut state = salt.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut pixels = Vec::with_capacity(n * 64);
    let labels: Vec<u16> = (0..n).map(|i| (i % 2) as u16).collect();
    for &label in &labels {
        for y in 0..8 {
            for _ in 0..8 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let bright = (y < 4) == (label == 0);
                pixels.push(if bright { 150 } else { 40 } + (state >> 58) as u8);
            }
        }
    }
    ImageSet::new(shape, pixels, labels, vec!["top".into(), "bottom".into()]).unwrap()
}

fn flex() -> Device {
    static PIN_DEFAULT: std::sync::Once = std::sync::Once::new();
    PIN_DEFAULT.call_once(|| std::env::set_var("BURN_DEVICE", "flex"));
    Device::flex().autodiff()
}

/// Model initialisation draws from the device's shared generator: one run at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn data(salt: u64) -> TrainData {
    let train = halves(32, salt);
    let test = halves(16, salt + 100);
    TrainData {
        batcher: ImageBatcher::new(Normalization::fit(&train), None),
        train,
        test,
        eval_split: EvalSplit::Test,
    }
}

fn sgd(momentum: f64) -> OptimizerSpec {
    OptimizerSpec::Sgd {
        momentum,
        nesterov: false,
        weight_decay: 0.0,
    }
}

fn cosine() -> SchedulerSpec {
    SchedulerSpec::Cosine {
        lr: 0.05,
        min_lr: 0.0,
        warmup_steps: 0,
    }
}

/// One run's choices, recorded in its config the way `ember train` records them.
#[derive(Clone)]
struct Setup {
    optimizer: OptimizerSpec,
    scheduler: SchedulerSpec,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    salt: u64,
}

impl Setup {
    fn new(scheduler: SchedulerSpec) -> Self {
        Self {
            optimizer: sgd(0.9),
            scheduler,
            epochs: 2,
            batch_size: 8,
            seed: 1,
            salt: 1,
        }
    }

    fn settings(&self) -> TrainSettings {
        TrainSettings {
            budget: Budget::Epochs {
                epochs: self.epochs,
            },
            batch_size: self.batch_size,
            eval_batch_size: 16,
            seed: self.seed,
            log_every: 2,
            progress: false,
            on_nonfinite: Default::default(),
        }
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "train": self.settings(),
        })
    }

    fn run(&self, run: &RunDir, resume: bool) -> Result<RunSummary, TrainError> {
        let device = flex();
        device.seed(7);
        let steps_per_epoch = 32 / self.batch_size;
        let parts: TrainParts<SmallCnn> = TrainParts {
            model: SmallCnnConfig::new(1, 2)
                .with_stage_widths(vec![4])
                .with_convs_per_stage(1)
                .init(&device)
                .unwrap(),
            optimizer: self.optimizer.build_rule(self.batch_size).unwrap(),
            scheduler: self
                .scheduler
                .build(steps_per_epoch * self.epochs, steps_per_epoch)
                .unwrap(),
            // What `RunSpec::train` tells the loop about this schedule.
            schedule_spans_run: self
                .scheduler
                .spans_run()
                .then(|| self.scheduler.name().to_string()),
        };
        let settings = self.settings();
        let task = ImageClassification::new(
            &data(self.salt),
            settings.batch_size,
            settings.eval_batch_size,
            settings.seed,
            &device,
        )?;
        ember_train::train(run, &self.config(), &settings, &task, parts, resume)
    }
}

#[test]
fn resume_refuses_every_change_that_alters_the_trajectory_naming_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    let base = Setup::new(cosine());
    // A two-epoch run, then made to look interrupted after its first epoch.
    base.run(&run, false).unwrap();
    std::fs::remove_file(run.summary()).unwrap();
    std::fs::remove_dir_all(run.checkpoints().join("epoch-0002")).unwrap();
    let config_before = std::fs::read(run.config()).unwrap();

    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "epochs under a cosine schedule",
            Setup {
                epochs: 3,
                ..base.clone()
            },
            "epochs = 3",
        ),
        (
            "the schedule",
            Setup::new(SchedulerSpec::Constant { lr: 0.05 }),
            "scheduler.name",
        ),
        (
            "the optimizer",
            Setup {
                optimizer: sgd(0.5),
                ..base.clone()
            },
            "optimizer.momentum",
        ),
        (
            "the seed",
            Setup {
                seed: 2,
                ..base.clone()
            },
            "train.seed",
        ),
        (
            "the batch size",
            Setup {
                batch_size: 16,
                ..base.clone()
            },
            "train.batch_size",
        ),
        (
            "the data",
            Setup {
                salt: 2,
                ..base.clone()
            },
            "data",
        ),
    ];
    for (what, setup, named) in cases {
        let err = setup.run(&run, true).expect_err(what);
        let message = err.to_string();
        assert!(
            message.contains(named),
            "changing {what}: `{named}` not named in: {message}"
        );
        assert_eq!(
            std::fs::read(run.config()).unwrap(),
            config_before,
            "changing {what}: config.json was rewritten"
        );
    }
    // Unchanged, it resumes (and finishes the run).
    let resumed = base.run(&run, true).unwrap();
    assert_eq!(resumed.resumed_from_round, 1);
}

#[test]
fn epochs_may_change_when_the_schedule_does_not_span_the_run() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let constant = Setup::new(SchedulerSpec::Constant { lr: 0.05 });
    let (split, full) = (
        RunDir::new(dir.path().join("split")),
        RunDir::new(dir.path().join("full")),
    );
    Setup {
        epochs: 1,
        ..constant.clone()
    }
    .run(&split, false)
    .unwrap();
    let resumed = Setup {
        epochs: 3,
        ..constant.clone()
    }
    .run(&split, true)
    .unwrap();
    let uninterrupted = Setup {
        epochs: 3,
        ..constant
    }
    .run(&full, false)
    .unwrap();
    assert_eq!(resumed.resumed_from_round, 1);
    assert_eq!(resumed.steps, uninterrupted.steps);
    assert_eq!(
        resumed.final_train_loss.to_bits(),
        uninterrupted.final_train_loss.to_bits(),
        "raising epochs on a constant schedule continues the same trajectory"
    );
}

#[test]
fn a_finished_run_is_never_shortened_or_its_summary_rewritten() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    let constant = Setup {
        epochs: 3,
        ..Setup::new(SchedulerSpec::Constant { lr: 0.05 })
    };
    let finished = constant.run(&run, false).unwrap();
    let summary = std::fs::read(run.summary()).unwrap();
    let metrics = std::fs::read(run.metrics()).unwrap();

    // Fewer epochs than it trained: refused, naming both counts; nothing rewritten.
    let err = Setup {
        epochs: 2,
        ..constant.clone()
    }
    .run(&run, true)
    .unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::BelowDone {
                done: 3,
                requested: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("epochs = 2"), "{err}");
    assert_eq!(std::fs::read(run.summary()).unwrap(), summary);

    // The same epochs: nothing to do, the summary stands as written, and the call returns it as
    // read from the file (serde_json's default float parser may land 1 ulp off the value that was
    // printed, so it is compared with the file's summary parsed the same way).
    let again = constant.run(&run, true).unwrap();
    let (on_disk, _) = run.read_summary().unwrap().unwrap();
    assert_eq!(again, on_disk);
    assert_eq!(
        (again.rounds, again.steps),
        (finished.rounds, finished.steps)
    );
    assert_eq!(std::fs::read(run.summary()).unwrap(), summary);
    assert_eq!(std::fs::read(run.metrics()).unwrap(), metrics);
}

#[test]
fn resuming_a_run_that_does_not_exist_lists_the_runs_that_do() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        epochs: 1,
        ..Setup::new(SchedulerSpec::Constant { lr: 0.05 })
    };
    setup
        .run(&RunDir::new(dir.path().join("alpha")), false)
        .unwrap();
    let err = setup
        .run(&RunDir::new(dir.path().join("alpah")), true)
        .unwrap_err();
    assert!(matches!(err, TrainError::NoSuchRun(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("alpah") && message.contains("alpha"),
        "{message}"
    );
    assert!(
        !dir.path().join("alpah").exists(),
        "no fresh run was started"
    );
}
