//! `summary.json`: the numbers of a finished run, beside the configuration it ran with.

use serde::{Deserialize, Serialize};

use super::{EvalSplit, Evaluation, Selection};

/// The numbers a finished run reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Rounds done (epochs for image classification).
    pub rounds: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Mean training loss of the last round.
    pub final_train_loss: f64,
    /// The evaluation after the last round.
    pub final_eval: Evaluation,
    /// The metric runs are judged by, and its direction.
    pub selection: Selection,
    /// The best value of the selection metric over the run's evaluations.
    pub best_value: f64,
    /// Training wall time (all rounds, evaluation included), seconds.
    pub wall_time_s: f64,
    /// Mean training throughput (images or tokens per second) over the rounds run in this
    /// process, evaluation excluded.
    pub items_per_s: f64,
    /// Trainable parameters of the model.
    pub num_params: usize,
    /// The round this process started from (0 unless resumed).
    pub resumed_from_round: usize,
    /// Forward passes per optimizer step over the rounds run in this process, snapshot passes of
    /// SVRG / VAMO included (1 for per-parameter optimizers, 4 for GAM, …).
    pub forward_passes_per_step: f64,
    /// Backward passes per optimizer step, likewise.
    pub backward_passes_per_step: f64,
    /// Steps undone in this process because their loss or update was not finite
    /// (`--on-nonfinite skip`).
    pub skipped_steps: u64,
    /// The optimizer's state at the end, as its checkpoint stores it (bytes; burn's record
    /// encoding varies by a few bytes between equal states): what it costs in memory beyond the
    /// model. Absent in files written before it was recorded.
    #[serde(default)]
    pub optimizer_state_bytes: Option<u64>,
}

impl RunSummary {
    /// The final evaluation's selection metric.
    pub fn final_value(&self) -> f64 {
        self.final_eval
            .metric(&self.selection.metric)
            .unwrap_or(f64::NAN)
    }
}

/// `summary.json` as written: the summary and the run's configuration.
#[derive(Serialize)]
pub(super) struct SummaryFile<'a> {
    pub summary: &'a RunSummary,
    pub config: &'a serde_json::Value,
}

/// `summary.json` as read: today's layout, or the one written before the run folder had one
/// contract (`epochs`, `final_test_*`, `best_test_accuracy`, …), whose evaluation split is the
/// config's `evaluate` (absent: test).
#[derive(Deserialize)]
pub(super) struct SummaryFileIn {
    summary: serde_json::Value,
    #[serde(default)]
    config: serde_json::Value,
}

#[derive(Deserialize)]
struct LegacySummary {
    epochs: usize,
    steps: u64,
    final_train_loss: f64,
    final_test_loss: f64,
    final_test_accuracy: f64,
    best_test_accuracy: f64,
    wall_time_s: f64,
    train_images_per_s: f64,
    num_params: usize,
    resumed_from_epoch: usize,
    forward_passes_per_step: f64,
    backward_passes_per_step: f64,
    #[serde(default)]
    skipped_steps: u64,
}

impl SummaryFileIn {
    /// The summary in today's layout (a legacy one converted) and the run's configuration.
    pub fn into_parts(self) -> Result<(RunSummary, serde_json::Value), serde_json::Error> {
        let summary = if self.summary.get("final_eval").is_some() {
            serde_json::from_value(self.summary)?
        } else {
            let old: LegacySummary = serde_json::from_value(self.summary)?;
            RunSummary {
                rounds: old.epochs,
                steps: old.steps,
                final_train_loss: old.final_train_loss,
                final_eval: Evaluation {
                    split: config_split(&self.config),
                    loss: old.final_test_loss,
                    metrics: [("accuracy".to_string(), old.final_test_accuracy)].into(),
                },
                selection: Selection::accuracy(),
                best_value: old.best_test_accuracy,
                wall_time_s: old.wall_time_s,
                items_per_s: old.train_images_per_s,
                num_params: old.num_params,
                resumed_from_round: old.resumed_from_epoch,
                forward_passes_per_step: old.forward_passes_per_step,
                backward_passes_per_step: old.backward_passes_per_step,
                skipped_steps: old.skipped_steps,
                optimizer_state_bytes: None,
            }
        };
        Ok((summary, self.config))
    }
}

/// The split a run's configuration says its evaluations ran on (`evaluate`; absent: test).
pub(super) fn config_split(config: &serde_json::Value) -> EvalSplit {
    config
        .get("evaluate")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}
