//! Starting a run or resuming one, and what a resume refuses: a different configuration (named
//! field by field), a budget change that would bend a schedule spanning the run, fewer rounds than
//! were trained, different data.

use std::path::PathBuf;

use crate::checkpoint::{CheckpointStore, LoopState, Restored};
use crate::run_dir::{RunDir, RunSummary};
use crate::task::{Budget, RoundPlan, Task};
use crate::{StepRule, TrainError, TrainParts};

/// Where the loop starts.
pub(crate) enum Start<M> {
    /// The run finished earlier: its summary stands as written; nothing is retrained or rewritten.
    Finished(RunSummary),
    /// Train from this state (fresh, or restored from a checkpoint).
    From(Box<Restored<M>>),
}

/// Checks the run folder (see [`check_run_dir`]), then restores the newest loadable checkpoint
/// when resuming, refusing a checkpoint with more rounds than `plan` or other data.
pub(crate) fn start_or_resume<T: Task>(
    run: &RunDir,
    run_config: &serde_json::Value,
    budget: &Budget,
    task: &T,
    parts: TrainParts<T::Model>,
    resume: bool,
    store: &CheckpointStore,
) -> Result<Start<T::Model>, TrainError> {
    let plan = &task.plan(budget)?;
    check_run_dir(run, run_config, budget, plan, &parts, resume, store)?;
    let fingerprint = task.fingerprint();
    let fresh = LoopState::fresh(fingerprint.clone());
    let TrainParts {
        model,
        optimizer,
        scheduler,
        ..
    } = parts;
    if !resume {
        return Ok(Start::From(Box::new(Restored::fresh(
            model, optimizer, scheduler, fresh,
        ))));
    }
    let restored = store.restore_latest(&model, &optimizer, &scheduler, |e| {
        tracing::warn!("skipping damaged checkpoint: {e}");
    });
    let mut restored = match restored {
        Some(r) => r,
        None => {
            tracing::info!(
                "no checkpoint in {}: starting from scratch",
                run.root().display()
            );
            return Ok(Start::From(Box::new(Restored::fresh(
                model, optimizer, scheduler, fresh,
            ))));
        }
    };
    if restored.state.rounds_done > plan.rounds {
        return Err(below_done(run, budget, restored.state.rounds_done, plan));
    }
    if let Some(old) = &restored.state.data_fingerprint {
        if *old != fingerprint {
            return Err(TrainError::DataChanged {
                path: run.root().to_path_buf(),
                checkpoint: old.clone(),
                now: fingerprint,
            });
        }
    }
    tracing::info!(
        "resuming from {} (round {} done, step {})",
        restored.path.display(),
        restored.state.rounds_done,
        restored.state.step
    );
    restored.state.data_fingerprint = Some(fingerprint);
    if restored.state.rounds_done == plan.rounds {
        if let Some((summary, _)) = run
            .read_summary()
            .ok()
            .flatten()
            .filter(|(s, _)| s.rounds == plan.rounds)
        {
            tracing::info!(
                "{} already finished its {} rounds: nothing to do",
                run.root().display(),
                plan.rounds
            );
            return Ok(Start::Finished(summary));
        }
    }
    Ok(Start::From(Box::new(restored)))
}

/// Creates the run folder, refusing to overwrite an existing run unless resuming, to resume a run
/// that does not exist, and to resume a run whose configuration differs in anything that would
/// change its trajectory (see [`differing_fields`] and [`TrainParts::schedule_spans_run`]).
/// Writes nothing but the folders; `config.json` is written once the checkpoint has been checked
/// too.
fn check_run_dir<M>(
    run: &RunDir,
    run_config: &serde_json::Value,
    budget: &Budget,
    plan: &RoundPlan,
    parts: &TrainParts<M>,
    resume: bool,
    store: &CheckpointStore,
) -> Result<(), TrainError> {
    if resume {
        run.ensure_resumable()?;
        if let Some(done) = run.finished_rounds().filter(|&done| done > plan.rounds) {
            return Err(below_done(run, budget, done, plan));
        }
    }
    std::fs::create_dir_all(run.checkpoints()).map_err(|source| TrainError::RunFolder {
        path: run.checkpoints(),
        source,
    })?;
    let Some(old) = run.read_config()? else {
        return Ok(());
    };
    if !resume {
        if !store.list().is_empty() || run.metrics().exists() {
            return Err(TrainError::RunExists(run.root().to_path_buf()));
        }
        return Ok(());
    }
    let changes = differing_fields(&old, run_config);
    if !changes.is_empty() {
        return Err(TrainError::ConfigMismatch {
            path: run.config(),
            fields: changes.iter().map(|(field, _)| field.clone()).collect(),
            changes: changes
                .into_iter()
                .map(|(field, change)| format!("{field}: {change}"))
                .collect(),
        });
    }
    // The configurations agree but for the budget's length, so the schedule is the one the run
    // started with.
    if let (Some(started), Some(schedule)) = (config_length(&old), &parts.schedule_spans_run) {
        if started != budget.length() as u64 {
            return Err(TrainError::BudgetChangesSchedule {
                path: run.root().to_path_buf(),
                unit: unit(budget),
                started,
                requested: budget.length(),
                schedule: schedule.clone(),
            });
        }
    }
    Ok(())
}

/// The budget's unit as the configuration names it.
fn below_done(run: &RunDir, budget: &Budget, done: usize, plan: &RoundPlan) -> TrainError {
    TrainError::BelowDone {
        path: run.root().to_path_buf(),
        unit: unit(budget),
        length: budget.length(),
        done,
        requested: plan.rounds,
    }
}

fn unit(budget: &Budget) -> &'static str {
    match budget {
        Budget::Epochs { .. } => "epochs",
        Budget::Steps { .. } => "steps",
    }
}

/// Settings that may differ between a run and its resumption: the budget's length (`epochs` or
/// `steps`, checked on their own: they may change only when the schedule does not span the run),
/// `resume`, and `progress` (display only).
const FREE_ON_RESUME: [&str; 4] = ["epochs", "steps", "resume", "progress"];

/// Keys (nested ones as `a.b`) whose values differ between two `config.json`s, each with
/// `old → new`, ignoring what may change on resume (the budget's length, `resume`, `progress`).
/// Resume refuses a run with any; `ember compare` refuses to report a finished run with any.
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

/// The budget's length a configuration records (`epochs` or `steps`): at the top level, else
/// under `train` (what `ember train` writes), else the first nested one.
fn config_length(config: &serde_json::Value) -> Option<u64> {
    let map = config.as_object()?;
    if let Some(n) = ["epochs", "steps"]
        .iter()
        .find_map(|key| map.get(*key).and_then(|v| v.as_u64()))
    {
        return Some(n);
    }
    if let Some(n) = map.get("train").and_then(config_length) {
        return Some(n);
    }
    map.values().find_map(config_length)
}

impl<M> Restored<M> {
    /// A run starting from scratch with these parts.
    fn fresh(
        model: M,
        optimizer: StepRule<M>,
        scheduler: burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler,
        state: LoopState,
    ) -> Self {
        Self {
            model,
            optimizer,
            scheduler,
            state,
            path: PathBuf::new(),
        }
    }
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
        assert_eq!(config_length(&old), Some(2));
        // A float read back 1 ulp off (what serde_json's default parser does to some 17-digit
        // numbers) is the same setting; a different learning rate is not.
        let printed = serde_json::json!({"lr": 0.09698284271712133_f64});
        let read_back = serde_json::json!({"lr": 0.09698284271712132_f64});
        assert_ne!(printed, read_back);
        assert!(differing_fields(&printed, &read_back).is_empty());
        let other = serde_json::json!({"lr": 0.0969828427171_f64});
        assert_eq!(differing_fields(&printed, &other).len(), 1);
        assert_eq!(config_length(&serde_json::json!({"epochs": 3})), Some(3));
        let steps = serde_json::json!({"train": {"steps": 400, "eval_every": 100}});
        assert_eq!(config_length(&steps), Some(400));
        let longer = serde_json::json!({"train": {"steps": 800, "eval_every": 100}});
        assert!(differing_fields(&steps, &longer).is_empty());
        let other_rounds = serde_json::json!({"train": {"steps": 400, "eval_every": 50}});
        assert_eq!(differing_fields(&steps, &other_rounds).len(), 1);
    }
}
