//! Experiment specs (`experiments/*.toml`) and their reports: which arms to train for which seeds,
//! and, from the finished runs, `results.md` and plots with the spread over seeds.
//!
//! A spec names the model, data and schedule shared by all arms in typed fields, and each arm's
//! optimizer as the `ember train` flags that select it, so an arm means exactly what the same flags
//! mean on the command line:
//!
//! ```toml
//! name = "fashion-mnist-mlp"
//! description = "SGD vs VAMO on an MLP"
//! seeds = [0, 1]
//!
//! [model]
//! kind = "mlp"
//! args = "--hidden 256"
//!
//! [data]
//! dataset = "fashion-mnist"
//! data_dir = "/usr/share/datasets/fashion-mnist"
//! train_subset = 20000
//! pixel_noise = 0.1            # optional: fixed Gaussian noise on every image (0..1 units)
//!
//! [train]
//! epochs = 3
//! batch_size = 64
//!
//! [[arm]]
//! name = "sgd"
//! args = "--optimizer sgd --lr 0.05 --momentum 0"
//!
//! [[arm]]
//! name = "transformer-adamw"
//! pending = "needs TwoLayerTransformer (issue 4)"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{read_metrics, LegendPosition, LinePlot, MetricsRecord, RunDir, TrainSummary};

/// An experiment spec, as read from its TOML file. Unknown keys are errors, so a typo is named
/// instead of silently ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareSpec {
    /// Names the run folders (`<runs>/<name>/<arm>-s<seed>`); letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// One or two sentences for the report.
    #[serde(default)]
    pub description: String,
    /// Every arm runs once per seed.
    pub seeds: Vec<u64>,
    pub model: ModelSection,
    pub data: DataSection,
    pub train: TrainSection,
    #[serde(rename = "arm")]
    pub arms: Vec<ArmSpec>,
}

/// The model every arm trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `ember train --model` value (`cnn`, `mlp`).
    pub kind: String,
    /// Further model flags, e.g. `--widths 32,64,128` or `--hidden 256`.
    #[serde(default)]
    pub args: String,
}

/// The data every arm trains and is evaluated on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `ember train --dataset` value.
    pub dataset: String,
    /// `ember train --data-dir` value.
    #[serde(default)]
    pub data_dir: Option<String>,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    pub augment: Option<bool>,
    /// `ember train --pixel-noise` value: the standard deviation (0..1 intensity units) of the
    /// Gaussian noise added once to every train and test image; absent or 0 means none.
    pub pixel_noise: Option<f64>,
}

/// Epochs, batch sizes and device, shared by all arms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: Option<usize>,
    /// `ember train --device` value; `flex` when absent.
    #[serde(default = "default_device")]
    pub device: String,
    pub log_every: Option<usize>,
}

fn default_device() -> String {
    "flex".into()
}

/// One optimizer configuration to compare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    /// Names the arm in the report and its run folders.
    pub name: String,
    /// The `ember train` flags of this arm (optimizer, learning rate, schedule, knobs).
    #[serde(default)]
    pub args: String,
    /// Why this arm cannot run yet (e.g. its optimizer or model does not exist); it is listed in the
    /// report as pending instead of being dropped.
    pub pending: Option<String>,
}

/// A spec that cannot be used, naming the file, the field and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: `{field}`: {message}", path.display())]
pub struct CompareSpecError {
    pub path: PathBuf,
    pub field: String,
    pub message: String,
}

impl CompareSpec {
    /// Reads and checks the spec at `path`.
    pub fn load(path: &Path) -> Result<Self, CompareSpecError> {
        let fail = |field: &str, message: String| CompareSpecError {
            path: path.to_path_buf(),
            field: field.into(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail("<file>", e.to_string()))?;
        let spec: Self = toml::from_str(&text).map_err(|e| {
            // toml names the key and the line; keep its message whole.
            fail("<toml>", e.to_string().trim_end().to_string())
        })?;
        spec.validate()
            .map_err(|(field, message)| fail(&field, message))?;
        Ok(spec)
    }

    /// Checks what TOML's types cannot: names usable as folder names, unique arms and seeds, sizes.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, message: String| Err((field.to_string(), message));
        if !is_folder_name(&self.name) {
            return bad(
                "name",
                format!(
                    "`{}` must be a non-empty folder name (letters, digits, -, _, .)",
                    self.name
                ),
            );
        }
        if self.seeds.is_empty() {
            return bad("seeds", "needs at least one seed".into());
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != self.seeds.len() {
            return bad("seeds", format!("{:?} repeats a seed", self.seeds));
        }
        if let Some(sigma) = self.data.pixel_noise {
            if !(sigma.is_finite() && sigma >= 0.0) {
                return bad(
                    "data.pixel_noise",
                    format!("must be a finite standard deviation of at least 0, got {sigma}"),
                );
            }
        }
        if self.train.epochs == 0 {
            return bad("train.epochs", "must be at least 1".into());
        }
        if self.train.batch_size == 0 {
            return bad("train.batch_size", "must be at least 1".into());
        }
        for (field, value) in [
            ("train.eval_batch_size", self.train.eval_batch_size),
            ("train.log_every", self.train.log_every),
            ("data.train_subset", self.data.train_subset),
            ("data.test_subset", self.data.test_subset),
        ] {
            if value == Some(0) {
                return bad(field, "must be at least 1 when given".into());
            }
        }
        if let Err(e) = self.train.device.parse::<crate::DeviceChoice>() {
            return bad("train.device", e.to_string());
        }
        if let Err(e) = self.data.dataset.parse::<crate::DatasetSpec>() {
            return bad("data.dataset", e.to_string());
        }
        if self.arms.is_empty() {
            return bad("arm", "needs at least one [[arm]]".into());
        }
        for (i, arm) in self.arms.iter().enumerate() {
            if !is_folder_name(&arm.name) {
                return bad(
                    &format!("arm[{i}].name"),
                    format!(
                        "`{}` must be a non-empty folder name (letters, digits, -, _, .)",
                        arm.name
                    ),
                );
            }
            if self.arms[..i].iter().any(|a| a.name == arm.name) {
                return bad(
                    &format!("arm[{i}].name"),
                    format!("`{}` names two arms", arm.name),
                );
            }
            if arm.pending.is_none() && arm.args.trim().is_empty() {
                return bad(
                    &format!("arm[{i}].args"),
                    "an arm that is not pending needs its flags (at least --optimizer)".into(),
                );
            }
        }
        Ok(())
    }

    /// The arms that run (not pending).
    pub fn runnable_arms(&self) -> impl Iterator<Item = &ArmSpec> {
        self.arms.iter().filter(|a| a.pending.is_none())
    }

    /// The run folder of `arm` with `seed` under `runs_dir`.
    pub fn run_dir(&self, runs_dir: &Path, arm: &ArmSpec, seed: u64) -> RunDir {
        RunDir::new(
            runs_dir
                .join(&self.name)
                .join(format!("{}-s{seed}", arm.name)),
        )
    }

    /// Whether `run` finished with this spec's epoch count (`summary.json` written for it). A run
    /// that stopped early, or finished fewer epochs than the spec now asks for, is resumed instead;
    /// one that finished more is neither (see [`CompareSpec::finished_epochs`]).
    pub fn finished(&self, run: &RunDir) -> bool {
        self.finished_epochs(run) == Some(self.train.epochs)
    }

    /// The epochs `run` finished, if its `summary.json` says it finished. A run that finished more
    /// epochs than the spec asks for must not be resumed: that would rewrite its summary for a
    /// model trained longer than the spec says.
    pub fn finished_epochs(&self, run: &RunDir) -> Option<usize> {
        #[derive(Deserialize)]
        struct File {
            summary: TrainSummary,
        }
        std::fs::read(run.summary())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<File>(&bytes).ok())
            .map(|f| f.summary.epochs)
    }

    /// The `ember train` arguments (after `train`) of `arm` with `seed`, shared sections first so
    /// that an arm's own flags come last.
    pub fn train_args(&self, arm: &ArmSpec, seed: u64, runs_dir: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec!["--model".into(), self.model.kind.clone()];
        args.extend(self.model.args.split_whitespace().map(String::from));
        args.extend(["--dataset".into(), self.data.dataset.clone()]);
        if let Some(dir) = &self.data.data_dir {
            args.extend(["--data-dir".into(), dir.clone()]);
        }
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.extend([name.to_string(), value]);
            }
        };
        flag(
            "--train-subset",
            self.data.train_subset.map(|v| v.to_string()),
        );
        flag(
            "--test-subset",
            self.data.test_subset.map(|v| v.to_string()),
        );
        flag("--augment", self.data.augment.map(|v| v.to_string()));
        flag(
            "--pixel-noise",
            self.data.pixel_noise.map(|v| v.to_string()),
        );
        flag("--epochs", Some(self.train.epochs.to_string()));
        flag("--batch-size", Some(self.train.batch_size.to_string()));
        flag(
            "--eval-batch-size",
            self.train.eval_batch_size.map(|v| v.to_string()),
        );
        flag("--device", Some(self.train.device.clone()));
        flag("--log-every", self.train.log_every.map(|v| v.to_string()));
        flag("--seed", Some(seed.to_string()));
        let run = self.run_dir(runs_dir, arm, seed);
        let folder = run.root();
        flag(
            "--runs-dir",
            folder.parent().map(|p| p.display().to_string()),
        );
        flag(
            "--run-name",
            folder.file_name().map(|n| n.to_string_lossy().into_owned()),
        );
        args.extend(arm.args.split_whitespace().map(String::from));
        args
    }
}

fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Mean and sample standard deviation (0 for one value).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Self { mean, std, n }
    }

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
    pub test_accuracy: Spread,
}

/// What the report says about one arm.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmResult {
    pub name: String,
    pub args: String,
    /// Why it did not run, for a pending arm (the numbers are then absent).
    pub pending: Option<String>,
    /// Seeds whose run finished.
    pub seeds: Vec<u64>,
    pub final_test_accuracy: Option<MeanStd>,
    pub best_test_accuracy: Option<MeanStd>,
    pub final_train_loss: Option<MeanStd>,
    pub final_test_loss: Option<MeanStd>,
    pub wall_time_s: Option<MeanStd>,
    pub images_per_s: Option<MeanStd>,
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
            if arm.pending.is_none() {
                for &seed in &spec.seeds {
                    let run = spec.run_dir(runs_dir, arm, seed);
                    if !run.summary().exists() {
                        continue;
                    }
                    let fail = |path: &Path, message: String| ReportError {
                        path: path.to_path_buf(),
                        message,
                    };
                    let text = std::fs::read(run.summary())
                        .map_err(|e| fail(&run.summary(), e.to_string()))?;
                    #[derive(Deserialize)]
                    struct File {
                        summary: TrainSummary,
                    }
                    let file: File = serde_json::from_slice(&text)
                        .map_err(|e| fail(&run.summary(), format!("unreadable summary: {e}")))?;
                    if file.summary.epochs != spec.train.epochs {
                        tracing::warn!(
                            "{}: finished {} epochs, the spec asks for {}: left out of the report",
                            run.root().display(),
                            file.summary.epochs,
                            spec.train.epochs
                        );
                        continue;
                    }
                    let records = read_metrics(&run.metrics())
                        .map_err(|e| fail(&run.metrics(), e.to_string()))?;
                    summaries.push(file.summary);
                    curves.push(records);
                    seeds.push(seed);
                }
            }
            Ok(summarise(arm, seeds, &summaries, &curves))
        })
        .collect()
}

fn summarise(
    arm: &ArmSpec,
    seeds: Vec<u64>,
    summaries: &[TrainSummary],
    curves: &[Vec<MetricsRecord>],
) -> ArmResult {
    let stat = |f: &dyn Fn(&TrainSummary) -> f64| {
        (!summaries.is_empty()).then(|| MeanStd::of(&summaries.iter().map(f).collect::<Vec<_>>()))
    };
    let mean = |f: &dyn Fn(&TrainSummary) -> f64| stat(f).map(|s| s.mean);
    let epoch_count = curves
        .iter()
        .map(|c| c.iter().filter(|r| r.kind == "epoch").count())
        .min()
        .unwrap_or(0);
    let epochs = (1..=epoch_count)
        .map(|epoch| {
            let lines: Vec<&MetricsRecord> = curves
                .iter()
                .filter_map(|c| c.iter().find(|r| r.kind == "epoch" && r.epoch == epoch))
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
                test_accuracy: spread(&|r: &MetricsRecord| r.test_accuracy.unwrap_or(f64::NAN)),
            }
        })
        .collect();
    ArmResult {
        name: arm.name.clone(),
        args: arm.args.clone(),
        pending: arm.pending.clone(),
        seeds,
        final_test_accuracy: stat(&|s: &TrainSummary| s.final_test_accuracy),
        best_test_accuracy: stat(&|s: &TrainSummary| s.best_test_accuracy),
        final_train_loss: stat(&|s: &TrainSummary| s.final_train_loss),
        final_test_loss: stat(&|s: &TrainSummary| s.final_test_loss),
        wall_time_s: stat(&|s: &TrainSummary| s.wall_time_s),
        images_per_s: stat(&|s: &TrainSummary| s.train_images_per_s),
        forward_passes_per_step: mean(&|s: &TrainSummary| s.forward_passes_per_step),
        backward_passes_per_step: mean(&|s: &TrainSummary| s.backward_passes_per_step),
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
        spec.model.kind,
        spec.model.args,
        spec.data.dataset,
        spec.data.train_subset.map(|n| format!(", first {n} training images")).unwrap_or_default(),
        spec.data.test_subset.map(|n| format!(", {n} test images")).unwrap_or_default(),
        spec.data.pixel_noise.filter(|&s| s > 0.0).map(|s| format!(", pixel noise σ = {s}")).unwrap_or_default(),
        spec.train.epochs,
        spec.train.batch_size,
        spec.train.device,
        spec.seeds,
    );
    md += "| arm | seeds done | final test accuracy | best test accuracy | final train loss | final test loss | wall time (s) | train images/s | passes/step (fwd + bwd) |\n";
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
            cell(&r.final_test_accuracy, &|m| m.percent()),
            cell(&r.best_test_accuracy, &|m| m.percent()),
            cell(&r.final_train_loss, &|m| m.plain(4)),
            cell(&r.final_test_loss, &|m| m.plain(4)),
            cell(&r.wall_time_s, &|m| m.plain(1)),
            cell(&r.images_per_s, &|m| m.plain(1)),
            passes,
        );
    }
    md += "\nArm flags (on top of the shared model, data and training flags):\n\n";
    for r in results {
        md += &format!(
            "- `{}`: `{}`\n",
            r.name,
            if r.args.is_empty() { "–" } else { &r.args }
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
                (100.0, |p| p.test_accuracy)
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

    const SPEC: &str = r#"
name = "demo"
seeds = [0, 1]
[model]
kind = "cnn"
args = "--widths 8,16"
[data]
dataset = "generated"
train_subset = 128
[train]
epochs = 2
batch_size = 32
[[arm]]
name = "sgd"
args = "--optimizer sgd --lr 0.05"
[[arm]]
name = "later"
pending = "needs a model that does not exist yet"
"#;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("spec.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_spec_loads_and_becomes_train_flags() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CompareSpec::load(&write(dir.path(), SPEC)).unwrap();
        assert_eq!(spec.runnable_arms().count(), 1);
        let args = spec.train_args(&spec.arms[0], 1, Path::new("runs"));
        let joined = args.join(" ");
        assert_eq!(
            joined,
            "--model cnn --widths 8,16 --dataset generated --train-subset 128 --epochs 2 \
             --batch-size 32 --device flex --seed 1 --runs-dir runs/demo --run-name sgd-s1 \
             --optimizer sgd --lr 0.05"
        );
        let noisy = SPEC.replace(
            "train_subset = 128",
            "train_subset = 128\npixel_noise = 0.3",
        );
        let spec = CompareSpec::load(&write(dir.path(), &noisy)).unwrap();
        let joined = spec
            .train_args(&spec.arms[0], 1, Path::new("runs"))
            .join(" ");
        assert!(
            joined.contains("--train-subset 128 --pixel-noise 0.3 --epochs 2"),
            "{joined}"
        );
    }

    #[test]
    fn bad_specs_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (SPEC.replace("epochs = 2", "epoch = 2"), "epoch"),
            (SPEC.replace("seeds = [0, 1]", "seeds = [0, 0]"), "seeds"),
            (
                SPEC.replace("name = \"later\"", "name = \"sgd\""),
                "arm[1].name",
            ),
            (SPEC.replace("name = \"demo\"", "name = \"a/b\""), "name"),
            (
                SPEC.replace(
                    "train_subset = 128",
                    "train_subset = 128\npixel_noise = -0.1",
                ),
                "data.pixel_noise",
            ),
            (
                SPEC.replace("batch_size = 32", "batch_size = -1"),
                "batch_size",
            ),
            (
                SPEC.replace("args = \"--optimizer sgd --lr 0.05\"", ""),
                "arm[0].args",
            ),
        ];
        for (text, field) in cases {
            let err = CompareSpec::load(&write(dir.path(), &text)).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("spec.toml"), "{message}");
            assert!(message.contains(field), "expected `{field}` in: {message}");
        }
        let err = CompareSpec::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(err.to_string().contains("missing.toml"));
    }

    #[test]
    fn mean_and_sample_deviation() {
        let m = MeanStd::of(&[0.4, 0.5, 0.6]);
        assert!((m.mean - 0.5).abs() < 1e-12);
        assert!((m.std - 0.1).abs() < 1e-12);
        assert_eq!(MeanStd::of(&[0.3]).std, 0.0);
        assert_eq!(m.percent(), "50.00 ± 10.00 %");
    }
}
