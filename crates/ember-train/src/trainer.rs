//! The training loop: epochs of optimizer steps, a test-set evaluation after each epoch, metrics,
//! checkpoints and resume. One readable loop for every model and optimizer.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use ember_data::{epoch_order, DeviceImages, ImageBatcher, ImageSet};
use ember_models::ImageClassifier;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomically;
use crate::checkpoint::{CheckpointError, CheckpointStore, LoopState};
use crate::guard::{
    first_non_finite_parameter, step_is_finite, NonFinitePolicy, MAX_CONSECUTIVE_SKIPS,
};
use crate::metrics::{MetricsRecord, MetricsWriter};
use crate::objective::{BatchObjective, PassCounts};
use crate::run_dir::RunDir;
use crate::StepRule;

/// How long and in what slices to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub epochs: usize,
    /// Images per optimizer step. The last incomplete batch of an epoch is dropped, so every step
    /// sees the same number of images (BatchNorm statistics stay comparable across steps).
    pub batch_size: usize,
    /// Images per evaluation batch (no gradients, so it can be larger).
    pub eval_batch_size: usize,
    /// Seeds the data order and the augmentation draws.
    pub seed: u64,
    /// Write a `"step"` line to `metrics.jsonl` every this many steps.
    pub log_every: usize,
    /// Show a progress bar (only ever drawn on a terminal).
    pub progress: bool,
    /// What to do when a loss or an update is not finite.
    #[serde(default)]
    pub on_nonfinite: NonFinitePolicy,
}

impl TrainSettings {
    /// Checks the settings, naming the bad field.
    pub fn validate(&self, train_len: usize) -> Result<(), SettingsError> {
        if self.epochs == 0 {
            return Err(SettingsError::new("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 || self.batch_size > train_len {
            return Err(SettingsError::new(
                "batch_size",
                format!(
                    "must be between 1 and the training set size ({train_len}), got {}",
                    self.batch_size
                ),
            ));
        }
        if self.eval_batch_size == 0 {
            return Err(SettingsError::new("eval_batch_size", "must be at least 1"));
        }
        if self.log_every == 0 {
            return Err(SettingsError::new("log_every", "must be at least 1"));
        }
        Ok(())
    }

    /// Optimizer steps in one epoch over `train_len` images.
    pub fn steps_per_epoch(&self, train_len: usize) -> usize {
        train_len / self.batch_size
    }
}

/// A loop setting that cannot be used, naming its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl SettingsError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The data a run trains and evaluates on.
pub struct TrainData {
    pub train: ImageSet,
    pub test: ImageSet,
    pub batcher: ImageBatcher,
}

/// The three stateful pieces a run updates, and checkpoints, and what the loop must know of the
/// schedule.
pub struct TrainParts<M> {
    pub model: M,
    pub optimizer: StepRule<M>,
    pub scheduler: ModuleLrScheduler,
    /// The schedule's name when its learning rates depend on the run's total number of steps (a
    /// cosine over the whole run): a resume that changes `epochs` would then bend the curve
    /// mid-run, so it is refused. `None` for schedules that do not (constant, step, PLRS).
    pub schedule_spans_run: Option<String>,
}

/// The numbers a finished run reports in `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub epochs: usize,
    pub steps: u64,
    pub final_train_loss: f64,
    pub final_test_loss: f64,
    pub final_test_accuracy: f64,
    pub best_test_accuracy: f64,
    /// Training wall time (all epochs, evaluation included), seconds.
    pub wall_time_s: f64,
    /// Mean training throughput over the epochs run in this process (evaluation excluded).
    pub train_images_per_s: f64,
    pub num_params: usize,
    /// The epoch this process started from (0 unless resumed).
    pub resumed_from_epoch: usize,
    /// Forward passes per optimizer step over the epochs run in this process, snapshot passes of
    /// SVRG / VAMO included (1 for per-parameter optimizers, 4 for GAM, …).
    pub forward_passes_per_step: f64,
    /// Backward passes per optimizer step, likewise.
    pub backward_passes_per_step: f64,
    /// Steps undone in this process because their loss or update was not finite
    /// (`--on-nonfinite skip`).
    pub skipped_steps: u64,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("run folder {0} already holds a run; pass --resume to continue it or choose another --run-name")]
    RunExists(PathBuf),
    #[error(transparent)]
    NoSuchRun(#[from] crate::NoSuchRun),
    #[error("cannot write the run folder {path}: {source}")]
    RunFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot resume {path}: the run was started with a different {} ({}); a resumed run must continue the same trajectory, so start a new run (another --run-name) instead", .fields.join(", "), .changes.join("; "))]
    ConfigMismatch {
        path: PathBuf,
        /// The settings that differ, e.g. `train.batch_size`.
        fields: Vec<String>,
        /// Each as `field: old → new`.
        changes: Vec<String>,
    },
    #[error("cannot resume {path} with epochs = {requested}: it was started with epochs = {started} and its {schedule} schedule spans the whole run (epochs × steps per epoch), so a different epoch count would bend its learning-rate curve mid-run; resume with epochs = {started}, or start a new run")]
    EpochsChangeSchedule {
        path: PathBuf,
        started: u64,
        requested: usize,
        schedule: String,
    },
    #[error("cannot resume {path} with epochs = {requested}: it has already trained {done} epochs (a finished run is never shortened or its summary rewritten); ask for at least {done} epochs, or start a new run")]
    EpochsBelowDone {
        path: PathBuf,
        done: usize,
        requested: usize,
    },
    #[error("cannot resume {path}: the training or test data differ from those the run was trained on (data fingerprint {checkpoint} in its checkpoint, {now} now); the data set, its files, subset or pixel noise changed, so start a new run")]
    DataChanged {
        path: PathBuf,
        checkpoint: String,
        now: String,
    },
    #[error("training loss became {value} at step {step} (epoch {epoch}); {}; last good checkpoint kept in {checkpoints}", describe_parameter(.parameter))]
    NonFinite {
        value: f64,
        step: u64,
        epoch: usize,
        /// The first parameter holding a NaN or infinity after that step, if any.
        parameter: Option<String>,
        checkpoints: PathBuf,
    },
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}

/// Mean cross-entropy loss and accuracy of `model` on `images`, evaluated in inference mode (no
/// autodiff, BatchNorm on running statistics).
///
/// The sums stay on the device until every batch is done: two host reads per evaluation, none per
/// batch, so a GPU is never idle waiting for the host between batches.
pub fn evaluate<M: ImageClassifier>(
    model: &M,
    images: &DeviceImages,
    batcher: &ImageBatcher,
    batch_size: usize,
) -> (f64, f64) {
    let model = model.valid();
    let device = images.device().inner();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut loss_sum = Tensor::<1>::zeros([1], &device);
    let mut correct = Tensor::<1, Int>::zeros([1], &device);
    let mut start = 0;
    while start < images.len() {
        let len = batch_size.min(images.len() - start);
        let batch = batcher.eval_batch(images, start, len);
        let logits = model.forward(batch.images.inner());
        let targets = batch.targets.inner();
        loss_sum = loss_sum.add(
            loss_fn
                .forward(logits.clone(), targets.clone())
                .mul_scalar(len as f64),
        );
        let predicted = logits.argmax(1).flatten::<1>(0, 1);
        correct = correct.add(predicted.equal(targets).int().sum());
        start += len;
    }
    let n = images.len().max(1) as f64;
    (
        loss_sum.into_scalar::<f64>() / n,
        correct.into_scalar::<i64>() as f64 / n,
    )
}

/// Trains `parts` on `data` for `settings.epochs` epochs, writing `run`'s files.
///
/// With `resume`, the newest loadable checkpoint in the run folder is restored (model, optimizer,
/// scheduler, step count, metrics file length) and training continues from the epoch after it; the
/// data order and augmentation are functions of `(seed, epoch)`, so nothing else needs restoring.
pub fn train<M: ImageClassifier + 'static>(
    run: &RunDir,
    run_config: &serde_json::Value,
    settings: &TrainSettings,
    data: &TrainData,
    parts: TrainParts<M>,
    device: &Device,
    resume: bool,
) -> Result<TrainSummary, TrainError> {
    settings.validate(data.train.len())?;
    let store = CheckpointStore::new(run.checkpoints(), 2);
    let TrainParts {
        mut model,
        mut optimizer,
        mut scheduler,
        schedule_spans_run,
    } = parts;
    check_run_dir(
        run,
        run_config,
        settings,
        schedule_spans_run,
        resume,
        &store,
    )?;

    let num_params = model.num_params();
    let fingerprint = data_fingerprint(data);
    let mut state = LoopState {
        epochs_done: 0,
        step: 0,
        wall_time_s: 0.0,
        metrics_len: 0,
        file_sizes: [0; 3],
        skipped_steps: 0,
        best_test_accuracy: None,
        data_fingerprint: Some(fingerprint.clone()),
    };
    if resume {
        let restored = store.restore_latest(&model, &optimizer, &scheduler, |e| {
            tracing::warn!("skipping damaged checkpoint: {e}");
        });
        match restored {
            Some(r) => {
                if r.state.epochs_done > settings.epochs {
                    return Err(TrainError::EpochsBelowDone {
                        path: run.root().to_path_buf(),
                        done: r.state.epochs_done,
                        requested: settings.epochs,
                    });
                }
                if let Some(old) = &r.state.data_fingerprint {
                    if *old != fingerprint {
                        return Err(TrainError::DataChanged {
                            path: run.root().to_path_buf(),
                            checkpoint: old.clone(),
                            now: fingerprint,
                        });
                    }
                }
                tracing::info!(
                    "resuming from {} (epoch {} done, step {})",
                    r.path.display(),
                    r.state.epochs_done,
                    r.state.step
                );
                model = r.model;
                optimizer = r.optimizer;
                scheduler = r.scheduler;
                state = r.state;
                state.data_fingerprint = Some(fingerprint.clone());
            }
            None => tracing::info!(
                "no checkpoint in {}: starting from scratch",
                run.root().display()
            ),
        }
        if state.epochs_done == settings.epochs {
            // A finished run: its summary stands as written; nothing is retrained or rewritten.
            if let Some(summary) = finished_summary(run, settings.epochs) {
                tracing::info!(
                    "{} already finished its {} epochs: nothing to do",
                    run.root().display(),
                    settings.epochs
                );
                return Ok(summary);
            }
        }
    }
    write_config(run, run_config)?;
    let resumed_from_epoch = state.epochs_done;
    let mut metrics =
        MetricsWriter::open(&run.metrics(), state.metrics_len).map_err(io_err(run.metrics()))?;

    let loss_fn = CrossEntropyLossConfig::new().init(device);
    // Both sets go to the device once; batches are gathered and augmented there.
    let train_images = data.batcher.upload(&data.train, device);
    let test_images = data.batcher.upload(&data.test, device);
    let mut objective =
        BatchObjective::new(&loss_fn, &train_images, &data.batcher, settings.batch_size);
    let steps_per_epoch = settings.steps_per_epoch(data.train.len());
    let started = Instant::now();
    let wall_before = state.wall_time_s;
    let mut train_seconds = 0.0;
    let mut last = None::<(f64, f64, f64)>; // (train loss, test loss, test accuracy)
    let mut consecutive_skips = 0usize;

    for epoch in state.epochs_done..settings.epochs {
        let order = epoch_order(data.train.len(), settings.seed, epoch);
        let progress = progress_bar(settings.progress, steps_per_epoch, epoch, settings.epochs);
        let epoch_start = Instant::now();
        let epoch_passes = objective.passes;
        optimizer.begin_epoch(epoch, &model, &mut objective);
        let mut interval = Interval::start(objective.passes);
        let (mut epoch_loss, mut lr) = (0.0, 0.0);
        let skipped_before_epoch = state.skipped_steps;

        let batches = data
            .batcher
            .epoch(&train_images, &order, settings.seed, epoch);
        for batch_index in 0..steps_per_epoch {
            objective
                .set_current(batches.batch(batch_index * settings.batch_size, settings.batch_size));
            let lr_now = scheduler.step();
            lr = lr_now.base();
            // Under the skip policy keep what the step replaces: a copy with its own BatchNorm
            // statistics (the step's forward pass moves the shared ones) and the optimizer state.
            let fallback = (settings.on_nonfinite == NonFinitePolicy::Skip).then(|| {
                (
                    ember_optim::closure::isolated_copy(&model, true),
                    optimizer.clone(),
                )
            });
            let step = optimizer.step(lr_now, model, &mut objective);
            model = step.model;
            state.step += 1;
            progress.inc(1);
            if let Some((old_model, old_optimizer)) = fallback {
                if !step_is_finite(&step.loss, &model) {
                    state.skipped_steps += 1;
                    consecutive_skips += 1;
                    tracing::warn!(
                        "step {} (epoch {}): non-finite loss or update, step undone ({consecutive_skips} in a row)",
                        state.step,
                        epoch + 1
                    );
                    if consecutive_skips >= MAX_CONSECUTIVE_SKIPS {
                        let value = step.loss.inner().into_scalar::<f64>();
                        return Err(non_finite(value, state.step, epoch, &model, run));
                    }
                    model = old_model;
                    optimizer = old_optimizer;
                    continue;
                }
                consecutive_skips = 0;
            }
            interval.add(step.loss.inner());

            if interval.steps == settings.log_every {
                let mean = interval.mean_loss();
                interval.check_finite(mean, state.step, epoch, &model, run)?;
                epoch_loss += mean * interval.steps as f64;
                let (forward, backward) =
                    per_step(objective.passes, interval.passes, interval.steps);
                let record = MetricsRecord {
                    kind: "step".into(),
                    step: state.step,
                    epoch: epoch + 1,
                    train_loss: mean,
                    test_loss: None,
                    test_accuracy: None,
                    lr,
                    wall_time_s: wall_before + started.elapsed().as_secs_f64(),
                    images_per_s: (interval.steps * settings.batch_size) as f64
                        / interval.began.elapsed().as_secs_f64(),
                    forward_passes: Some(forward),
                    backward_passes: Some(backward),
                    diagnostics: Default::default(),
                };
                progress.set_message(format!("loss {mean:.4}"));
                metrics.write(&record).map_err(io_err(run.metrics()))?;
                interval = Interval::start(objective.passes);
            }
        }
        if interval.steps > 0 {
            let mean = interval.mean_loss();
            interval.check_finite(mean, state.step, epoch, &model, run)?;
            epoch_loss += mean * interval.steps as f64;
        }
        // Never checkpoint parameters that went bad after the last logged loss.
        if let Some(parameter) = first_non_finite_parameter(&model) {
            return Err(TrainError::NonFinite {
                value: f64::NAN,
                step: state.step,
                epoch: epoch + 1,
                parameter: Some(parameter),
                checkpoints: run.checkpoints(),
            });
        }
        let kept_steps =
            (steps_per_epoch as u64 - (state.skipped_steps - skipped_before_epoch)) as f64;
        let epoch_train_s = epoch_start.elapsed().as_secs_f64();
        train_seconds += epoch_train_s;
        let (forward, backward) = per_step(objective.passes, epoch_passes, steps_per_epoch);
        progress.finish_and_clear();

        let (test_loss, test_accuracy) = evaluate(
            &model,
            &test_images,
            &data.batcher,
            settings.eval_batch_size,
        );
        let train_loss = epoch_loss / kept_steps.max(1.0);
        let images_per_s = (steps_per_epoch * settings.batch_size) as f64 / epoch_train_s;
        state.best_test_accuracy = Some(
            state
                .best_test_accuracy
                .map_or(test_accuracy, |best| best.max(test_accuracy)),
        );
        last = Some((train_loss, test_loss, test_accuracy));
        tracing::info!(
            "epoch {}/{}: train loss {train_loss:.4}, test loss {test_loss:.4}, test accuracy {:.2}%, {images_per_s:.1} images/s",
            epoch + 1,
            settings.epochs,
            100.0 * test_accuracy
        );
        state.wall_time_s = wall_before + started.elapsed().as_secs_f64();
        metrics
            .write(&MetricsRecord {
                kind: "epoch".into(),
                step: state.step,
                epoch: epoch + 1,
                train_loss,
                test_loss: Some(test_loss),
                test_accuracy: Some(test_accuracy),
                lr,
                wall_time_s: state.wall_time_s,
                images_per_s,
                forward_passes: Some(forward),
                backward_passes: Some(backward),
                diagnostics: optimizer
                    .diagnostics()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            })
            .map_err(io_err(run.metrics()))?;
        state.epochs_done = epoch + 1;
        state.metrics_len = metrics.len().map_err(io_err(run.metrics()))?;
        store.save(&model, &optimizer, &scheduler, state.clone())?;
    }

    let epochs_run = settings.epochs.saturating_sub(resumed_from_epoch);
    let (forward_passes_per_step, backward_passes_per_step) = per_step(
        objective.passes,
        PassCounts::default(),
        epochs_run * steps_per_epoch,
    );
    let (final_train_loss, final_test_loss, final_test_accuracy) = match last {
        Some(l) => l,
        None => {
            // Nothing left to train (a run stopped between its last checkpoint and its summary):
            // report the model as it stands, with the last epoch's train loss from its metrics.
            let (loss, acc) = evaluate(
                &model,
                &test_images,
                &data.batcher,
                settings.eval_batch_size,
            );
            let train_loss = crate::read_metrics(&run.metrics())
                .ok()
                .and_then(|records| {
                    records
                        .iter()
                        .rev()
                        .find(|r| r.kind == "epoch" && r.epoch == settings.epochs)
                        .map(|r| r.train_loss)
                })
                .unwrap_or(f64::NAN);
            (train_loss, loss, acc)
        }
    };
    let summary = TrainSummary {
        epochs: settings.epochs,
        steps: state.step,
        final_train_loss,
        final_test_loss,
        final_test_accuracy,
        best_test_accuracy: state
            .best_test_accuracy
            .map_or(final_test_accuracy, |best| best.max(final_test_accuracy)),
        wall_time_s: wall_before + started.elapsed().as_secs_f64(),
        train_images_per_s: if epochs_run > 0 {
            (epochs_run * steps_per_epoch * settings.batch_size) as f64 / train_seconds
        } else {
            0.0
        },
        num_params,
        resumed_from_epoch,
        forward_passes_per_step,
        backward_passes_per_step,
        skipped_steps: state.skipped_steps,
    };
    let json = serde_json::json!({ "summary": &summary, "config": run_config });
    let bytes = serde_json::to_vec_pretty(&json).expect("summary serialises");
    write_atomically(&run.summary(), &bytes).map_err(io_err(run.summary()))?;
    Ok(summary)
}

/// Creates the run folder, refusing to overwrite an existing run unless resuming, to resume a run
/// that does not exist, and to resume a run whose configuration differs in anything that would
/// change its trajectory (see [`differing_fields`] and [`TrainParts::schedule_spans_run`]). Writes nothing
/// but the folders; `config.json` is [`write_config`]'s, once the checkpoint has been checked too.
fn check_run_dir(
    run: &RunDir,
    run_config: &serde_json::Value,
    settings: &TrainSettings,
    schedule_spans_run: Option<String>,
    resume: bool,
    store: &CheckpointStore,
) -> Result<(), TrainError> {
    if resume {
        run.ensure_resumable()?;
        if let Some(done) = finished_epochs(run).filter(|&done| done > settings.epochs) {
            return Err(TrainError::EpochsBelowDone {
                path: run.root().to_path_buf(),
                done,
                requested: settings.epochs,
            });
        }
    }
    std::fs::create_dir_all(run.checkpoints()).map_err(|source| TrainError::RunFolder {
        path: run.checkpoints(),
        source,
    })?;
    let config_path = run.config();
    if !config_path.exists() {
        return Ok(());
    }
    if !resume {
        if !store.list().is_empty() || run.metrics().exists() {
            return Err(TrainError::RunExists(run.root().to_path_buf()));
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(&config_path).map_err(io_err(&config_path))?;
    let old: serde_json::Value = serde_json::from_str(&text).map_err(|e| TrainError::Io {
        path: config_path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let changes = differing_fields(&old, run_config);
    if !changes.is_empty() {
        return Err(TrainError::ConfigMismatch {
            path: config_path,
            fields: changes.iter().map(|(field, _)| field.clone()).collect(),
            changes: changes
                .into_iter()
                .map(|(field, change)| format!("{field}: {change}"))
                .collect(),
        });
    }
    // The configurations agree but for `epochs`, so the schedule is the one the run started with.
    if let (Some(started), Some(schedule)) = (config_epochs(&old), schedule_spans_run) {
        if started != settings.epochs as u64 {
            return Err(TrainError::EpochsChangeSchedule {
                path: run.root().to_path_buf(),
                started,
                requested: settings.epochs,
                schedule,
            });
        }
    }
    Ok(())
}

/// Writes the run's `config.json`.
fn write_config(run: &RunDir, run_config: &serde_json::Value) -> Result<(), TrainError> {
    let bytes = serde_json::to_vec_pretty(run_config).expect("config serialises");
    write_atomically(&run.config(), &bytes).map_err(|source| TrainError::RunFolder {
        path: run.config(),
        source,
    })
}

/// The run's `summary.json`, if it holds one: the run finished `summary.epochs` epochs.
fn read_summary(run: &RunDir) -> Option<TrainSummary> {
    #[derive(Deserialize)]
    struct File {
        summary: TrainSummary,
    }
    let bytes = std::fs::read(run.summary()).ok()?;
    serde_json::from_slice::<File>(&bytes)
        .ok()
        .map(|f| f.summary)
}

/// The epochs a run finished, by its `summary.json`.
fn finished_epochs(run: &RunDir) -> Option<usize> {
    read_summary(run).map(|s| s.epochs)
}

/// The summary of a run that finished `epochs` epochs, if `summary.json` holds one.
fn finished_summary(run: &RunDir, epochs: usize) -> Option<TrainSummary> {
    read_summary(run).filter(|s| s.epochs == epochs)
}

/// Settings that may differ between a run and its resumption: `epochs` (checked on its own: it
/// may change only when the schedule does not span the run), `resume`, and `progress` (display
/// only).
const FREE_ON_RESUME: [&str; 3] = ["epochs", "resume", "progress"];

/// Keys (nested ones as `a.b`) whose values differ between two `config.json`s, each with
/// `old → new`, ignoring what may change on resume (`epochs`, `resume`, `progress`). Resume refuses
/// a run with any; `ember compare` refuses to report a finished run with any.
pub fn differing_fields(old: &serde_json::Value, new: &serde_json::Value) -> Vec<(String, String)> {
    let (Some(old_map), Some(new_map)) = (old.as_object(), new.as_object()) else {
        return if old == new {
            Vec::new()
        } else {
            vec![("<root>".into(), format!("{old} → {new}"))]
        };
    };
    let mut keys: Vec<&String> = old_map.keys().chain(new_map.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut fields = Vec::new();
    for key in keys {
        let (a, b) = (old_map.get(key), new_map.get(key));
        match (a, b) {
            (Some(a), Some(b)) if a.is_object() && b.is_object() => {
                for (sub, change) in differing_fields(a, b) {
                    fields.push((format!("{key}.{sub}"), change));
                }
            }
            _ if !same_value(a, b) && !FREE_ON_RESUME.contains(&key.as_str()) => {
                let show = |v: Option<&serde_json::Value>| {
                    v.map_or_else(|| "(absent)".to_string(), |v| v.to_string())
                };
                fields.push((key.clone(), format!("{} → {}", show(a), show(b))));
            }
            _ => {}
        }
    }
    fields
}

/// Whether two recorded values are the same setting. Floats compare to within a few ulps:
/// serde_json's default parser may read a 17-digit float back 1 ulp away from the value that was
/// printed, so a run's own `config.json` must not differ from itself.
fn same_value(a: Option<&serde_json::Value>, b: Option<&serde_json::Value>) -> bool {
    match (a, b) {
        (Some(serde_json::Value::Number(x)), Some(serde_json::Value::Number(y)))
            if x.is_f64() || y.is_f64() =>
        {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

/// The `epochs` a configuration records: a top-level `epochs`, else `train.epochs` (what `ember
/// train` writes), else the first nested one.
fn config_epochs(config: &serde_json::Value) -> Option<u64> {
    let map = config.as_object()?;
    if let Some(epochs) = map.get("epochs").and_then(|v| v.as_u64()) {
        return Some(epochs);
    }
    if let Some(epochs) = map.get("train").and_then(config_epochs) {
        return Some(epochs);
    }
    map.values().find_map(config_epochs)
}

/// A fingerprint of the images, labels and shapes of both halves of the data (64-bit FNV-1a over
/// 8-byte words, hex): equal data give equal fingerprints on every machine and build.
fn data_fingerprint(data: &TrainData) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |word: u64| {
        hash ^= word;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for set in [&data.train, &data.test] {
        let shape = set.shape();
        for n in [set.len(), shape.channels, shape.height, shape.width] {
            mix(n as u64);
        }
        let pixels = set.pixels();
        let mut chunks = pixels.chunks_exact(8);
        for chunk in &mut chunks {
            mix(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            mix(u64::from(b));
        }
        for &label in set.labels() {
            mix(u64::from(label));
        }
    }
    format!("{hash:016x}")
}

fn describe_parameter(parameter: &Option<String>) -> String {
    match parameter {
        Some(path) => format!("first non-finite parameter: `{path}`"),
        None => "all parameters are still finite (the loss itself overflowed)".into(),
    }
}

fn non_finite<M: Module>(
    value: f64,
    step: u64,
    epoch: usize,
    model: &M,
    run: &RunDir,
) -> TrainError {
    TrainError::NonFinite {
        value,
        step,
        epoch: epoch + 1,
        parameter: first_non_finite_parameter(model),
        checkpoints: run.checkpoints(),
    }
}

/// Forward and backward passes per step between two counts (`0/0` reads as 0).
fn per_step(now: PassCounts, before: PassCounts, steps: usize) -> (f64, f64) {
    let steps = steps.max(1) as f64;
    (
        (now.forward - before.forward) as f64 / steps,
        (now.backward - before.backward) as f64 / steps,
    )
}

/// Losses of the steps since the last metrics line, kept on the device so that reading them costs
/// one host sync per line rather than one per step.
struct Interval {
    losses: Vec<Tensor<1>>,
    steps: usize,
    began: Instant,
    /// Pass counts when the interval began.
    passes: PassCounts,
}

impl Interval {
    fn start(passes: PassCounts) -> Self {
        Self {
            losses: Vec::new(),
            steps: 0,
            began: Instant::now(),
            passes,
        }
    }

    fn add(&mut self, loss: Tensor<1>) {
        self.losses.push(loss);
        self.steps += 1;
    }

    fn mean_loss(&self) -> f64 {
        if self.losses.is_empty() {
            return f64::NAN;
        }
        Tensor::cat(self.losses.clone(), 0)
            .sum()
            .into_scalar::<f64>()
            / self.steps as f64
    }

    /// An error for the first step of the interval whose loss is not finite, if `mean` is not.
    /// `last_step` is the step count after the interval's last step.
    fn check_finite<M: Module>(
        &self,
        mean: f64,
        last_step: u64,
        epoch: usize,
        model: &M,
        run: &RunDir,
    ) -> Result<(), TrainError> {
        if mean.is_finite() {
            return Ok(());
        }
        let losses: Vec<f64> = Tensor::cat(self.losses.clone(), 0)
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .unwrap_or_default();
        let (index, value) = losses
            .iter()
            .enumerate()
            .find(|(_, l)| !l.is_finite())
            .map_or((self.steps - 1, mean), |(i, &l)| (i, l));
        let step = last_step - (self.steps - 1 - index) as u64;
        Err(non_finite(value, step, epoch, model, run))
    }
}

fn progress_bar(enabled: bool, steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let target = if enabled && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(steps as u64), target);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} steps, {per_sec}, eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_differences_name_the_field_and_both_values() {
        let old = serde_json::json!({"train": {"epochs": 2, "progress": true, "batch_size": 64}, "lr": 0.1, "optimizer": {"name": "sgd", "momentum": 0.9}});
        let same = serde_json::json!({"train": {"epochs": 5, "progress": false, "batch_size": 64}, "lr": 0.1, "optimizer": {"name": "sgd", "momentum": 0.9}});
        assert!(differing_fields(&old, &same).is_empty());
        let other = serde_json::json!({"train": {"epochs": 2, "batch_size": 32}, "lr": 0.2, "optimizer": {"name": "sgd", "momentum": 0.0}, "seed": 1});
        assert_eq!(
            differing_fields(&old, &other),
            vec![
                ("lr".to_string(), "0.1 → 0.2".to_string()),
                ("optimizer.momentum".to_string(), "0.9 → 0.0".to_string()),
                ("seed".to_string(), "(absent) → 1".to_string()),
                ("train.batch_size".to_string(), "64 → 32".to_string()),
            ]
        );
        assert_eq!(config_epochs(&old), Some(2));
        // A float read back 1 ulp off (what serde_json's default parser does to some 17-digit
        // numbers) is the same setting; a different learning rate is not.
        let printed = serde_json::json!({"lr": 0.09698284271712133_f64});
        let read_back = serde_json::json!({"lr": 0.09698284271712132_f64});
        assert_ne!(printed, read_back);
        assert!(differing_fields(&printed, &read_back).is_empty());
        let other = serde_json::json!({"lr": 0.0969828427171_f64});
        assert_eq!(differing_fields(&printed, &other).len(), 1);
        assert_eq!(config_epochs(&serde_json::json!({"epochs": 3})), Some(3));
    }
}
