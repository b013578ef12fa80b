//! Tuned comparisons: an experiment spec with a `[sweep]` section searches each arm's knobs on a
//! validation split carved from the training set, then runs the best setting on every seed and
//! reports it on the test set, which the search never reads.
//!
//! ```toml
//! [sweep]
//! trials = 8               # per arm (a space of small grids is tried exhaustively)
//! validation = 5000        # images: training images held out for selection (class-balanced,
//!                          # seeded); text validates on the split its `holdout_every` holds out
//! seed = 0                 # seeds the random search
//! target_accuracy = 0.5    # optional: report the time and steps to reach it
//!
//! [[arm]]
//! name = "sgd"
//! optimizer = { name = "sgd", momentum = 0.9 }
//! scheduler = { name = "cosine", lr = 0.05, warmup_steps = 100 }
//! search = { "scheduler.lr" = { log_uniform = [1e-3, 0.3] } }
//! ```
//!
//! Trials train on the training set less the validation split, with the spec's epochs and its
//! first seed, and are evaluated on the validation split; a trial whose loss or update stops being
//! finite stops at once and counts as diverged. The chosen setting is the trial with the best
//! final validation metric — the highest accuracy for images (ties: the lower validation loss),
//! the lowest loss for text. Finished and diverged trials are kept on disk and skipped when the
//! sweep runs again.

pub mod space;

use std::path::{Path, PathBuf};

use ember_train::{write_atomically, EvalSplit, RecordKind, RunDir, Selection, TrainError};
use serde::{Deserialize, Serialize};

pub use space::{Dimension, Setting, Space};

use super::{ArmSpec, CompareSpec};
use crate::report::markdown::Table;
use crate::report::plot::{LegendPosition, LinePlot};

/// A spec's `[sweep]` section.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    /// Trials per arm.
    pub trials: usize,
    /// Training images held out as the validation split (images only; required there).
    pub validation: Option<usize>,
    /// Seeds the random search (with the arm's index).
    #[serde(default)]
    pub seed: u64,
    /// A validation accuracy (0..1) whose first arrival is reported (time and steps).
    pub target_accuracy: Option<f64>,
}

/// What became of one trial.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum TrialOutcome {
    /// Trained all epochs.
    Finished {
        /// The final validation value of the spec's selection metric (accuracy or loss).
        validation: f64,
        /// The final validation loss (the tie-breaker between equal accuracies).
        validation_loss: f64,
        /// Wall time (s) and step at the end of the first epoch at or above the target accuracy.
        reached_target: Option<(f64, u64)>,
        /// The trial's training wall time (evaluation included), seconds.
        wall_time_s: f64,
    },
    /// Its loss or an update stopped being finite.
    Diverged(String),
    /// Not trained (yet).
    Missing,
}

/// One trial of one arm.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// Its position in the arm's trial order (its folder is `<arm>-t<index>`).
    pub index: usize,
    /// The knobs it set (empty for an arm without a search space).
    pub setting: Setting,
    /// The peak learning rate it trained with (the sensitivity plot's x).
    pub lr: f64,
    /// Finished (with its validation numbers), diverged or not trained yet.
    pub outcome: TrialOutcome,
}

/// An arm's trials and the setting they chose.
#[derive(Clone, Debug, Serialize)]
pub struct ArmSweep {
    /// The arm's name.
    pub arm: String,
    /// Every trial the arm's search plans, in trial order.
    pub trials: Vec<Trial>,
    /// Index into `trials` of the chosen one; `None` while no trial finished.
    pub chosen: Option<usize>,
}

impl ArmSweep {
    /// The chosen setting (empty for an arm without a search space).
    pub fn chosen_setting(&self) -> Option<&Setting> {
        self.chosen.map(|i| &self.trials[i].setting)
    }
}

/// Marks a trial that diverged, so that a resumed sweep does not train it again.
const DIVERGED_FILE: &str = "diverged.txt";

/// The folder of trial `index` of `arm`.
pub fn trial_dir(spec: &CompareSpec, runs_dir: &Path, arm: &ArmSpec, index: usize) -> RunDir {
    RunDir::new(
        runs_dir
            .join(&spec.name)
            .join("trials")
            .join(format!("{}-t{index}", arm.name)),
    )
}

/// The settings `arm` (at `arm_index` in the spec) tries, in trial order.
pub fn arm_settings(sweep: &SweepSection, arm: &ArmSpec, arm_index: usize) -> Vec<Setting> {
    space::settings(
        &arm.search,
        sweep.trials,
        sweep.seed.wrapping_mul(1_000_003) ^ arm_index as u64,
    )
}

/// Trains `arm`'s missing trials (none with `train` false) and reads them all back.
pub fn run_trials(
    spec: &CompareSpec,
    sweep: &SweepSection,
    runs_dir: &Path,
    arm: &ArmSpec,
    arm_index: usize,
    train: bool,
) -> anyhow::Result<ArmSweep> {
    let settings = arm_settings(sweep, arm, arm_index);
    let mut trials = Vec::with_capacity(settings.len());
    for (index, setting) in settings.into_iter().enumerate() {
        let run = trial_dir(spec, runs_dir, arm, index);
        let run_spec = spec.trial_spec(arm, &setting)?;
        if train && read_outcome(spec, &run)? == TrialOutcome::Missing {
            train_trial(spec, runs_dir, arm, index, &setting)?;
        }
        trials.push(Trial {
            index,
            lr: run_spec.scheduler().lr(),
            outcome: read_outcome(spec, &run)?,
            setting,
        });
    }
    let chosen = choose(&trials, &spec.selection());
    Ok(ArmSweep {
        arm: arm.name.clone(),
        trials,
        chosen,
    })
}

/// Trains (or resumes) trial `index` of `arm` with `setting`. A trial whose loss or update stops
/// being finite is marked diverged (and never trained again), not an error.
pub fn train_trial(
    spec: &CompareSpec,
    runs_dir: &Path,
    arm: &ArmSpec,
    index: usize,
    setting: &Setting,
) -> anyhow::Result<()> {
    let run = trial_dir(spec, runs_dir, arm, index);
    let run_spec = spec.trial_spec(arm, setting)?;
    tracing::info!(
        "{} trial {index} ({}): training into {}",
        arm.name,
        space::label(setting),
        run.root().display()
    );
    match run_spec.train(&run, run.root().exists()) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.downcast_ref(), Some(TrainError::NonFinite { .. })) => {
            tracing::warn!("{} trial {index} diverged: {e:#}", arm.name);
            write_atomically(
                &run.root().join(DIVERGED_FILE),
                format!("{e:#}\n").as_bytes(),
            )?;
            Ok(())
        }
        Err(e) => Err(e.context(format!("{} trial {index}", arm.name))),
    }
}

/// What became of trial `index` of `arm`, from its folder.
pub fn trial_outcome(
    spec: &CompareSpec,
    runs_dir: &Path,
    arm: &ArmSpec,
    index: usize,
) -> anyhow::Result<TrialOutcome> {
    read_outcome(spec, &trial_dir(spec, runs_dir, arm, index))
}

/// The trial with the best final validation value of `selection`'s metric; ties go to the lower
/// validation loss, then to the earlier trial.
pub fn choose(trials: &[Trial], selection: &Selection) -> Option<usize> {
    let mut best: Option<(usize, f64, f64)> = None;
    for t in trials {
        if let TrialOutcome::Finished {
            validation: value,
            validation_loss: loss,
            ..
        } = t.outcome
        {
            let better = match best {
                None => true,
                Some((_, v, l)) => selection.better(value, v) || (value == v && loss < l),
            };
            if better {
                best = Some((t.index, value, loss));
            }
        }
    }
    best.map(|(i, _, _)| i)
}

/// What the trial's folder says about it.
fn read_outcome(spec: &CompareSpec, run: &RunDir) -> anyhow::Result<TrialOutcome> {
    if let Ok(text) = std::fs::read_to_string(run.root().join(DIVERGED_FILE)) {
        return Ok(TrialOutcome::Diverged(text.trim().to_string()));
    }
    let Some((summary, _)) = run.read_summary()? else {
        return Ok(TrialOutcome::Missing);
    };
    if summary.rounds != spec.train.rounds() {
        return Ok(TrialOutcome::Missing);
    }
    let reached_target = match spec.sweep.as_ref().and_then(|s| s.target_accuracy) {
        Some(target) => run
            .read_metrics()?
            .iter()
            .filter(|r| r.kind == RecordKind::Eval)
            .find(|r| r.eval_metric("accuracy").is_some_and(|a| a >= target))
            .map(|r| (r.wall_time_s, r.step)),
        None => None,
    };
    if summary.final_eval.split != EvalSplit::Validation {
        anyhow::bail!(
            "{}: the trial evaluated on the {} split, a sweep chooses on validation",
            run.summary().display(),
            summary.final_eval.split
        );
    }
    Ok(TrialOutcome::Finished {
        validation: summary
            .final_eval
            .metric(&spec.selection().metric)
            .unwrap_or(f64::NAN),
        validation_loss: summary.final_eval.loss,
        reached_target,
        wall_time_s: summary.wall_time_s,
    })
}

/// The sweep's part of `results.md`: how the search was run, and per arm its space, trials,
/// choice and (with a target) the time to reach it.
pub fn render(spec: &CompareSpec, sweep: &SweepSection, arms: &[ArmSweep]) -> String {
    let selection = spec.selection();
    let by_accuracy = selection.metric == "accuracy";
    let split = match sweep.validation {
        Some(images) => format!(
            "a validation split of {images} images held out of the training set (class-balanced, \
             seeded)"
        ),
        None => "the text's validation split".to_string(),
    };
    let mut md = format!(
        "## Search\n\nEach arm's knobs were searched on {split}, with seed {} and the same \
         budget; {} trials per arm (a space of small grids is tried exhaustively), search seed {}. \
         The chosen setting has the {} final validation {}; the runs above trained with it on \
         every seed and are the only ones that read the test set.\n\n",
        spec.seeds[0],
        sweep.trials,
        sweep.seed,
        if selection.higher_is_better {
            "highest"
        } else {
            "lowest"
        },
        selection.metric
    );
    let target = sweep.target_accuracy;
    let mut header: Vec<String> = ["arm", "searched", "trials done (diverged)", "chosen"]
        .map(String::from)
        .into();
    if by_accuracy {
        header.push("validation accuracy".into());
    }
    header.push("validation loss".into());
    if let Some(t) = target {
        header.push(format!(
            "time to {:.1} % validation accuracy (steps)",
            100.0 * t
        ));
    }
    let mut table = Table::new(header);
    for (arm, swept) in spec.arms.iter().zip(arms) {
        let done = swept
            .trials
            .iter()
            .filter(|t| t.outcome != TrialOutcome::Missing)
            .count();
        let diverged = swept
            .trials
            .iter()
            .filter(|t| matches!(t.outcome, TrialOutcome::Diverged(_)))
            .count();
        let chosen = swept.chosen.map(|i| &swept.trials[i]);
        let (choice, acc, loss, reached) = match chosen.map(|t| (&t.setting, &t.outcome)) {
            Some((
                setting,
                TrialOutcome::Finished {
                    validation,
                    validation_loss,
                    reached_target,
                    ..
                },
            )) => (
                if setting.is_empty() {
                    "as written".to_string()
                } else {
                    space::label(setting)
                },
                format!("{:.2} %", 100.0 * validation),
                format!("{validation_loss:.4}"),
                match reached_target {
                    Some((wall, step)) => format!("{wall:.1} s ({step})"),
                    None => "not reached".into(),
                },
            ),
            _ => ("–".into(), "–".into(), "–".into(), "–".into()),
        };
        let searched = describe_space(&arm.search);
        let mut row = vec![
            arm.name.clone(),
            if searched.is_empty() {
                "nothing".to_string()
            } else {
                searched
            },
            format!("{done}/{} ({diverged})", swept.trials.len()),
            choice,
        ];
        if by_accuracy {
            row.push(acc);
        }
        row.push(loss);
        if target.is_some() {
            row.push(reached);
        }
        table.row(row);
    }
    md += &table.render();
    let edges = chosen_at_edges(spec, arms);
    if !edges.is_empty() {
        md += &format!(
            "\n> **Warning.** Chosen at the edge of the searched space, so the best value may lie \
             outside it: {}.\n",
            edges.join("; ")
        );
    }
    md += &format!(
        "\n![final validation {} against learning rate](sensitivity.png)\n",
        selection.metric
    );
    md
}

/// `` `arm`: `scheduler.lr` = 0.01 `` for every knob whose chosen value lies at the edge of its
/// arm's space ([`Dimension::at_edge`]).
pub fn chosen_at_edges(spec: &CompareSpec, arms: &[ArmSweep]) -> Vec<String> {
    let mut edges = Vec::new();
    for (arm, swept) in spec.arms.iter().zip(arms) {
        let Some(setting) = swept.chosen_setting() else {
            continue;
        };
        for (path, dimension) in &arm.search {
            if let Some(&value) = setting.get(path) {
                if dimension.at_edge(value) {
                    edges.push(format!("`{}`: `{path}` = {value}", arm.name));
                }
            }
        }
    }
    edges
}

/// An arm's search space as the reports print it: `` `scheduler.lr` log-uniform [0.001, 0.1] ``,
/// comma-separated; empty when nothing is searched.
pub fn describe_space(search: &Space) -> String {
    search
        .iter()
        .map(|(path, d)| format!("`{path}` {}", describe(d)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(d: &Dimension) -> String {
    match d {
        Dimension::LogUniform([lo, hi]) => format!("log-uniform [{lo}, {hi}]"),
        Dimension::Uniform([lo, hi]) => format!("uniform [{lo}, {hi}]"),
        Dimension::Grid(values) => format!("grid {values:?}"),
    }
}

/// The sensitivity plot: final validation accuracy of every finished trial against its peak
/// learning rate, one line per arm. Only warns when it cannot be drawn.
pub fn write_sensitivity_plot(
    spec: &CompareSpec,
    arms: &[ArmSweep],
    out: &Path,
) -> Option<PathBuf> {
    let by_accuracy = spec.selection().metric == "accuracy";
    let mut plot = LinePlot::new(format!("{}: sensitivity to the learning rate", spec.name))
        .x_label("peak learning rate")
        .y_label(if by_accuracy {
            "final validation accuracy (%)"
        } else {
            "final validation loss"
        })
        .log_x(true)
        .legend(if by_accuracy {
            LegendPosition::LowerRight
        } else {
            LegendPosition::UpperRight
        });
    let mut any = false;
    for swept in arms {
        let mut points: Vec<(f64, f64)> = swept
            .trials
            .iter()
            .filter_map(|t| match t.outcome {
                TrialOutcome::Finished { validation, .. } => Some((
                    t.lr,
                    if by_accuracy {
                        100.0 * validation
                    } else {
                        validation
                    },
                )),
                _ => None,
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !points.is_empty() {
            any = true;
            plot = plot.series(swept.arm.clone(), points);
        }
    }
    if !any {
        return None;
    }
    let path = out.join("sensitivity.png");
    match plot.write(&path) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!("plot {} not drawn: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(index: usize, acc: f64, loss: f64) -> Trial {
        Trial {
            index,
            setting: Setting::new(),
            lr: 0.1,
            outcome: TrialOutcome::Finished {
                validation: acc,
                validation_loss: loss,
                reached_target: None,
                wall_time_s: 1.0,
            },
        }
    }

    #[test]
    fn the_best_validation_accuracy_wins_then_the_lower_loss() {
        let diverged = Trial {
            index: 0,
            setting: Setting::new(),
            lr: 1.0,
            outcome: TrialOutcome::Diverged("NaN".into()),
        };
        let trials = [
            diverged,
            finished(1, 0.5, 1.0),
            finished(2, 0.6, 1.2),
            finished(3, 0.6, 1.1),
            finished(4, 0.6, 1.1),
        ];
        assert!(Dimension::Grid(vec![1e-3, 3e-3, 1e-2]).at_edge(1e-2));
        assert!(Dimension::Grid(vec![1e-3, 3e-3, 1e-2]).at_edge(1e-3));
        assert!(!Dimension::Grid(vec![1e-3, 3e-3, 1e-2]).at_edge(3e-3));
        assert!(!Dimension::Grid(vec![0.5]).at_edge(0.5));
        // log-uniform [1e-4, 1e-2]: the outer tenth of the log range is 10^±0.2 from the ends.
        assert!(Dimension::LogUniform([1e-4, 1e-2]).at_edge(1.5e-4));
        assert!(!Dimension::LogUniform([1e-4, 1e-2]).at_edge(1e-3));
        assert!(Dimension::Uniform([0.0, 1.0]).at_edge(0.95));
        assert_eq!(choose(&trials, &Selection::accuracy()), Some(3));
        assert_eq!(choose(&trials[..1], &Selection::accuracy()), None);
        // Judged by loss (text), the lowest value wins.
        assert_eq!(choose(&trials, &Selection::loss()), Some(1));
    }
}
