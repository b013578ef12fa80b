//! An experiment's report: from the finished runs of every arm, `results.md` with the spread over
//! seeds, and plots.

use std::path::{Path, PathBuf};

use ember_train::{EvalSplit, MetricsRecord, RecordKind, RunSummary};
use serde::Serialize;

use super::{ArmSpec, CompareSpec};
use crate::plot::{LegendPosition, LinePlot};
use crate::stats::MeanStd;

/// How a report cell shows a mean over seeds.
trait Cell {
    fn percent(&self) -> String;
    fn plain(&self, digits: usize) -> String;
}

impl Cell for MeanStd {
    fn percent(&self) -> String {
        if self.n > 1 {
            format!("{:.2} ± {:.2} %", 100.0 * self.mean, 100.0 * self.std)
        } else {
            format!("{:.2} %", 100.0 * self.mean)
        }
    }

    fn plain(&self, digits: usize) -> String {
        if self.n > 1 {
            format!("{:.digits$} ± {:.digits$}", self.mean, self.std)
        } else {
            format!("{:.digits$}", self.mean)
        }
    }
}

/// A metric over seeds: mean and standard deviation, minimum, maximum.
pub type Spread = (MeanStd, f64, f64);

/// One epoch of one arm over its seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochPoint {
    pub epoch: usize,
    pub wall_time_s: MeanStd,
    pub train_loss: Spread,
    /// The evaluation's accuracy (NaN where a line has none).
    pub eval_accuracy: Spread,
}

/// What the report says about one arm.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmResult {
    pub name: String,
    /// The arm's optimizer and schedule, every knob resolved (JSON), for the report.
    pub setup: String,
    /// Why it did not run, for a pending arm (the numbers are then absent).
    pub pending: Option<String>,
    /// Seeds whose run finished.
    pub seeds: Vec<u64>,
    /// The split the runs evaluated on (test unless the spec holds out a validation split).
    pub eval_split: EvalSplit,
    pub final_eval_accuracy: Option<MeanStd>,
    pub best_eval_accuracy: Option<MeanStd>,
    pub final_train_loss: Option<MeanStd>,
    pub final_eval_loss: Option<MeanStd>,
    pub wall_time_s: Option<MeanStd>,
    pub items_per_s: Option<MeanStd>,
    pub forward_passes_per_step: Option<f64>,
    pub backward_passes_per_step: Option<f64>,
    /// Per epoch, over the finished seeds (min and max alongside the mean).
    pub epochs: Vec<EpochPoint>,
}

/// A report input that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ReportError {
    pub path: PathBuf,
    pub message: String,
}

/// Collects the finished runs of every arm (`summary.json` present, for the spec's epoch count)
/// under `runs_dir`.
pub fn collect_results(spec: &CompareSpec, runs_dir: &Path) -> Result<Vec<ArmResult>, ReportError> {
    spec.arms
        .iter()
        .map(|arm| {
            let mut summaries = Vec::new();
            let mut curves = Vec::new();
            let mut seeds = Vec::new();
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
                    if summary.rounds != spec.train.epochs {
                        tracing::warn!(
                            "{}: finished {} epochs, the spec asks for {}: left out of the report",
                            run.root().display(),
                            summary.rounds,
                            spec.train.epochs
                        );
                        continue;
                    }
                    let records = run.read_metrics().map_err(fail)?;
                    if trained_with.is_none() {
                        trained_with = recorded_setup(&config);
                    }
                    summaries.push(summary);
                    curves.push(records);
                    seeds.push(seed);
                }
            }
            Ok(summarise(arm, trained_with, seeds, &summaries, &curves))
        })
        .collect()
}

/// The optimizer and schedule a finished run recorded beside its summary (what it trained with:
/// in a sweep, the chosen knobs).
fn recorded_setup(config: &serde_json::Value) -> Option<(serde_json::Value, serde_json::Value)> {
    Some((
        config.get("optimizer")?.clone(),
        config.get("scheduler")?.clone(),
    ))
}

fn summarise(
    arm: &ArmSpec,
    trained_with: Option<(serde_json::Value, serde_json::Value)>,
    seeds: Vec<u64>,
    summaries: &[RunSummary],
    curves: &[Vec<MetricsRecord>],
) -> ArmResult {
    let stat = |f: &dyn Fn(&RunSummary) -> f64| {
        (!summaries.is_empty()).then(|| MeanStd::of(&summaries.iter().map(f).collect::<Vec<_>>()))
    };
    let mean = |f: &dyn Fn(&RunSummary) -> f64| stat(f).map(|s| s.mean);
    let epoch_count = curves
        .iter()
        .map(|c| c.iter().filter(|r| r.kind == RecordKind::Eval).count())
        .min()
        .unwrap_or(0);
    let epochs = (1..=epoch_count)
        .map(|epoch| {
            let lines: Vec<&MetricsRecord> = curves
                .iter()
                .filter_map(|c| {
                    c.iter()
                        .find(|r| r.kind == RecordKind::Eval && r.round == epoch)
                })
                .collect();
            let spread = |f: &dyn Fn(&MetricsRecord) -> f64| {
                let values: Vec<f64> = lines.iter().map(|r| f(r)).collect();
                let (lo, hi) = values
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                (MeanStd::of(&values), lo, hi)
            };
            EpochPoint {
                epoch,
                wall_time_s: spread(&|r: &MetricsRecord| r.wall_time_s).0,
                train_loss: spread(&|r: &MetricsRecord| r.train_loss),
                eval_accuracy: spread(&|r: &MetricsRecord| {
                    r.eval_metric("accuracy").unwrap_or(f64::NAN)
                }),
            }
        })
        .collect();
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
        seeds,
        eval_split: summaries
            .first()
            .map_or(EvalSplit::default(), |s| s.final_eval.split),
        final_eval_accuracy: stat(&|s: &RunSummary| {
            s.final_eval.metric("accuracy").unwrap_or(f64::NAN)
        }),
        best_eval_accuracy: stat(&|s: &RunSummary| s.best_value),
        final_train_loss: stat(&|s: &RunSummary| s.final_train_loss),
        final_eval_loss: stat(&|s: &RunSummary| s.final_eval.loss),
        wall_time_s: stat(&|s: &RunSummary| s.wall_time_s),
        items_per_s: stat(&|s: &RunSummary| s.items_per_s),
        forward_passes_per_step: mean(&|s: &RunSummary| s.forward_passes_per_step),
        backward_passes_per_step: mean(&|s: &RunSummary| s.backward_passes_per_step),
        epochs,
    }
}

/// `results.md`: the spec, a table with one row per arm (pending arms included), the plots.
pub fn render_results(
    spec: &CompareSpec,
    spec_path: &Path,
    results: &[ArmResult],
    provenance: &str,
) -> String {
    let mut md = format!("# {}\n\n", spec.name);
    if !spec.description.is_empty() {
        md += &format!("{}\n\n", spec.description.trim());
    }
    md += &format!(
        "Generated by `ember compare {}` ({provenance}). Model `{}` {}; data `{}`{}{}{}; {} epochs, batch {}, device `{}`; seeds {:?}. Mean ± sample standard deviation over the finished seeds.\n\n",
        spec_path.display(),
        spec.model.kind(),
        serde_json::to_string(&spec.model).expect("specs serialise"),
        spec.data.dataset,
        spec.data.train_subset.map(|n| format!(", first {n} training images")).unwrap_or_default(),
        spec.data.test_subset.map(|n| format!(", {n} test images")).unwrap_or_default(),
        spec.data.pixel_noise.filter(|&s| s > 0.0).map(|s| format!(", pixel noise σ = {s}")).unwrap_or_default(),
        spec.train.epochs,
        spec.train.batch_size,
        spec.train.device,
        spec.seeds,
    );
    let split = results
        .iter()
        .find(|r| !r.seeds.is_empty())
        .map_or(EvalSplit::Test, |r| r.eval_split);
    md += &format!("| arm | seeds done | final {split} accuracy | best {split} accuracy | final train loss | final {split} loss | wall time (s) | train images/s | passes/step (fwd + bwd) |\n");
    md += "|---|---|---|---|---|---|---|---|---|\n";
    for r in results {
        if let Some(why) = &r.pending {
            md += &format!("| {} | – | pending: {why} | | | | | | |\n", r.name);
            continue;
        }
        let cell = |v: &Option<MeanStd>, f: &dyn Fn(&MeanStd) -> String| {
            v.as_ref().map(f).unwrap_or_else(|| "–".into())
        };
        let passes = match (r.forward_passes_per_step, r.backward_passes_per_step) {
            (Some(f), Some(b)) => format!("{f:.2} + {b:.2}"),
            _ => "–".into(),
        };
        md += &format!(
            "| {} | {}/{} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.seeds.len(),
            spec.seeds.len(),
            cell(&r.final_eval_accuracy, &|m| m.percent()),
            cell(&r.best_eval_accuracy, &|m| m.percent()),
            cell(&r.final_train_loss, &|m| m.plain(4)),
            cell(&r.final_eval_loss, &|m| m.plain(4)),
            cell(&r.wall_time_s, &|m| m.plain(1)),
            cell(&r.items_per_s, &|m| m.plain(1)),
            passes,
        );
    }
    md += "\nArms as their runs trained (every knob, defaults included):\n\n";
    for r in results {
        md += &format!(
            "- `{}`: {}\n",
            r.name,
            if r.setup.is_empty() {
                "–".to_string()
            } else {
                format!("`{}`", r.setup)
            }
        );
    }
    md += "\n";
    for (file, title) in PLOTS.iter().map(|(f, t, _, _)| (f, t)) {
        md += &format!("![{title}]({file})\n");
    }
    md
}

/// The plots of a report: file, title, x = wall time (else epoch), y = accuracy (else train loss).
const PLOTS: [(&str, &str, bool, bool); 4] = [
    (
        "test-accuracy-vs-epoch.png",
        "test accuracy vs epoch",
        false,
        true,
    ),
    (
        "train-loss-vs-epoch.png",
        "train loss vs epoch",
        false,
        false,
    ),
    (
        "test-accuracy-vs-wall.png",
        "test accuracy vs wall time",
        true,
        true,
    ),
    (
        "train-loss-vs-wall.png",
        "train loss vs wall time",
        true,
        false,
    ),
];

/// Writes the report's plots into `out`: one line per arm (mean over seeds), shaded min–max band.
/// Call it after `results.md` is written: a plot that cannot be drawn is logged as a warning and
/// left out of the returned list, never an error that loses the report.
pub fn write_plots(
    spec: &CompareSpec,
    results: &[ArmResult],
    out: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let ran: Vec<&ArmResult> = results.iter().filter(|r| !r.epochs.is_empty()).collect();
    if ran.is_empty() {
        return Ok(written);
    }
    for (file, title, wall, accuracy) in PLOTS {
        let mut plot = LinePlot::new(format!("{}: {title}", spec.name))
            .x_label(if wall { "wall time (s)" } else { "epoch" })
            .y_label(if accuracy {
                "test accuracy (%)"
            } else {
                "train loss"
            })
            .log_y(!accuracy)
            // Accuracy curves rise and loss curves fall: keep the legend off their ends.
            .legend(if accuracy {
                LegendPosition::LowerRight
            } else {
                LegendPosition::UpperRight
            });
        for r in &ran {
            let x = |p: &EpochPoint| {
                if wall {
                    p.wall_time_s.mean
                } else {
                    p.epoch as f64
                }
            };
            let (scale, pick): (f64, fn(&EpochPoint) -> Spread) = if accuracy {
                (100.0, |p| p.eval_accuracy)
            } else {
                (1.0, |p| p.train_loss)
            };
            let line = r
                .epochs
                .iter()
                .map(|p| (x(p), scale * pick(p).0.mean))
                .collect();
            let band = r
                .epochs
                .iter()
                .map(|p| {
                    let (_, lo, hi) = pick(p);
                    (x(p), scale * lo, scale * hi)
                })
                .collect();
            plot = plot.series(r.name.clone(), line).band(band);
        }
        let path = out.join(file);
        // results.md holds the numbers; a plot that cannot be drawn (no font, say) only warns.
        match plot.write(&path) {
            Ok(()) => written.push(path),
            Err(e) => tracing::warn!("plot {} not drawn: {e}", path.display()),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_show_the_spread_only_over_several_seeds() {
        assert_eq!(MeanStd::of(&[0.4, 0.5, 0.6]).percent(), "50.00 ± 10.00 %");
        assert_eq!(MeanStd::of(&[0.25]).percent(), "25.00 %");
        assert_eq!(MeanStd::of(&[1.0, 2.0]).plain(2), "1.50 ± 0.71");
    }
}
