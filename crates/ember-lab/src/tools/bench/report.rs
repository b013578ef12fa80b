//! The benchmark report: what was measured (serialised as JSON) and its Markdown rendering, a pure
//! function of the report so that it can be tested without timing anything.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::report::markdown::Table;
use crate::report::stats::MedianRange;

/// Summary of one measurement's timed steps, in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Median {
    /// The median step time.
    pub median_s: f64,
    /// The fastest step.
    pub min_s: f64,
    /// The slowest step.
    pub max_s: f64,
}

impl Median {
    /// The median (mean of the middle two for an even count), minimum and maximum of `times`.
    ///
    /// # Panics
    ///
    /// On an empty `times`; the command line refuses `--steps 0`.
    pub fn of(times: Vec<f64>) -> Self {
        let range = MedianRange::of(times).expect("no timed steps");
        Self {
            median_s: range.median,
            min_s: range.min,
            max_s: range.max,
        }
    }
}

/// A model as the report names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model's type name, e.g. `SmallCnn`.
    pub name: String,
    /// Parameters the optimizers update (BatchNorm running statistics excluded).
    pub trainable_params: usize,
}

/// The update of one per-parameter optimizer (gradients given, untimed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateRow {
    /// The device measured, as `--devices` names it.
    pub device: String,
    /// The model's type name.
    pub model: String,
    /// The optimizer's name, with its update interval for the Shampoos (`if-shampoo (T = 1)`).
    pub optimizer: String,
    /// Time of one update.
    pub step: Median,
    /// Median update time divided by Adam's, measured round-robin in the same process.
    pub relative_to_adam: f64,
    /// Serialised optimizer state (burnpack, names included) per trainable parameter.
    pub state_bytes_per_param: f64,
}

/// A whole training step (every forward and backward pass the optimizer asks for, and its
/// update) of a closure optimizer, or of the Adam baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WholeStepRow {
    /// The device measured, as `--devices` names it.
    pub device: String,
    /// The model's type name.
    pub model: String,
    /// The optimizer's name.
    pub optimizer: String,
    /// The per-parameter optimizer a closure optimizer steps with; `None` for the baseline.
    pub base: Option<String>,
    /// Time of one whole step.
    pub step: Median,
    /// Median step time divided by Adam's whole step (forward, backward, update), measured
    /// round-robin in the same process.
    pub relative_to_adam: f64,
    /// Forward passes per timed step, as the objective counted them.
    pub forward_per_step: f64,
    /// Backward passes per timed step.
    pub backward_per_step: f64,
    /// Forward passes of the untimed start-of-epoch snapshot (SVRG, VAMO; 0 for the others).
    pub snapshot_forward: u64,
    /// Backward passes of that snapshot.
    pub snapshot_backward: u64,
}

/// End-to-end training throughput: batch assembly (crop + flip, normalisation, upload), forward,
/// backward and Adam update, as `ember train` runs them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndToEndRow {
    /// The device measured, as `--devices` names it.
    pub device: String,
    /// The model's type name.
    pub model: String,
    /// The optimizer's name.
    pub optimizer: String,
    /// Time of one training step, batch assembly included.
    pub step: Median,
    /// The same step on a batch already on the device (forward, backward, update), timed
    /// round-robin with `step`; absent from reports written before it was measured.
    #[serde(default)]
    pub compute_only: Option<Median>,
    /// Batch size divided by the median step time.
    pub images_per_s: f64,
    /// `images_per_s` divided by the first device's on the same model.
    pub relative_to_first_device: f64,
}

/// A device column the report shows without a measurement, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotMeasured {
    /// The device's column heading, e.g. `wgpu (GPU)`.
    pub device: String,
    /// Why it was not measured.
    pub reason: String,
}

/// Everything one `ember bench` invocation measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The commit measured (`EMBER_COMMIT`, else `git describe --always --dirty`, else
    /// "unknown").
    pub ember_commit: String,
    /// UTC date of the run, `YYYY-MM-DD`.
    pub date: String,
    /// Devices measured, in the order of the columns.
    pub devices: Vec<String>,
    /// Devices shown without a measurement, each with the reason.
    pub not_measured: Vec<NotMeasured>,
    /// CPU threads available to the process.
    pub threads: usize,
    /// The machine's 1-minute load average when the measurements started and ended (Linux only):
    /// other processes slow every absolute time, far less the round-robin ratios.
    pub load_average: Option<[f64; 2]>,
    /// Images per step.
    pub batch_size: usize,
    /// Timed steps per measurement.
    pub steps: usize,
    /// Untimed warm-up steps before them.
    pub warmup: usize,
    /// Batches in the full data of snapshot methods.
    pub full_data_batches: usize,
    /// The models timed, with their trainable parameter counts.
    pub models: Vec<ModelInfo>,
    /// The `ember` arguments that produced this report.
    pub command: String,
    /// Per-parameter optimizers' updates, per device and model.
    pub updates: Vec<UpdateRow>,
    /// Closure optimizers' whole steps (and Adam's), per device and model.
    pub whole_steps: Vec<WholeStepRow>,
    /// End-to-end training throughput, per device and model.
    pub end_to_end: Vec<EndToEndRow>,
    /// PyTorch's updates on SmallCnn on the same machine (experiments/kronecker-speed/anchor.py),
    /// shown beside Ember's.
    #[serde(default)]
    pub anchor: Option<Anchor>,
}

/// The update times of torch's Adam and the authors' `sirfshampoo` on SmallCnn, as
/// `experiments/kronecker-speed/anchor.py --json` writes them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    /// torch's version.
    pub torch: String,
    /// torch's CPU threads.
    pub threads: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Timed updates per optimizer.
    pub steps: usize,
    /// Untimed updates before them.
    pub warmup: usize,
    /// Parameters of torch's SmallCnn.
    pub parameters: usize,
    /// Median update time per optimizer label (`adam (torch)`, `sirfshampoo (T = 1)`, …), ms.
    pub updates_ms: std::collections::BTreeMap<String, f64>,
}

impl Anchor {
    /// The model the anchor times: Ember's SmallCnn, which it rebuilds layer for layer.
    pub const MODEL: &'static str = "SmallCnn";

    /// The anchor's counterpart of Ember's optimizer `label`, and its median update (seconds).
    pub fn counterpart(&self, label: &str) -> Option<(&str, f64)> {
        let theirs = match label {
            "adam" => "adam (torch)",
            "if-shampoo (T = 1)" => "sirfshampoo (T = 1)",
            "if-shampoo (T = 2)" => "sirfshampoo (T = 2)",
            _ => return None,
        };
        let (name, ms) = self.updates_ms.get_key_value(theirs)?;
        Some((name.as_str(), ms / 1e3))
    }
}

/// A duration in the unit that keeps three significant digits readable.
pub fn format_time(seconds: f64) -> String {
    if seconds < 0.01 {
        format!("{:.2} ms", 1e3 * seconds)
    } else if seconds < 1.0 {
        format!("{:.1} ms", 1e3 * seconds)
    } else {
        format!("{seconds:.2} s")
    }
}

/// A pass count: whole numbers as such, averages to two decimals.
fn format_count(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// `items` without repeats, in order of first appearance.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

impl BenchReport {
    fn model_heading(&self, model: &str) -> String {
        match self.models.iter().find(|m| m.name == model) {
            Some(m) => format!(
                "### {} ({} trainable parameters)\n\n",
                m.name,
                thousands(m.trainable_params)
            ),
            None => format!("### {model}\n\n"),
        }
    }

    /// One header cell per measured device and per unmeasured one, for each of `what`.
    fn device_headers(&self, what: &[&str]) -> Vec<String> {
        let mut cells = Vec::new();
        for device in &self.devices {
            cells.extend(what.iter().map(|w| format!("{device} {w}")));
        }
        for missing in &self.not_measured {
            cells.push(missing.device.clone());
        }
        cells
    }

    /// The cells of one row for every device, `cells_of` giving a measured device's cells
    /// (`None`: no row for it), `width` of them.
    fn device_cells<T>(
        &self,
        width: usize,
        find: impl Fn(&str) -> Option<T>,
        cells_of: impl Fn(&T) -> Vec<String>,
    ) -> Vec<String> {
        let mut cells = Vec::new();
        for device in &self.devices {
            match find(device) {
                Some(found) => cells.extend(cells_of(&found)),
                None => cells.extend(std::iter::repeat_n("–".to_string(), width)),
            }
        }
        for missing in &self.not_measured {
            cells.push(missing.reason.clone());
        }
        cells
    }

    fn render_updates(&self, out: &mut String) {
        out.push_str("## Optimizer update, relative to Adam\n\n");
        out.push_str(
            "The update alone (`ModuleOptimizer::step` on given gradients of one batch; the forward \
             and backward passes are not timed), every optimizer timed round-robin. State: the \
             optimizer's serialised state per trainable parameter (4 bytes = one f32 per \
             parameter).\n\n",
        );
        if let Some(a) = &self.anchor {
            let _ = write!(
                out,
                "PyTorch columns (SmallCnn): torch {}'s Adam and the authors' `sirfshampoo` 0.0.1, \
                 timed by `experiments/kronecker-speed/anchor.py` on this machine just before this \
                 report (batch {}, {} threads, median of {} updates after {} warm-up ones); \
                 × PyTorch divides the first device's update by it. Two processes, so that ratio \
                 carries the machine's drift between them; the × Adam ratios do not.\n\n",
                a.torch, a.batch_size, a.threads, a.steps, a.warmup
            );
        }
        for model in distinct(self.updates.iter().map(|r| r.model.as_str())) {
            out.push_str(&self.model_heading(model));
            let anchor = self.anchor.as_ref().filter(|_| model == Anchor::MODEL);
            let mut cells = vec!["optimizer".to_string()];
            cells.extend(self.device_headers(&["update", "× Adam"]));
            if anchor.is_some() {
                cells.extend(["PyTorch".to_string(), "× PyTorch".to_string()]);
            }
            cells.push("state bytes/param".into());
            let mut table = Table::new(cells);
            let rows: Vec<&UpdateRow> = self.updates.iter().filter(|r| r.model == model).collect();
            for optimizer in distinct(rows.iter().map(|r| r.optimizer.as_str())) {
                let of = |device: &str| {
                    rows.iter()
                        .find(|r| r.optimizer == optimizer && r.device == device)
                        .copied()
                };
                let mut cells = vec![format!("`{optimizer}`")];
                cells.extend(self.device_cells(2, of, |r| {
                    vec![
                        format_time(r.step.median_s),
                        format!("{:.2}", r.relative_to_adam),
                    ]
                }));
                if let Some(anchor) = anchor {
                    let first = of(&self.devices[0]);
                    cells.extend(match (anchor.counterpart(optimizer), first) {
                        (Some((name, theirs)), Some(mine)) => [
                            format!("{} (`{name}`)", format_time(theirs)),
                            format!("{:.2}", mine.step.median_s / theirs),
                        ],
                        _ => ["–".into(), "–".into()],
                    });
                }
                let state = rows.iter().find(|r| r.optimizer == optimizer);
                cells.push(state.map_or("–".into(), |r| format!("{:.2}", r.state_bytes_per_param)));
                table.row(cells);
            }
            out.push_str(&table.render());
            out.push('\n');
        }
    }

    fn render_whole_steps(&self, out: &mut String) {
        out.push_str("## Whole training step of the closure optimizers, relative to Adam's\n\n");
        let _ = write!(
            out,
            "A closure optimizer's step runs its own forward and backward passes, so the whole \
             step is timed (passes and update) against Adam's whole step (one forward, one \
             backward, Adam's update), all timed round-robin on the same batch. Passes per step \
             are counted by the objective; in parentheses, the base optimizer that applies the \
             closure optimizer's direction, with its default knobs. SVRG and VAMO first take an \
             untimed snapshot over {} full-data batches (once per epoch in training).\n\n",
            self.full_data_batches
        );
        for model in distinct(self.whole_steps.iter().map(|r| r.model.as_str())) {
            out.push_str(&self.model_heading(model));
            let mut cells = vec!["optimizer".to_string()];
            cells.extend(self.device_headers(&["step", "× Adam step"]));
            cells.push("passes/step (fwd + bwd)".into());
            cells.push("snapshot passes (fwd + bwd)".into());
            let mut table = Table::new(cells);
            let rows: Vec<&WholeStepRow> = self
                .whole_steps
                .iter()
                .filter(|r| r.model == model)
                .collect();
            for optimizer in distinct(rows.iter().map(|r| r.optimizer.as_str())) {
                let of = |device: &str| {
                    rows.iter()
                        .find(|r| r.optimizer == optimizer && r.device == device)
                        .copied()
                };
                let first = rows.iter().find(|r| r.optimizer == optimizer);
                let label = match first.and_then(|r| r.base.as_deref()) {
                    Some(base) => format!("`{optimizer}` ({base})"),
                    None => format!("`{optimizer}`"),
                };
                let mut cells = vec![label];
                cells.extend(self.device_cells(2, of, |r| {
                    vec![
                        format_time(r.step.median_s),
                        format!("{:.2}", r.relative_to_adam),
                    ]
                }));
                cells.push(first.map_or("–".into(), |r| {
                    format!(
                        "{} + {}",
                        format_count(r.forward_per_step),
                        format_count(r.backward_per_step)
                    )
                }));
                cells.push(match first {
                    Some(r) if r.snapshot_forward + r.snapshot_backward > 0 => {
                        format!("{} + {}", r.snapshot_forward, r.snapshot_backward)
                    }
                    _ => "–".into(),
                });
                table.row(cells);
            }
            out.push_str(&table.render());
            out.push('\n');
        }
    }

    fn render_end_to_end(&self, out: &mut String) {
        out.push_str("## End-to-end training throughput\n\n");
        out.push_str(
            "One training step as `ember train` runs it with Adam: batch assembly (crop + flip, \
             normalisation), forward, backward, update. Images/s = batch size / median step time. \
             Compute only: the same step on a batch already on the device, timed round-robin with \
             it; the data path's share is `1 − compute only / step`.\n\n",
        );
        // A ratio column once there are devices to compare.
        let relative = match self.devices.as_slice() {
            [first, _, ..] => Some(format!("× {first}")),
            _ => None,
        };
        let mut what = vec!["images/s", "step", "compute only", "data share"];
        what.extend(relative.as_deref());
        let mut cells = vec!["model".to_string()];
        cells.extend(self.device_headers(&what));
        let mut table = Table::new(cells);
        for model in distinct(self.end_to_end.iter().map(|r| r.model.as_str())) {
            let of = |device: &str| {
                self.end_to_end
                    .iter()
                    .find(|r| r.model == model && r.device == device)
            };
            let mut cells = vec![model.to_string()];
            cells.extend(self.device_cells(what.len(), of, |r| {
                let mut cells = vec![
                    format!("{:.1}", r.images_per_s),
                    format_time(r.step.median_s),
                ];
                cells.extend(match &r.compute_only {
                    Some(c) => [
                        format_time(c.median_s),
                        format!("{:.0}%", 100.0 * (1.0 - c.median_s / r.step.median_s)),
                    ],
                    None => ["–".into(), "–".into()],
                });
                if relative.is_some() {
                    cells.push(format!("{:.3}", r.relative_to_first_device));
                }
                cells
            }));
            table.row(cells);
        }
        out.push_str(&table.render());
        out.push('\n');
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The report as Markdown: a header naming the commit, devices and settings, then one table per
/// model for the per-parameter updates and for the closure optimizers' whole steps, then the
/// end-to-end throughput. Sections without rows are left out.
pub fn render_markdown(report: &BenchReport) -> String {
    let mut out = String::from("# Ember benchmarks\n\n");
    let _ = write!(
        out,
        "Measured by `ember bench` on {}, ember commit `{}`. Devices: {}; {} CPU threads; batches \
         of {} generated CIFAR-shaped images (3×32×32, 10 classes); median of {} timed steps \
         after {} warm-up steps. Every ratio compares timings taken round-robin in one process, \
         so a busy machine slows both sides alike.\n\n",
        report.date,
        report.ember_commit,
        report
            .devices
            .iter()
            .map(|d| format!("`{d}`"))
            .collect::<Vec<_>>()
            .join(", "),
        report.threads,
        report.batch_size,
        report.steps,
        report.warmup,
    );
    if let Some([start, end]) = report.load_average {
        let _ = writeln!(
            out,
            "Machine load (1-minute load average) {start:.2} at the start and {end:.2} at the end, \
             on {} threads: absolute times vary with it, the ratios much less.\n",
            report.threads
        );
    }
    for missing in &report.not_measured {
        let _ = writeln!(out, "**{}: {}.**\n", missing.device, missing.reason);
    }
    let _ = writeln!(
        out,
        "Reproduce: `EMBER_COMMIT=$(git rev-parse --short HEAD) cargo run --release -p ember -- {}`\n",
        report.command
    );
    if !report.updates.is_empty() {
        report.render_updates(&mut out);
    }
    if !report.whole_steps.is_empty() {
        report.render_whole_steps(&mut out);
    }
    if !report.end_to_end.is_empty() {
        report.render_end_to_end(&mut out);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(median_s: f64) -> Median {
        Median {
            median_s,
            min_s: median_s,
            max_s: median_s,
        }
    }

    fn update(optimizer: &str, median_s: f64, ratio: f64, state: f64) -> UpdateRow {
        UpdateRow {
            device: "flex".into(),
            model: "SmallCnn".into(),
            optimizer: optimizer.into(),
            step: timing(median_s),
            relative_to_adam: ratio,
            state_bytes_per_param: state,
        }
    }

    fn whole(
        optimizer: &str,
        base: Option<&str>,
        median_s: f64,
        passes: (f64, f64),
    ) -> WholeStepRow {
        WholeStepRow {
            device: "flex".into(),
            model: "SmallCnn".into(),
            optimizer: optimizer.into(),
            base: base.map(Into::into),
            step: timing(median_s),
            relative_to_adam: median_s / 0.5,
            forward_per_step: passes.0,
            backward_per_step: passes.1,
            snapshot_forward: if optimizer == "svrg" { 4 } else { 0 },
            snapshot_backward: if optimizer == "svrg" { 4 } else { 0 },
        }
    }

    fn small_report() -> BenchReport {
        BenchReport {
            ember_commit: "abc1234".into(),
            date: "2026-11-23".into(),
            devices: vec!["flex".into()],
            not_measured: vec![NotMeasured {
                device: "wgpu (GPU)".into(),
                reason: "not measured: no GPU this session".into(),
            }],
            threads: 2,
            load_average: Some([1.5, 2.25]),
            batch_size: 64,
            steps: 20,
            warmup: 3,
            full_data_batches: 4,
            models: vec![ModelInfo {
                name: "SmallCnn".into(),
                trainable_params: 288_746,
            }],
            command: "bench report --devices flex".into(),
            updates: vec![
                update("adam", 0.003, 1.0, 8.03),
                update("if-shampoo", 0.0255, 8.5, 12.346),
            ],
            whole_steps: vec![
                whole("adam", None, 0.5, (1.0, 1.0)),
                whole("gam", Some("sgd"), 2.0, (4.0, 4.0)),
                whole("svrg", Some("sgd"), 1.0, (2.0, 2.0)),
                whole("zo-sgd", Some("sgd"), 0.25, (2.5, 0.0)),
            ],
            end_to_end: vec![EndToEndRow {
                device: "flex".into(),
                model: "SmallCnn".into(),
                optimizer: "adam".into(),
                step: timing(0.5),
                compute_only: Some(timing(0.4)),
                images_per_s: 128.0,
                relative_to_first_device: 1.0,
            }],
            anchor: None,
        }
    }

    #[test]
    fn markdown_names_the_run_and_formats_every_table() {
        let md = render_markdown(&small_report());
        assert!(md.contains("ember commit `abc1234`"), "{md}");
        assert!(md.contains("on 2026-11-23"), "{md}");
        assert!(
            md.contains("1.50 at the start and 2.25 at the end, on 2 threads"),
            "{md}"
        );
        assert!(
            md.contains("Devices: `flex`; 2 CPU threads; batches of 64"),
            "{md}"
        );
        assert!(
            md.contains("**wgpu (GPU): not measured: no GPU this session.**"),
            "{md}"
        );
        assert!(md.contains("-- bench report --devices flex`"), "{md}");
        assert!(
            md.contains("### SmallCnn (288,746 trainable parameters)"),
            "{md}"
        );
        assert!(md.contains(
            "| optimizer | flex update | flex × Adam | wgpu (GPU) | state bytes/param |\n\
             |---|---|---|---|---|\n"
        ));
        assert!(
            md.contains("| `adam` | 3.00 ms | 1.00 | not measured: no GPU this session | 8.03 |\n")
        );
        assert!(md.contains(
            "| `if-shampoo` | 25.5 ms | 8.50 | not measured: no GPU this session | 12.35 |\n"
        ));
        assert!(md.contains(
            "| `gam` (sgd) | 2.00 s | 4.00 | not measured: no GPU this session | 4 + 4 | – |\n"
        ));
        assert!(md.contains(
            "| `svrg` (sgd) | 1.00 s | 2.00 | not measured: no GPU this session | 2 + 2 | 4 + 4 |\n"
        ));
        assert!(md.contains(
            "| `zo-sgd` (sgd) | 250.0 ms | 0.50 | not measured: no GPU this session | 2.50 + 0 | – |\n"
        ));
        assert!(
            md.contains(
                "| SmallCnn | 128.0 | 500.0 ms | 400.0 ms | 20% | not measured: no GPU this session |\n"
            ),
            "{md}"
        );
        assert!(!md.ends_with("\n\n"));
    }

    #[test]
    fn sections_without_rows_are_left_out_and_missing_devices_show_a_dash() {
        let mut report = small_report();
        report.whole_steps.clear();
        report.not_measured.clear();
        report.devices.push("ndarray".into());
        report.end_to_end.push(EndToEndRow {
            device: "ndarray".into(),
            step: timing(16.0),
            compute_only: None,
            images_per_s: 4.0,
            relative_to_first_device: 4.0 / 128.0,
            ..report.end_to_end[0].clone()
        });
        let md = render_markdown(&report);
        assert!(!md.contains("Whole training step"));
        assert!(md.contains(
            "| model | flex images/s | flex step | flex compute only | flex data share | flex × flex | ndarray images/s | ndarray step | ndarray compute only | ndarray data share | ndarray × flex |\n"
        ), "{md}");
        assert!(
            md.contains(
                "| SmallCnn | 128.0 | 500.0 ms | 400.0 ms | 20% | 1.000 | 4.0 | 16.00 s | – | – | 0.031 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `adam` | 3.00 ms | 1.00 | – | – | 8.03 |\n"),
            "{md}"
        );
        report.end_to_end.clear();
        assert!(!render_markdown(&report).contains("End-to-end"));
    }

    #[test]
    fn anchor_columns_sit_beside_the_first_device_on_smallcnn() {
        let mut report = small_report();
        report.anchor = Some(Anchor {
            torch: "2.15.0".into(),
            threads: 2,
            batch_size: 64,
            steps: 10,
            warmup: 2,
            parameters: 288_746,
            updates_ms: [("adam (torch)".to_string(), 6.0)].into_iter().collect(),
        });
        let md = render_markdown(&report);
        assert!(md.contains("torch 2.15.0's Adam"), "{md}");
        assert!(md.contains(
            "| optimizer | flex update | flex × Adam | wgpu (GPU) | PyTorch | × PyTorch | state bytes/param |\n"
        ), "{md}");
        // Ember's Adam 3.00 ms against torch's 6.00 ms; IF-Shampoo's counterpart is not measured.
        assert!(md.contains(
            "| `adam` | 3.00 ms | 1.00 | not measured: no GPU this session | 6.00 ms (`adam (torch)`) | 0.50 | 8.03 |\n"
        ), "{md}");
        assert!(
            md.contains(
                "| `if-shampoo` | 25.5 ms | 8.50 | not measured: no GPU this session | – | – |"
            ),
            "{md}"
        );
    }

    #[test]
    fn medians_and_units() {
        assert_eq!(Median::of(vec![3.0, 1.0, 2.0]).median_s, 2.0);
        let even = Median::of(vec![4.0, 1.0, 2.0, 3.0]);
        assert_eq!((even.median_s, even.min_s, even.max_s), (2.5, 1.0, 4.0));
        assert_eq!(format_time(0.00123), "1.23 ms");
        assert_eq!(format_time(0.5), "500.0 ms");
        assert_eq!(format_time(2.346), "2.35 s");
        assert_eq!(thousands(75_082), "75,082");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
