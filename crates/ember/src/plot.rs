//! `ember plot`: one metric of several runs in one chart, read from their `metrics.jsonl`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ember_lab::{LegendPosition, LinePlot, PlotFormat};
use ember_train::{read_metrics_file, EvalSplit, MetricsRecord, RecordKind, RunDir};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum XAxis {
    /// Optimizer steps.
    Step,
    /// Rounds: epochs (image classification) or evaluation intervals (a step budget).
    #[value(alias = "round")]
    Epoch,
    /// Training wall time, seconds.
    Wall,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum YAxis {
    /// Mean training loss (per logged interval; per epoch with --x epoch).
    #[value(alias = "train-loss")]
    TrainLoss,
    /// Accuracy of each round's evaluation (test or validation split), in percent.
    #[value(name = "accuracy", alias = "test_accuracy", alias = "test-accuracy")]
    Accuracy,
    /// Loss of each round's evaluation (test or validation split).
    #[value(name = "eval_loss", alias = "test_loss", alias = "test-loss")]
    EvalLoss,
    /// Learning rate (of the last step of each logged interval).
    Lr,
}

/// Options of `ember plot`.
#[derive(Args, Debug, Clone)]
pub struct PlotArgs {
    /// Runs to plot, comma separated: run folders holding metrics.jsonl, or metrics files.
    #[arg(long, value_delimiter = ',', required = true)]
    pub runs: Vec<PathBuf>,
    /// Legend labels, comma separated, one per run [default: the folder's or file's name].
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Horizontal axis.
    #[arg(long, value_enum, default_value_t = XAxis::Epoch)]
    pub x: XAxis,
    /// Vertical axis.
    #[arg(long, value_enum, default_value_t = YAxis::Accuracy)]
    pub y: YAxis,
    /// Output file: .png or .svg.
    #[arg(long)]
    pub out: PathBuf,
    /// Chart title [default: "<y> vs <x>"].
    #[arg(long)]
    pub title: Option<String>,
    /// Logarithmic horizontal axis.
    #[arg(long)]
    pub log_x: bool,
    /// Logarithmic vertical axis.
    #[arg(long)]
    pub log_y: bool,
}

impl XAxis {
    fn label(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Epoch => "epoch",
            XAxis::Wall => "wall time (s)",
        }
    }

    fn value(self, r: &MetricsRecord) -> f64 {
        match self {
            XAxis::Step => r.step as f64,
            XAxis::Epoch => r.round as f64,
            XAxis::Wall => r.wall_time_s,
        }
    }
}

impl YAxis {
    fn label(self) -> &'static str {
        match self {
            YAxis::TrainLoss => "train loss",
            YAxis::Accuracy => "accuracy (%)",
            YAxis::EvalLoss => "evaluation loss",
            YAxis::Lr => "learning rate",
        }
    }

    fn value(self, r: &MetricsRecord) -> Option<f64> {
        match self {
            YAxis::TrainLoss => Some(r.train_loss),
            YAxis::Accuracy => r.eval_metric("accuracy").map(|a| 100.0 * a),
            YAxis::EvalLoss => r.eval.as_ref().map(|e| e.loss),
            YAxis::Lr => Some(r.lr),
        }
    }
}

/// The metrics of a run folder (legacy lines get the split its config names), or of a metrics
/// file on its own.
fn read_run(run: &Path) -> Result<Vec<MetricsRecord>, ember_train::RunFileError> {
    if run.is_dir() {
        RunDir::new(run).read_metrics()
    } else {
        read_metrics_file(run, EvalSplit::Test)
    }
}

/// A run's default label: its folder's name, or the file name without `.jsonl` / `.metrics.jsonl`.
fn default_label(run: &Path) -> String {
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| run.display().to_string());
    if run.is_dir() {
        return name;
    }
    let name = name.strip_suffix(".jsonl").unwrap_or(&name);
    name.strip_suffix(".metrics").unwrap_or(name).to_string()
}

/// The points of one run: evaluation lines for evaluation metrics and for `--x epoch`, step lines
/// otherwise (evaluation lines if a run logged no step lines).
fn points(records: &[MetricsRecord], x: XAxis, y: YAxis) -> Vec<(f64, f64)> {
    let per_round = x == XAxis::Epoch
        || matches!(y, YAxis::Accuracy | YAxis::EvalLoss)
        || !records.iter().any(|r| r.kind == RecordKind::Step);
    let kind = if per_round {
        RecordKind::Eval
    } else {
        RecordKind::Step
    };
    records
        .iter()
        .filter(|r| r.kind == kind)
        .filter_map(|r| y.value(r).map(|v| (x.value(r), v)))
        .collect()
}

pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    PlotFormat::from_path(&args.out)?; // before reading anything
    if !args.labels.is_empty() && args.labels.len() != args.runs.len() {
        bail!(
            "--labels has {} entries but --runs has {}: give one label per run or none",
            args.labels.len(),
            args.runs.len()
        );
    }
    let title = args
        .title
        .clone()
        .unwrap_or_else(|| format!("{} vs {}", args.y.label(), args.x.label()));
    let mut plot = LinePlot::new(title)
        .x_label(args.x.label())
        .y_label(args.y.label())
        .log_x(args.log_x)
        .log_y(args.log_y)
        .legend(match args.y {
            YAxis::Accuracy => LegendPosition::LowerRight,
            _ => LegendPosition::UpperRight,
        });
    for (i, run) in args.runs.iter().enumerate() {
        let records = read_run(run).with_context(|| format!("reading {}", run.display()))?;
        let label = args
            .labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| default_label(run));
        plot = plot.series(label, points(&records, args.x, args.y));
    }
    plot.write(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: RecordKind, step: u64, round: usize, accuracy: Option<f64>) -> MetricsRecord {
        MetricsRecord {
            kind,
            step,
            round,
            train_loss: 2.0 / step as f64,
            eval: accuracy.map(|a| ember_train::Evaluation {
                split: EvalSplit::Test,
                loss: 1.0 - a,
                metrics: [("accuracy".to_string(), a)].into(),
            }),
            lr: 0.1,
            wall_time_s: step as f64 * 0.5,
            items_per_s: 100.0,
            forward_passes: Some(1.0),
            backward_passes: Some(1.0),
            diagnostics: Default::default(),
        }
    }

    #[test]
    fn picks_epoch_or_step_lines_by_metric_and_axis() {
        let records = vec![
            record(RecordKind::Step, 10, 1, None),
            record(RecordKind::Step, 20, 1, None),
            record(RecordKind::Eval, 20, 1, Some(0.5)),
            record(RecordKind::Step, 30, 2, None),
            record(RecordKind::Eval, 40, 2, Some(0.625)),
        ];
        assert_eq!(
            points(&records, XAxis::Epoch, YAxis::Accuracy),
            vec![(1.0, 50.0), (2.0, 62.5)]
        );
        assert_eq!(
            points(&records, XAxis::Step, YAxis::TrainLoss),
            vec![(10.0, 0.2), (20.0, 0.1), (30.0, 2.0 / 30.0)]
        );
        assert_eq!(
            points(&records, XAxis::Wall, YAxis::EvalLoss),
            vec![(10.0, 0.5), (20.0, 0.375)]
        );
        assert_eq!(
            points(&records, XAxis::Epoch, YAxis::Lr),
            vec![(1.0, 0.1), (2.0, 0.1)]
        );
    }

    #[test]
    fn labels_default_to_the_run_name() {
        assert_eq!(
            default_label(Path::new("x/plrs-s0.metrics.jsonl")),
            "plrs-s0"
        );
        assert_eq!(default_label(Path::new("x/other.jsonl")), "other");
    }
}
