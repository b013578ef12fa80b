//! The training loop, one for every task, model and optimizer: rounds of optimizer steps, each
//! followed by an evaluation and a checkpoint; metrics lines on the way; a summary at the end.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{CheckpointError, CheckpointStore, LoopState};
use crate::driver::{GaveUp, StepDriver};
use crate::guard::{first_non_finite_parameter, NonFinitePolicy};
use crate::objective::PassCounts;
use crate::resume::{start_or_resume, Start};
use crate::run_dir::{
    Evaluation, MetricsRecord, MetricsWriter, RecordKind, RunDir, RunFileError, RunSummary,
};
use crate::task::{BatchPosition, Budget, RoundPlan, Task};
use crate::StepRule;

/// How long and in what slices to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Epochs, or steps with an evaluation every so many.
    #[serde(flatten)]
    pub budget: Budget,
    /// Items per optimizer step (images; token windows). For images the last incomplete batch of
    /// an epoch is dropped, so every step sees the same number (BatchNorm statistics stay
    /// comparable across steps).
    pub batch_size: usize,
    /// Items per evaluation batch (no gradients, so it can be larger).
    pub eval_batch_size: usize,
    /// Seeds the data order, the augmentation draws and the token windows.
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
    /// Checks the settings, naming the bad field (the batch size against the data is the task's
    /// to check).
    ///
    /// # Errors
    ///
    /// A count of 0, or a budget that does not divide into rounds.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.budget.validate()?;
        for (field, value) in [
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("log_every", self.log_every),
        ] {
            if value == 0 {
                return Err(SettingsError::new(field, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A loop setting that cannot be used, naming its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct SettingsError {
    /// The setting at fault, by its field name.
    pub field: &'static str,
    /// Why it cannot be used.
    pub message: String,
}

impl SettingsError {
    /// An error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The three stateful pieces a run updates, and checkpoints, and what the loop must know of the
/// schedule.
pub struct TrainParts<M> {
    /// The model, initialised or restored.
    pub model: M,
    /// How a step updates the model.
    pub optimizer: StepRule<M>,
    /// The learning rate of every step.
    pub scheduler: ModuleLrScheduler,
    /// The schedule's name when its learning rates depend on the run's total number of steps (a
    /// cosine over the whole run): a resume that changes the budget would then bend the curve
    /// mid-run, so it is refused. `None` for schedules that do not (constant, step, PLRS).
    pub schedule_spans_run: Option<String>,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file of the run could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A run-folder file (config, metrics, summary) could not be read or written.
    #[error(transparent)]
    RunFile(#[from] RunFileError),
    /// A checkpoint could not be written or read back.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A loop setting is out of range.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A fresh run was asked for in a folder that holds one.
    #[error("run folder {0} already holds a run; pass --resume to continue it or choose another --run-name")]
    RunExists(PathBuf),
    /// A resume was asked for where there is no run to resume.
    #[error(transparent)]
    NoSuchRun(#[from] crate::NoSuchRun),
    /// The run folder could not be created.
    #[error("cannot write the run folder {path}: {source}")]
    RunFolder {
        /// The run folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A resume with settings that differ from the run's own.
    #[error("cannot resume {path}: the run was started with a different {} ({}); a resumed run must continue the same trajectory, so start a new run (another --run-name) instead", .fields.join(", "), .changes.join("; "))]
    ConfigMismatch {
        /// The run folder.
        path: PathBuf,
        /// The settings that differ, e.g. `train.batch_size`.
        fields: Vec<String>,
        /// Each as `field: old → new`.
        changes: Vec<String>,
    },
    /// A resume with another budget, where the schedule spans the whole run.
    #[error("cannot resume {path} with {unit} = {requested}: it was started with {unit} = {started} and its {schedule} schedule spans the whole run, so a different length would bend its learning-rate curve mid-run; resume with {unit} = {started}, or start a new run")]
    BudgetChangesSchedule {
        /// The run folder.
        path: PathBuf,
        /// `epochs` or `steps`.
        unit: &'static str,
        /// The budget the run was started with, in `unit`.
        started: u64,
        /// The budget asked for now, in `unit`.
        requested: usize,
        /// The schedule's name (`cosine`, `linear`).
        schedule: String,
    },
    /// A resume with a budget below what the run has already trained.
    #[error("cannot resume {path} with {unit} = {length} ({requested} rounds): it has already trained {done} rounds (a finished run is never shortened or its summary rewritten); ask for at least as many {unit} as it trained, or start a new run")]
    BelowDone {
        /// The run folder.
        path: PathBuf,
        /// `epochs` or `steps`.
        unit: &'static str,
        /// The budget asked for, in `unit`.
        length: usize,
        /// Rounds trained.
        done: usize,
        /// Rounds the budget asks for.
        requested: usize,
    },
    /// A resume on other data than the run trained on.
    #[error("cannot resume {path}: the training or evaluation data differ from those the run was trained on (data fingerprint {checkpoint} in its checkpoint, {now} now); the data set, its files, subset or noise changed, so start a new run")]
    DataChanged {
        /// The run folder.
        path: PathBuf,
        /// The data's fingerprint recorded in the checkpoint.
        checkpoint: String,
        /// The fingerprint of the data given now.
        now: String,
    },
    /// The loss stopped being finite (policy `stop`, or too many skipped steps in a row).
    #[error("training loss became {value} at step {step} (round {round}); {}; last good checkpoint kept in {checkpoints}", describe_parameter(.parameter))]
    NonFinite {
        /// The loss (NaN or ±∞).
        value: f64,
        /// The optimizer step that produced it.
        step: u64,
        /// The round (1-based; the epoch for image classification).
        round: usize,
        /// The first parameter holding a NaN or infinity after that step, if any.
        parameter: Option<String>,
        /// Where the last good checkpoint is.
        checkpoints: PathBuf,
    },
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}

/// Trains `parts` on `task` for `settings.budget`, writing `run`'s files, and returns its summary.
///
/// With `resume`, the newest loadable checkpoint in the run folder is restored (model, optimizer,
/// scheduler, step count, metrics file length) and training continues from the round after it;
/// batches are functions of the seed and their position, so nothing else needs restoring.
///
/// # Errors
///
/// See [`TrainError`]: a run folder that cannot be used or resumed, an unwritable file, a
/// non-finite loss or update.
pub fn train<T: Task>(
    run: &RunDir,
    run_config: &serde_json::Value,
    settings: &TrainSettings,
    task: &T,
    parts: TrainParts<T::Model>,
    resume: bool,
) -> Result<RunSummary, TrainError> {
    settings.validate()?;
    let plan = task.plan(&settings.budget)?;
    let store = CheckpointStore::new(run.checkpoints(), 2);
    let num_params = parts.model.num_params();
    let restored = match start_or_resume(
        run,
        run_config,
        &settings.budget,
        task,
        parts,
        resume,
        &store,
    )? {
        Start::Finished(summary) => return Ok(summary),
        Start::From(restored) => *restored,
    };
    run.write_config(run_config)?;
    let metrics = MetricsWriter::open(&run.metrics(), restored.state.metrics_len)
        .map_err(io_err(run.metrics()))?;
    let mut rounds = Rounds {
        run,
        settings,
        task,
        plan,
        store,
        metrics,
        driver: StepDriver::new(task, settings.on_nonfinite),
        model: Some(restored.model),
        optimizer: restored.optimizer,
        scheduler: restored.scheduler,
        resumed_from_round: restored.state.rounds_done,
        wall_before: restored.state.wall_time_s,
        state: restored.state,
        started: Instant::now(),
        train_seconds: 0.0,
        last: None,
    };
    for round in rounds.state.rounds_done..plan.rounds {
        let ended = rounds.train_round(round)?;
        rounds.end_round(round, ended)?;
    }
    let summary = rounds.summary(num_params)?;
    run.write_summary(&summary, run_config)?;
    Ok(summary)
}

/// The loop's state between rounds.
struct Rounds<'a, T: Task> {
    run: &'a RunDir,
    settings: &'a TrainSettings,
    task: &'a T,
    plan: RoundPlan,
    store: CheckpointStore,
    metrics: MetricsWriter,
    driver: StepDriver<'a, T>,
    /// `None` only while a step holds it.
    model: Option<T::Model>,
    optimizer: StepRule<T::Model>,
    scheduler: ModuleLrScheduler,
    state: LoopState,
    resumed_from_round: usize,
    /// Training wall time before this process started (a resumed run keeps counting).
    wall_before: f64,
    started: Instant,
    /// Seconds spent in training steps in this process (evaluations excluded).
    train_seconds: f64,
    /// The last round's train loss and evaluation.
    last: Option<(f64, Evaluation)>,
}

/// What a round's steps left for its end.
struct RoundEnd {
    train_loss: f64,
    lr: f64,
    seconds: f64,
    passes_before: PassCounts,
}

impl<T: Task> Rounds<'_, T> {
    /// The round's optimizer steps, a `"step"` metrics line every `log_every` of them.
    fn train_round(&mut self, round: usize) -> Result<RoundEnd, TrainError> {
        let steps = self.plan.steps_per_round;
        let progress = progress_bar(self.settings.progress, steps, round, self.plan.rounds);
        let began = Instant::now();
        let passes_before = self.driver.passes();
        let model = self
            .model
            .as_ref()
            .expect("the model is back after every step");
        self.driver.begin_round(round, model, &mut self.optimizer);
        let mut interval = Interval::start(self.driver.passes());
        let (mut loss_sum, mut kept, mut lr) = (0.0, 0usize, 0.0);
        for index in 0..steps {
            let position = BatchPosition {
                round,
                index,
                step: (round * steps + index) as u64,
            };
            let batch = self.task.train_batch(position);
            let lr_now = self.scheduler.step();
            lr = lr_now.base();
            let model = self
                .model
                .take()
                .expect("the model is back after every step");
            let stepped = self
                .driver
                .step(&mut self.optimizer, lr_now, model, batch)
                .map_err(|gave_up| self.gave_up(gave_up, round))?;
            self.model = Some(stepped.model);
            self.state.step += 1;
            progress.inc(1);
            match stepped.loss {
                Some(loss) => interval.add(loss.inner()),
                None => tracing::warn!(
                    "step {} (round {}): non-finite loss or update, step undone ({} in a row)",
                    self.state.step,
                    round + 1,
                    self.driver.consecutive_skips()
                ),
            }
            let full = interval.steps == self.settings.log_every;
            if full || (index + 1 == steps && interval.steps > 0) {
                let mean = interval.mean_loss();
                interval.check_finite(mean, self.state.step, round, self)?;
                loss_sum += mean * interval.steps as f64;
                kept += interval.steps;
                if full {
                    progress.set_message(format!("loss {mean:.4}"));
                    self.write_step_line(round, mean, lr, &interval)?;
                }
                interval = Interval::start(self.driver.passes());
            }
        }
        progress.finish_and_clear();
        // Never checkpoint parameters that went bad after the last logged loss.
        if let Some(parameter) = first_non_finite_parameter(self.model()) {
            return Err(TrainError::NonFinite {
                value: f64::NAN,
                step: self.state.step,
                round: round + 1,
                parameter: Some(parameter),
                checkpoints: self.run.checkpoints(),
            });
        }
        let seconds = began.elapsed().as_secs_f64();
        self.train_seconds += seconds;
        Ok(RoundEnd {
            train_loss: loss_sum / kept.max(1) as f64,
            lr,
            seconds,
            passes_before,
        })
    }

    fn write_step_line(
        &mut self,
        round: usize,
        mean: f64,
        lr: f64,
        interval: &Interval,
    ) -> Result<(), TrainError> {
        let (forward, backward) = self
            .driver
            .passes()
            .per_step_since(interval.passes, interval.steps);
        let record = MetricsRecord {
            kind: RecordKind::Step,
            step: self.state.step,
            round: round + 1,
            train_loss: mean,
            lr,
            wall_time_s: self.wall_time(),
            items_per_s: (interval.steps * self.task.items_per_batch()) as f64
                / interval.began.elapsed().as_secs_f64(),
            forward_passes: Some(forward),
            backward_passes: Some(backward),
            eval: None,
            diagnostics: Default::default(),
        };
        self.metrics
            .write(&record)
            .map_err(io_err(self.run.metrics()))
    }

    /// The round's evaluation, its `"eval"` metrics line and its checkpoint.
    fn end_round(&mut self, round: usize, ended: RoundEnd) -> Result<(), TrainError> {
        let eval = self.task.evaluate(self.model());
        let selection = self.task.selection();
        let value = eval.metric(&selection.metric).unwrap_or(f64::NAN);
        self.state.best_value = Some(
            self.state
                .best_value
                .map_or(value, |best| selection.best(best, value)),
        );
        let steps = self.plan.steps_per_round;
        let items_per_s = (steps * self.task.items_per_batch()) as f64 / ended.seconds;
        tracing::info!(
            "round {}/{}: train loss {:.4}, {} loss {:.4}{}, {items_per_s:.1} {}/s",
            round + 1,
            self.plan.rounds,
            ended.train_loss,
            eval.split,
            eval.loss,
            eval.metrics
                .iter()
                .map(|(k, v)| format!(", {k} {v:.4}"))
                .collect::<String>(),
            self.task.item_name(),
        );
        self.state.wall_time_s = self.wall_time();
        let (forward, backward) = self
            .driver
            .passes()
            .per_step_since(ended.passes_before, steps);
        self.metrics
            .write(&MetricsRecord {
                kind: RecordKind::Eval,
                step: self.state.step,
                round: round + 1,
                train_loss: ended.train_loss,
                lr: ended.lr,
                wall_time_s: self.state.wall_time_s,
                items_per_s,
                forward_passes: Some(forward),
                backward_passes: Some(backward),
                eval: Some(eval.clone()),
                diagnostics: self
                    .optimizer
                    .diagnostics()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            })
            .map_err(io_err(self.run.metrics()))?;
        self.last = Some((ended.train_loss, eval));
        self.state.rounds_done = round + 1;
        self.state.skipped_steps += std::mem::take(&mut self.driver.skipped);
        self.state.metrics_len = self.metrics.len().map_err(io_err(self.run.metrics()))?;
        self.store.save(
            self.model(),
            &self.optimizer,
            &self.scheduler,
            self.state.clone(),
        )?;
        Ok(())
    }

    /// The run's summary, once every round is done.
    fn summary(&mut self, num_params: usize) -> Result<RunSummary, TrainError> {
        let rounds_run = self.plan.rounds.saturating_sub(self.resumed_from_round);
        let steps_run = rounds_run * self.plan.steps_per_round;
        let (forward, backward) = self
            .driver
            .passes()
            .per_step_since(PassCounts::default(), steps_run);
        let (final_train_loss, final_eval) = match self.last.take() {
            Some(last) => last,
            // Nothing left to train (a run stopped between its last checkpoint and its summary):
            // report the model as it stands, with the last round's train loss from its metrics.
            None => {
                let train_loss = self
                    .run
                    .read_metrics()
                    .ok()
                    .and_then(|records| {
                        records
                            .iter()
                            .rev()
                            .find(|r| r.kind == RecordKind::Eval && r.round == self.plan.rounds)
                            .map(|r| r.train_loss)
                    })
                    .unwrap_or(f64::NAN);
                (train_loss, self.task.evaluate(self.model()))
            }
        };
        let selection = self.task.selection();
        let final_value = final_eval.metric(&selection.metric).unwrap_or(f64::NAN);
        Ok(RunSummary {
            rounds: self.plan.rounds,
            steps: self.state.step,
            final_train_loss,
            best_value: self
                .state
                .best_value
                .map_or(final_value, |best| selection.best(best, final_value)),
            final_eval,
            selection,
            wall_time_s: self.wall_time(),
            items_per_s: if rounds_run > 0 {
                (steps_run * self.task.items_per_batch()) as f64 / self.train_seconds
            } else {
                0.0
            },
            num_params,
            resumed_from_round: self.resumed_from_round,
            forward_passes_per_step: forward,
            backward_passes_per_step: backward,
            skipped_steps: self.state.skipped_steps + self.driver.skipped,
            // A state that cannot be serialised could not be checkpointed either; leave it out.
            optimizer_state_bytes: self.optimizer.to_bytes().ok().map(|b| b.len() as u64),
        })
    }

    fn wall_time(&self) -> f64 {
        self.wall_before + self.started.elapsed().as_secs_f64()
    }

    fn model(&self) -> &T::Model {
        self.model
            .as_ref()
            .expect("the model is back after every step")
    }

    fn gave_up(&self, gave_up: GaveUp, round: usize) -> TrainError {
        TrainError::NonFinite {
            value: gave_up.loss,
            step: self.state.step + 1,
            round: round + 1,
            parameter: gave_up.parameter,
            checkpoints: self.run.checkpoints(),
        }
    }
}

fn describe_parameter(parameter: &Option<String>) -> String {
    match parameter {
        Some(path) => format!("first non-finite parameter: `{path}`"),
        None => "all parameters are still finite (the loss itself overflowed)".into(),
    }
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
    fn check_finite<T: Task>(
        &self,
        mean: f64,
        last_step: u64,
        round: usize,
        rounds: &Rounds<'_, T>,
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
        Err(TrainError::NonFinite {
            value,
            step: last_step - (self.steps - 1 - index) as u64,
            round: round + 1,
            parameter: first_non_finite_parameter(rounds.model()),
            checkpoints: rounds.run.checkpoints(),
        })
    }
}

fn progress_bar(enabled: bool, steps: usize, round: usize, rounds: usize) -> ProgressBar {
    let target = if enabled && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(steps as u64), target);
    bar.set_style(
        ProgressStyle::with_template(
            "round {prefix} [{bar:30}] {pos}/{len} steps, {per_sec}, eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", round + 1, rounds));
    bar
}
