//! An experiment's numbers, gathered from its finished runs: per arm and seed what the run
//! reported, per arm the means with their 95 % intervals and the time to the spec's target, and
//! each arm against the spec's reference arm. `results.json` is this, serialised; `results.md`
//! and the plots are drawn from it (see [`super::report`]).

use std::path::{Path, PathBuf};

use ember_train::{EvalSplit, MetricsRecord, RecordKind, RunSummary, Selection};
use serde::Serialize;

use super::sweep::{ArmSweep, TrialOutcome};
use super::{ArmSpec, CompareSpec, Target};
use crate::report::stats::{
    paired_difference, welch_difference, Difference, MeanCi, MeanStd, MedianRange,
};

/// A report input that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ReportError {
    /// The file that could not be read.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

/// When a run first reached the spec's target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Reached {
    /// The optimizer step of the first evaluation that reached it.
    pub step: u64,
    /// The run's wall time at that evaluation, seconds.
    pub wall_time_s: f64,
}

/// What one finished run (one arm, one seed) reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedRun {
    /// The run's seed.
    pub seed: u64,
    /// The final evaluation's selection metric (accuracy for images).
    pub final_value: f64,
    /// The best value of the selection metric over the run's evaluations.
    pub best_value: f64,
    /// Mean training loss of the last round.
    pub final_train_loss: f64,
    /// Loss of the final evaluation.
    pub final_eval_loss: f64,
    /// Training wall time (all rounds, evaluation included), seconds.
    pub wall_time_s: f64,
    /// Mean training throughput (images or tokens per second), evaluation excluded.
    pub items_per_s: f64,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Trainable parameters of the model.
    pub num_params: usize,
    /// The optimizer's checkpointed state at the end, bytes (`None` for runs recorded before it
    /// was).
    pub optimizer_state_bytes: Option<u64>,
    /// `None` when the spec names no target or the run never reached it.
    pub reached_target: Option<Reached>,
}

/// A value at one round over seeds: mean, min–max, and the mean's 95 % interval (equal to the
/// mean for one seed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Band {
    /// The mean over seeds.
    pub mean: f64,
    /// The lowest value over seeds.
    pub min: f64,
    /// The highest value over seeds.
    pub max: f64,
    /// Lower end of the mean's 95 % interval.
    pub ci_lo: f64,
    /// Upper end of the mean's 95 % interval.
    pub ci_hi: f64,
}

impl Band {
    fn of(values: &[f64]) -> Self {
        let ci = MeanCi::of(values).expect("a round some seed reached");
        Band {
            mean: ci.mean,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ci_lo: ci.lo.unwrap_or(ci.mean),
            ci_hi: ci.hi.unwrap_or(ci.mean),
        }
    }
}

/// One round (epoch) of one arm over its seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoundPoint {
    /// The round's number, from 1.
    pub round: usize,
    /// Mean wall time over seeds at the round's evaluation, seconds.
    pub wall_time_s: f64,
    /// The round's training loss over seeds.
    pub train_loss: Band,
    /// The evaluation's selection metric (NaN where a line has none).
    pub eval_value: Band,
}

/// How many seeds reached the target, and their steps and seconds to it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TimeToTarget {
    /// Seeds whose run reached the target.
    pub reached: usize,
    /// Seeds whose run finished.
    pub of: usize,
    /// Optimizer steps to the target over the seeds that reached it (`None` if none did).
    pub steps: Option<MedianRange>,
    /// Wall-clock seconds to the target over the seeds that reached it (`None` if none did).
    pub seconds: Option<MedianRange>,
}

/// What the report says about one arm.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmResult {
    /// The arm's name in the spec.
    pub name: String,
    /// The arm's optimizer and schedule, every knob resolved (JSON), for the report.
    pub setup: String,
    /// Why it did not run, for a pending arm (the numbers are then absent).
    pub pending: Option<String>,
    /// The split the runs evaluated on (test unless the spec holds out a validation split).
    pub eval_split: EvalSplit,
    /// The metric the runs are judged by (accuracy for images) and its direction.
    pub selection: Selection,
    /// One entry per seed whose run finished.
    pub runs: Vec<SeedRun>,
    /// The final selection metric over seeds (`None` with no finished run, as below).
    pub final_value: Option<MeanCi>,
    /// The best selection metric of each run, over seeds.
    pub best_value: Option<MeanCi>,
    /// The last round's training loss over seeds.
    pub final_train_loss: Option<MeanCi>,
    /// The final evaluation's loss over seeds.
    pub final_eval_loss: Option<MeanCi>,
    /// Training wall time over seeds, seconds.
    pub wall_time_s: Option<MeanCi>,
    /// Training throughput (images or tokens per second) over seeds.
    pub items_per_s: Option<MeanCi>,
    /// Mean forward passes per optimizer step (1 for per-parameter optimizers, 4 for GAM, …).
    pub forward_passes_per_step: Option<f64>,
    /// Mean backward passes per optimizer step.
    pub backward_passes_per_step: Option<f64>,
    /// The optimizer's checkpointed state over the model's parameter count. SVRG's and VAMO's
    /// snapshot (a copy of the weights and a full gradient, rebuilt every epoch) is not in it.
    pub state_bytes_per_param: Option<f64>,
    /// How many seeds reached the spec's target and how fast (`None` without a target or runs).
    pub time_to_target: Option<TimeToTarget>,
    /// Per round, over the finished seeds.
    pub rounds: Vec<RoundPoint>,
}

impl ArmResult {
    /// The seeds of the finished runs, in the spec's order.
    pub fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|r| r.seed).collect()
    }
}

/// One arm against the reference arm.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersusReference {
    /// The arm compared with the reference.
    pub arm: String,
    /// Arm − reference in the final selection metric; `None` with too few seeds to test.
    pub final_value: Option<Difference>,
    /// The arm's mean time per training step over the reference's, from the same runs' train
    /// throughput (same batch size, evaluation excluded).
    pub step_time_ratio: Option<f64>,
}

/// What each arm was given to find and train its setting.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmBudget {
    /// The arm's name.
    pub arm: String,
    /// Trials its search planned (1 for an arm trained as written) and how many finished or
    /// diverged.
    pub trials_planned: usize,
    /// Trials that finished or diverged.
    pub trials_done: usize,
    /// The search space, as the report prints it (empty: nothing searched).
    pub searched: String,
    /// Seeds whose final run finished.
    pub seeds_done: usize,
}

/// The whole report's numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Results {
    /// The experiment's name (the spec's `name`).
    pub spec: String,
    /// The commit the report was made at ([`crate::report::provenance::commit`]).
    pub commit: String,
    /// The machine the report was made on ([`crate::report::provenance::machine`]).
    pub machine: String,
    /// Rounds every run trains (epochs for images).
    pub rounds: usize,
    /// The spec's training batch size.
    pub batch_size: usize,
    /// The seeds every arm runs.
    pub seeds: Vec<u64>,
    /// The arm every other arm is compared with, if the spec names one.
    pub reference: Option<String>,
    /// The evaluation value time to target is measured to, if the spec sets one.
    pub target: Option<Target>,
    /// What each runnable arm was given: trials and finished seeds.
    pub budgets: Vec<ArmBudget>,
    /// Unequal budgets and other reasons to distrust a comparison, one sentence each.
    pub warnings: Vec<String>,
    /// Every arm, in the spec's order.
    pub arms: Vec<ArmResult>,
    /// Every other arm with runs against the reference (empty without one).
    pub versus_reference: Vec<VersusReference>,
}

impl Results {
    /// The split and selection metric the finished runs share (test accuracy when none ran).
    pub fn judged_by(&self) -> (EvalSplit, Selection) {
        self.arms
            .iter()
            .find(|a| !a.runs.is_empty())
            .map_or((EvalSplit::Test, Selection::accuracy()), |a| {
                (a.eval_split, a.selection.clone())
            })
    }

    /// The arm called `name`.
    pub fn arm(&self, name: &str) -> Option<&ArmResult> {
        self.arms.iter().find(|a| a.name == name)
    }
}

/// Reads the finished runs of every arm (`summary.json` present, for the spec's epoch count)
/// under `runs_dir` and computes the report's numbers; `sweeps` are the arms' searches, when the
/// spec has one.
pub fn collect_results(
    spec: &CompareSpec,
    runs_dir: &Path,
    sweeps: Option<&[ArmSweep]>,
    commit: String,
    machine: String,
) -> Result<Results, ReportError> {
    let arms = spec
        .arms
        .iter()
        .map(|arm| collect_arm(spec, runs_dir, arm))
        .collect::<Result<Vec<_>, _>>()?;
    let budgets = budgets(spec, sweeps, &arms);
    let warnings = budget_warnings(&budgets);
    let versus_reference = match &spec.reference {
        Some(reference) => versus(&arms, reference),
        None => Vec::new(),
    };
    Ok(Results {
        spec: spec.name.clone(),
        commit,
        machine,
        rounds: spec.train.rounds(),
        batch_size: spec.train.batch_size,
        seeds: spec.seeds.clone(),
        reference: spec.reference.clone(),
        target: spec.target,
        budgets,
        warnings,
        arms,
        versus_reference,
    })
}

fn collect_arm(
    spec: &CompareSpec,
    runs_dir: &Path,
    arm: &ArmSpec,
) -> Result<ArmResult, ReportError> {
    let mut finished = Vec::new();
    let mut trained_with = None;
    if arm.pending.is_none() {
        for &seed in &spec.seeds {
            let run = spec.run_dir(runs_dir, arm, seed);
            if !run.summary().exists() {
                continue;
            }
            let fail = |e: ember_train::RunFileError| ReportError {
                path: e.path.clone(),
                message: e.message,
            };
            let Some((summary, config)) = run.read_summary().map_err(fail)? else {
                continue;
            };
            if summary.rounds != spec.train.rounds() {
                tracing::warn!(
                    "{}: finished {} {}, the spec asks for {}: left out of the report",
                    run.root().display(),
                    summary.rounds,
                    spec.train.round_name(),
                    spec.train.rounds()
                );
                continue;
            }
            let records = run.read_metrics().map_err(fail)?;
            if trained_with.is_none() {
                trained_with = recorded_setup(&config);
            }
            finished.push((seed, summary, records));
        }
    }
    Ok(summarise(arm, spec.target, trained_with, &finished))
}

/// The optimizer and schedule a finished run recorded beside its summary (what it trained with:
/// in a sweep, the chosen knobs).
fn recorded_setup(config: &serde_json::Value) -> Option<(serde_json::Value, serde_json::Value)> {
    Some((
        config.get("optimizer")?.clone(),
        config.get("scheduler")?.clone(),
    ))
}

/// The first evaluation of `records` that reaches `target`.
fn first_reaching(records: &[MetricsRecord], target: Target) -> Option<Reached> {
    records
        .iter()
        .filter(|r| r.kind == RecordKind::Eval)
        .find(|r| {
            r.eval
                .as_ref()
                .and_then(|e| e.metric(target.metric()))
                .is_some_and(|v| target.reached_by(v))
        })
        .map(|r| Reached {
            step: r.step,
            wall_time_s: r.wall_time_s,
        })
}

fn summarise(
    arm: &ArmSpec,
    target: Option<Target>,
    trained_with: Option<(serde_json::Value, serde_json::Value)>,
    finished: &[(u64, RunSummary, Vec<MetricsRecord>)],
) -> ArmResult {
    let selection = finished
        .first()
        .map_or_else(Selection::accuracy, |(_, s, _)| s.selection.clone());
    let runs: Vec<SeedRun> = finished
        .iter()
        .map(|(seed, s, records)| SeedRun {
            seed: *seed,
            final_value: s.final_value(),
            best_value: s.best_value,
            final_train_loss: s.final_train_loss,
            final_eval_loss: s.final_eval.loss,
            wall_time_s: s.wall_time_s,
            items_per_s: s.items_per_s,
            steps: s.steps,
            num_params: s.num_params,
            optimizer_state_bytes: s.optimizer_state_bytes,
            reached_target: target.and_then(|t| first_reaching(records, t)),
        })
        .collect();
    let ci = |f: fn(&SeedRun) -> f64| MeanCi::of(&runs.iter().map(f).collect::<Vec<_>>());
    let mean = |f: fn(&RunSummary) -> f64| {
        (!finished.is_empty())
            .then(|| MeanStd::of(&finished.iter().map(|(_, s, _)| f(s)).collect::<Vec<_>>()).mean)
    };
    let state_bytes_per_param = {
        let per_param: Vec<f64> = runs
            .iter()
            .filter_map(|r| Some(r.optimizer_state_bytes? as f64 / r.num_params.max(1) as f64))
            .collect();
        (!per_param.is_empty()).then(|| crate::report::stats::mean(per_param))
    };
    let time_to_target = target.filter(|_| !runs.is_empty()).map(|_| {
        let reached: Vec<Reached> = runs.iter().filter_map(|r| r.reached_target).collect();
        TimeToTarget {
            reached: reached.len(),
            of: runs.len(),
            steps: MedianRange::of(reached.iter().map(|r| r.step as f64).collect()),
            seconds: MedianRange::of(reached.iter().map(|r| r.wall_time_s).collect()),
        }
    });
    ArmResult {
        name: arm.name.clone(),
        setup: arm
            .choice
            .as_ref()
            .map(|c| {
                let (optimizer, scheduler) = trained_with.clone().unwrap_or_else(|| {
                    (
                        serde_json::to_value(&c.optimizer).expect("specs serialise"),
                        serde_json::to_value(&c.scheduler).expect("specs serialise"),
                    )
                });
                format!("optimizer {optimizer}, scheduler {scheduler}")
            })
            .unwrap_or_default(),
        pending: arm.pending.clone(),
        eval_split: finished
            .first()
            .map_or(EvalSplit::default(), |(_, s, _)| s.final_eval.split),
        final_value: ci(|r| r.final_value),
        best_value: ci(|r| r.best_value),
        final_train_loss: ci(|r| r.final_train_loss),
        final_eval_loss: ci(|r| r.final_eval_loss),
        wall_time_s: ci(|r| r.wall_time_s),
        items_per_s: ci(|r| r.items_per_s),
        forward_passes_per_step: mean(|s| s.forward_passes_per_step),
        backward_passes_per_step: mean(|s| s.backward_passes_per_step),
        state_bytes_per_param,
        time_to_target,
        rounds: rounds(&selection, finished),
        selection,
        runs,
    }
}

/// Per round, the seeds' wall time, train loss and evaluation, over the rounds every seed has.
fn rounds(
    selection: &Selection,
    finished: &[(u64, RunSummary, Vec<MetricsRecord>)],
) -> Vec<RoundPoint> {
    let count = finished
        .iter()
        .map(|(_, _, c)| c.iter().filter(|r| r.kind == RecordKind::Eval).count())
        .min()
        .unwrap_or(0);
    (1..=count)
        .map(|round| {
            let lines: Vec<&MetricsRecord> = finished
                .iter()
                .filter_map(|(_, _, c)| {
                    c.iter()
                        .find(|r| r.kind == RecordKind::Eval && r.round == round)
                })
                .collect();
            let values = |f: &dyn Fn(&MetricsRecord) -> f64| -> Vec<f64> {
                lines.iter().map(|r| f(r)).collect()
            };
            RoundPoint {
                round,
                wall_time_s: crate::report::stats::mean(values(&|r| r.wall_time_s)),
                train_loss: Band::of(&values(&|r| r.train_loss)),
                eval_value: Band::of(&values(&|r| {
                    r.eval_metric(&selection.metric).unwrap_or(f64::NAN)
                })),
            }
        })
        .collect()
}

/// What each runnable arm was given: its trials (from the search, if any) and finished seeds.
fn budgets(spec: &CompareSpec, sweeps: Option<&[ArmSweep]>, arms: &[ArmResult]) -> Vec<ArmBudget> {
    spec.arms
        .iter()
        .enumerate()
        .filter(|(_, arm)| arm.pending.is_none())
        .map(|(i, arm)| {
            let sweep = sweeps.and_then(|s| s.get(i));
            let (trials_planned, trials_done) = match sweep {
                Some(s) => (
                    s.trials.len(),
                    s.trials
                        .iter()
                        .filter(|t| t.outcome != TrialOutcome::Missing)
                        .count(),
                ),
                // No search: the arm as written is its one setting.
                None => (1, 1),
            };
            ArmBudget {
                arm: arm.name.clone(),
                trials_planned,
                trials_done,
                searched: super::sweep::describe_space(&arm.search),
                seeds_done: arms[i].runs.len(),
            }
        })
        .collect()
}

/// One sentence per way the arms' budgets differ: trials planned, trials left unfinished, seeds
/// finished.
fn budget_warnings(budgets: &[ArmBudget]) -> Vec<String> {
    let mut warnings = Vec::new();
    let most = |count: fn(&ArmBudget) -> usize| budgets.iter().map(count).max().unwrap_or(0);
    let listed = |short: Vec<&ArmBudget>, count: fn(&ArmBudget) -> usize| {
        short
            .iter()
            .map(|b| format!("`{}` {}", b.arm, count(b)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (what, count) in [
        (
            "trials planned",
            (|b| b.trials_planned) as fn(&ArmBudget) -> usize,
        ),
        ("seeds finished", |b| b.seeds_done),
    ] {
        let most = most(count);
        let short: Vec<&ArmBudget> = budgets.iter().filter(|b| count(b) < most).collect();
        if !short.is_empty() {
            warnings.push(format!(
                "Unequal budgets: {what} — {} against {most} for the other arms; the comparison \
                 favours the arms that got more.",
                listed(short, count)
            ));
        }
    }
    let unfinished: Vec<&ArmBudget> = budgets
        .iter()
        .filter(|b| b.trials_done < b.trials_planned)
        .collect();
    if !unfinished.is_empty() {
        warnings.push(format!(
            "Unfinished search: trials finished — {}; their choice was made from fewer trials \
             than planned.",
            listed(unfinished, |b| b.trials_done)
        ));
    }
    warnings
}

/// Every other arm with runs against `reference`: the difference in the final selection metric,
/// paired over the seeds both finished (the same seed gives the same initialisation and data
/// order to every arm) when there are at least two, else Welch over all their seeds.
fn versus(arms: &[ArmResult], reference: &str) -> Vec<VersusReference> {
    let Some(base) = arms.iter().find(|a| a.name == reference) else {
        return Vec::new();
    };
    arms.iter()
        .filter(|a| a.name != reference && !a.runs.is_empty())
        .map(|arm| {
            let common: Vec<(f64, f64)> = arm
                .runs
                .iter()
                .filter_map(|r| {
                    let b = base.runs.iter().find(|b| b.seed == r.seed)?;
                    Some((r.final_value, b.final_value))
                })
                .collect();
            let final_value = if common.len() >= 2 {
                let (a, b): (Vec<f64>, Vec<f64>) = common.into_iter().unzip();
                paired_difference(&a, &b)
            } else {
                let values =
                    |x: &ArmResult| x.runs.iter().map(|r| r.final_value).collect::<Vec<_>>();
                welch_difference(&values(arm), &values(base))
            };
            let step_time_ratio = match (&arm.items_per_s, &base.items_per_s) {
                (Some(a), Some(b)) if a.mean > 0.0 => Some(b.mean / a.mean),
                _ => None,
            };
            VersusReference {
                arm: arm.name.clone(),
                final_value,
                step_time_ratio,
            }
        })
        .collect()
}
