//! The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks",
//! 2017; the form popularised by fastai's `lr_find`): train from the initial weights while the
//! learning rate grows geometrically from a tiny to a huge value, record the loss, and read usable
//! learning-rate bounds off the curve. PLRS (Devapriya et al., arXiv 2407.07613) takes its bounds
//! [L_min, L_max] from such a test.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[cfg(doc)]
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use ember_train::{write_atomically, BatchPosition, NonFinitePolicy, StepDriver, StepRule, Task};

use crate::report::plot::{LegendPosition, LinePlot, PlotError};
use crate::spec::SpecError;

/// How to sweep the learning rate and when to stop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrFindSettings {
    /// The learning rate of the first step.
    pub start_lr: f64,
    /// The learning rate of the last step; step i uses `start·(end/start)^(i/(steps−1))`.
    pub end_lr: f64,
    /// Optimizer steps in the sweep (fewer if the loss diverges first).
    pub steps: usize,
    /// β of the bias-corrected exponential moving average that smooths the per-batch loss:
    /// `a_i = β·a_{i−1} + (1−β)·loss_i`, smoothed loss `a_i / (1 − β^{i+1})`.
    pub smoothing: f64,
    /// Stop once the smoothed loss exceeds this many times the lowest smoothed loss so far (or the
    /// loss is not finite): past that point the curve says nothing more about usable rates.
    pub divergence_factor: f64,
}

impl Default for LrFindSettings {
    fn default() -> Self {
        Self {
            start_lr: 1e-5,
            end_lr: 10.0,
            steps: 200,
            smoothing: 0.98,
            divergence_factor: 4.0,
        }
    }
}

impl LrFindSettings {
    /// Checks the settings, naming the bad field. (The batch size and seed are the task's.)
    pub fn validate(&self) -> Result<(), SpecError> {
        if !(self.start_lr.is_finite() && self.start_lr > 0.0) {
            return Err(SpecError::new(
                "start_lr",
                format!("must be finite and > 0, got {}", self.start_lr),
            ));
        }
        if !(self.end_lr.is_finite() && self.end_lr > self.start_lr) {
            return Err(SpecError::new(
                "end_lr",
                format!(
                    "must be finite and greater than start_lr ({}), got {}",
                    self.start_lr, self.end_lr
                ),
            ));
        }
        if self.steps < 2 {
            return Err(SpecError::new(
                "steps",
                format!("must be at least 2, got {}", self.steps),
            ));
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return Err(SpecError::new(
                "smoothing",
                format!("must be in [0, 1), got {}", self.smoothing),
            ));
        }
        if !(self.divergence_factor.is_finite() && self.divergence_factor > 1.0) {
            return Err(SpecError::new(
                "divergence_factor",
                format!("must be finite and > 1, got {}", self.divergence_factor),
            ));
        }
        Ok(())
    }

    /// The learning rate of step `step` (0-based): geometric from `start_lr` to `end_lr`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step + 1 >= self.steps {
            return self.end_lr; // exact, not `start·ratio^1` with its rounding
        }
        let t = step as f64 / (self.steps - 1) as f64;
        self.start_lr * (self.end_lr / self.start_lr).powf(t)
    }
}

/// One step of the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrFindPoint {
    /// 0-based step.
    pub step: usize,
    /// The learning rate of this step's update.
    pub lr: f64,
    /// The batch loss, measured before this step's update (as fastai does).
    pub loss: f64,
    /// Bias-corrected exponential moving average of `loss` up to this step.
    pub smoothed_loss: f64,
}

/// The recorded sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct LrFindCurve {
    /// Every step taken; when the sweep stopped early, the last point is the one that diverged.
    pub points: Vec<LrFindPoint>,
    /// Whether the divergence rule ended the sweep before its last step.
    pub stopped_early: bool,
}

/// Learning-rate bounds read off a sweep.
///
/// The rule: `L̄` is the learning rate at the lowest smoothed loss; `max_lr = L̄ / 2` and
/// `min_lr = 0.7 · max_lr`.
///
/// * `max_lr` sits just below where the loss turns up. The moving average lags the raw loss, so its
///   minimum is already a little past the turn; halving steps back from it (fastai's classic rule
///   steps back further, to `L̄ / 10`, for a fixed learning rate — a range of rates tolerates an
///   upper end closer to the edge).
/// * `min_lr / max_lr = 0.7` is the ratio of the PLRS paper's CIFAR bounds [0.07, 0.1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSuggestion {
    /// `L̄`: the learning rate at the lowest smoothed loss.
    pub lr_at_min_loss: f64,
    /// The step of that minimum.
    pub step_at_min_loss: usize,
    /// The lowest smoothed loss.
    pub min_smoothed_loss: f64,
    /// Suggested upper bound (PLRS's L_max, or a fixed/peak learning rate): `L̄ / 2`.
    pub max_lr: f64,
    /// Suggested lower bound (PLRS's L_min): `0.7 · max_lr`.
    pub min_lr: f64,
}

/// `max_lr = L̄ · MAX_LR_FRACTION`; see [`LrSuggestion`].
pub const MAX_LR_FRACTION: f64 = 0.5;
/// `min_lr = max_lr · MIN_LR_RATIO`, the PLRS paper's 0.07 / 0.1.
pub const MIN_LR_RATIO: f64 = 0.7;

/// Why a range test gave no result.
#[derive(Debug, thiserror::Error)]
pub enum LrFindError {
    /// A setting is out of range (or the spec behind the test is).
    #[error(transparent)]
    Settings(#[from] SpecError),
    /// No step's smoothed loss was finite; the value is the first step's loss.
    #[error("the loss was not finite at the first step ({0}): nothing to suggest")]
    NoFiniteLoss(f64),
    /// The smoothed loss never fell below its first value, so there is no minimum to read.
    #[error("the smoothed loss never fell below its first value ({first:.4}) in {steps} steps up to lr {last_lr:.3e}: no bound to suggest (raise end_lr or steps, or check the model and data)")]
    NoDecrease {
        /// The first finite smoothed loss.
        first: f64,
        /// Steps recorded.
        steps: usize,
        /// The learning rate of the last step recorded.
        last_lr: f64,
    },
    /// A result file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The plot could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Smooths the loss and applies the divergence rule, one step at a time: the same code records a
/// live sweep ([`lr_find`]) and replays a stored one ([`lr_find_curve`]).
#[derive(Clone, Debug)]
pub struct LossTracker {
    smoothing: f64,
    divergence_factor: f64,
    average: f64,
    best: f64,
    points: Vec<LrFindPoint>,
    stopped: bool,
}

impl LossTracker {
    /// An empty tracker with the settings' `smoothing` (β) and `divergence_factor`.
    pub fn new(smoothing: f64, divergence_factor: f64) -> Self {
        Self {
            smoothing,
            divergence_factor,
            average: 0.0,
            best: f64::INFINITY,
            points: Vec::new(),
            stopped: false,
        }
    }

    /// Records the loss of the next step; returns `true` when the sweep should stop here (the loss
    /// is not finite, or the smoothed loss exceeds `divergence_factor ×` the best so far).
    pub fn push(&mut self, lr: f64, loss: f64) -> bool {
        let step = self.points.len();
        self.average = self.smoothing * self.average + (1.0 - self.smoothing) * loss;
        let smoothed_loss = self.average / (1.0 - self.smoothing.powi(step as i32 + 1));
        self.points.push(LrFindPoint {
            step,
            lr,
            loss,
            smoothed_loss,
        });
        if !smoothed_loss.is_finite() || smoothed_loss > self.divergence_factor * self.best {
            self.stopped = true;
            return true;
        }
        self.best = self.best.min(smoothed_loss);
        false
    }

    /// The curve so far; `planned_steps` tells whether a stop came early.
    pub fn finish(self, planned_steps: usize) -> LrFindCurve {
        LrFindCurve {
            stopped_early: self.stopped && self.points.len() < planned_steps,
            points: self.points,
        }
    }
}

/// The curve of a stored sweep: `(lr, loss)` per step, smoothed and cut at divergence exactly as
/// [`lr_find`] does while training.
pub fn lr_find_curve(
    lr_losses: &[(f64, f64)],
    smoothing: f64,
    divergence_factor: f64,
) -> LrFindCurve {
    let mut tracker = LossTracker::new(smoothing, divergence_factor);
    for &(lr, loss) in lr_losses {
        if tracker.push(lr, loss) {
            break;
        }
    }
    tracker.finish(lr_losses.len())
}

impl LrFindCurve {
    /// Learning-rate bounds by the rule documented on [`LrSuggestion`], or an error if the loss
    /// never went down (a suggestion would then be noise).
    pub fn suggest(&self) -> Result<LrSuggestion, LrFindError> {
        let finite = || self.points.iter().filter(|p| p.smoothed_loss.is_finite());
        let first = finite().next().ok_or_else(|| {
            LrFindError::NoFiniteLoss(self.points.first().map_or(f64::NAN, |p| p.loss))
        })?;
        // The first point holding the minimum, so a plateau after it does not move L̄ right.
        let best = finite().fold(first, |best, p| {
            if p.smoothed_loss < best.smoothed_loss {
                p
            } else {
                best
            }
        });
        if best.step == first.step {
            return Err(LrFindError::NoDecrease {
                first: first.smoothed_loss,
                steps: self.points.len(),
                last_lr: self.points.last().map_or(f64::NAN, |p| p.lr),
            });
        }
        let max_lr = best.lr * MAX_LR_FRACTION;
        Ok(LrSuggestion {
            lr_at_min_loss: best.lr,
            step_at_min_loss: best.step,
            min_smoothed_loss: best.smoothed_loss,
            max_lr,
            min_lr: MIN_LR_RATIO * max_lr,
        })
    }
}

/// Runs the range test: from `model`'s current weights, one optimizer step per training batch of
/// `task` with the learning rate of [`LrFindSettings::lr_at`], through passes of
/// [`Task::full_batches`] batches each (for images, the epochs training would see: same seeded
/// order, same augmentation), until `settings.steps` steps or divergence. Steps go through the
/// trainer's [`StepDriver`], so snapshot methods (SVRG, VAMO) take their snapshot at each pass.
///
/// `optimizer` is either kind the trainer takes: a burn [`ModuleOptimizer`] (converted with
/// `.into()`) or a closure optimizer; the loss recorded for a step is the one that optimizer reports,
/// measured on the step's batch before its update. The model and optimizer are consumed: the huge
/// learning rates at the end of the sweep ruin them.
pub fn lr_find<T: Task>(
    mut model: T::Model,
    optimizer: impl Into<StepRule<T::Model>>,
    task: &T,
    settings: &LrFindSettings,
) -> Result<LrFindCurve, LrFindError> {
    settings.validate()?;
    let mut rule = optimizer.into();
    let mut driver = StepDriver::new(task, NonFinitePolicy::Stop);
    let pass_len = task.full_batches().max(1);
    let mut tracker = LossTracker::new(settings.smoothing, settings.divergence_factor);
    let log_every = (settings.steps / 10).max(1);
    for step in 0..settings.steps {
        let position = BatchPosition {
            round: step / pass_len,
            index: step % pass_len,
            step: step as u64,
        };
        if position.index == 0 {
            driver.begin_round(position.round, &model, &mut rule);
        }
        let lr = settings.lr_at(step);
        // Under the stop policy every step is kept and reports its loss; a non-finite loss ends
        // the sweep through the tracker.
        let Ok(stepped) = driver.step(&mut rule, lr.into(), model, task.train_batch(position))
        else {
            break;
        };
        model = stepped.model;
        let Some(loss) = stepped.loss else { break };
        let loss = loss.into_scalar::<f64>();
        let stop = tracker.push(lr, loss);
        if stop || step % log_every == 0 {
            let smoothed = tracker.points.last().map_or(f64::NAN, |p| p.smoothed_loss);
            tracing::info!(
                "lr-find step {}/{}: lr {lr:.3e}, loss {loss:.4} (smoothed {smoothed:.4}){}",
                step + 1,
                settings.steps,
                if stop { ", diverged: stopping" } else { "" }
            );
        }
        if stop {
            break;
        }
    }
    Ok(tracker.finish(settings.steps))
}

/// The files [`write_lr_find`] writes.
#[derive(Clone, Debug)]
pub struct LrFindFiles {
    /// `lr_find.csv`: one `step,lr,loss,smoothed_loss` line per step.
    pub csv: PathBuf,
    /// `lr_find.json`: settings, suggestion, the rule and the caller's config.
    pub json: PathBuf,
    /// `lr_find.png`: the curve with the suggested bounds marked.
    pub plot: PathBuf,
    /// Whether `plot` was drawn; a plot that cannot be drawn (no font, say) is a warning, never a
    /// lost result.
    pub plot_drawn: bool,
}

/// Writes the numbers of a range test: `lr_find.csv` (`step,lr,loss,smoothed_loss`) and
/// `lr_find.json` (settings, suggestion, the rule, and `config`: whatever else the caller wants
/// recorded, e.g. model and optimizer) into `dir`, creating it. Without a suggestion the curve is
/// still written, for diagnosis. The plot is [`write_lr_find_plot`]'s job, to be called after the
/// numbers are safe (and printed).
pub fn write_lr_find_data(
    dir: &Path,
    settings: &LrFindSettings,
    curve: &LrFindCurve,
    suggestion: Option<&LrSuggestion>,
    config: &serde_json::Value,
) -> Result<LrFindFiles, LrFindError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LrFindError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let files = LrFindFiles {
        csv: dir.join("lr_find.csv"),
        json: dir.join("lr_find.json"),
        plot: dir.join("lr_find.png"),
        plot_drawn: false,
    };

    let mut csv = String::from("step,lr,loss,smoothed_loss\n");
    for p in &curve.points {
        writeln!(csv, "{},{},{},{}", p.step, p.lr, p.loss, p.smoothed_loss).expect("to a String");
    }
    write_atomically(&files.csv, csv.as_bytes()).map_err(io(&files.csv))?;

    let json = serde_json::json!({
        "settings": settings,
        "steps_run": curve.points.len(),
        "stopped_early": curve.stopped_early,
        "suggestion": suggestion,
        "rule": format!(
            "lr_at_min_loss = lr at the lowest smoothed loss; max_lr = {MAX_LR_FRACTION} * lr_at_min_loss; min_lr = {MIN_LR_RATIO} * max_lr"
        ),
        "config": config,
    });
    let bytes = serde_json::to_vec_pretty(&json).expect("lr-find report serialises");
    write_atomically(&files.json, &bytes).map_err(io(&files.json))?;
    Ok(files)
}

/// Draws `lr_find.png` (raw and smoothed loss against a logarithmic lr axis, the suggested bounds
/// as vertical lines) at `files.plot`. A failure here loses nothing: the numbers are already in
/// `files.csv` and `files.json`. Returns whether the plot was drawn; a failure is logged as a
/// warning.
pub fn write_lr_find_plot(
    files: &mut LrFindFiles,
    settings: &LrFindSettings,
    curve: &LrFindCurve,
    suggestion: Option<&LrSuggestion>,
) -> bool {
    match plot_curve(curve, suggestion, settings.divergence_factor).write(&files.plot) {
        Ok(()) => files.plot_drawn = true,
        Err(e) => tracing::warn!(
            "lr-find plot {} not drawn: {e} (the numbers are in {} and {})",
            files.plot.display(),
            files.csv.display(),
            files.json.display()
        ),
    }
    files.plot_drawn
}

/// [`write_lr_find_data`], then [`write_lr_find_plot`]: the numbers first, so that a plot that
/// cannot be drawn is a warning (`plot_drawn == false`), never a lost result.
pub fn write_lr_find(
    dir: &Path,
    settings: &LrFindSettings,
    curve: &LrFindCurve,
    suggestion: Option<&LrSuggestion>,
    config: &serde_json::Value,
) -> Result<LrFindFiles, LrFindError> {
    let mut files = write_lr_find_data(dir, settings, curve, suggestion, config)?;
    write_lr_find_plot(&mut files, settings, curve, suggestion);
    Ok(files)
}

fn plot_curve(curve: &LrFindCurve, suggestion: Option<&LrSuggestion>, factor: f64) -> LinePlot {
    let raw: Vec<(f64, f64)> = curve.points.iter().map(|p| (p.lr, p.loss)).collect();
    let smoothed: Vec<(f64, f64)> = curve
        .points
        .iter()
        .map(|p| (p.lr, p.smoothed_loss))
        .collect();
    let finite = || {
        curve
            .points
            .iter()
            .flat_map(|p| [p.loss, p.smoothed_loss])
            .filter(|v| v.is_finite())
    };
    let low = finite().fold(f64::INFINITY, f64::min);
    let best = curve
        .points
        .iter()
        .map(|p| p.smoothed_loss)
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    // Up to the divergence threshold: the raw loss of the last steps can be orders of magnitude
    // higher and would flatten the interesting part.
    let high = finite()
        .fold(f64::NEG_INFINITY, f64::max)
        .min(factor * best);
    let mut plot = LinePlot::new("learning-rate range test")
        .x_label("learning rate")
        .y_label("training loss")
        .log_x(true)
        .legend(LegendPosition::UpperLeft)
        .series("batch loss", raw)
        .series("smoothed loss", smoothed);
    if low.is_finite() && high.is_finite() && high > low {
        let pad = 0.03 * (high - low);
        plot = plot.y_range(low - pad, high + pad);
    }
    if let Some(s) = suggestion {
        plot = plot
            .marker(
                format!(
                    "max_lr {} (lr at min / {})",
                    round_significant(s.max_lr, 3),
                    1.0 / MAX_LR_FRACTION
                ),
                s.max_lr,
            )
            .marker(
                format!(
                    "min_lr {} ({MIN_LR_RATIO} max_lr)",
                    round_significant(s.min_lr, 3)
                ),
                s.min_lr,
            );
    }
    plot
}

/// `v` rounded to `digits` significant digits (for printing suggested bounds).
pub fn round_significant(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let decimals = digits - 1 - v.abs().log10().floor() as i32;
    // Divide by an exact power of ten rather than multiply by an inexact 0.1, 0.01, ...
    if decimals >= 0 {
        let scale = 10f64.powi(decimals);
        (v * scale).round() / scale
    } else {
        let scale = 10f64.powi(-decimals);
        (v / scale).round() * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rates_grow_geometrically_from_start_to_end() {
        let settings = LrFindSettings {
            start_lr: 1e-4,
            end_lr: 1.0,
            steps: 5,
            ..LrFindSettings::default()
        };
        let lrs: Vec<f64> = (0..5).map(|i| settings.lr_at(i)).collect();
        assert_eq!(lrs[0], 1e-4);
        assert_eq!(lrs[4], 1.0);
        for pair in lrs.windows(2) {
            assert!((pair[1] / pair[0] - 10.0).abs() < 1e-9, "{lrs:?}");
        }
    }

    #[test]
    fn smoothing_is_a_bias_corrected_ema() {
        let losses = [2.0, 1.0, 4.0, 3.0];
        let lr_losses: Vec<(f64, f64)> = losses.iter().map(|&l| (0.1, l)).collect();
        let curve = lr_find_curve(&lr_losses, 0.5, 100.0);
        // a_0 = 1.0 → 1.0/0.5 = 2; a_1 = 0.5 + 0.5 = 1.0 → 1.0/0.75; a_2 = 0.5 + 2 = 2.5 → 2.5/0.875;
        // a_3 = 1.25 + 1.5 = 2.75 → 2.75/0.9375.
        let expected = [2.0, 1.0 / 0.75, 2.5 / 0.875, 2.75 / 0.9375];
        let smoothed: Vec<f64> = curve.points.iter().map(|p| p.smoothed_loss).collect();
        for (got, want) in smoothed.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{smoothed:?} vs {expected:?}");
        }
        assert!(!curve.stopped_early);
        // β = 0: no smoothing at all.
        let plain = lr_find_curve(&lr_losses, 0.0, 100.0);
        assert!(plain
            .points
            .iter()
            .zip(losses)
            .all(|(p, l)| p.smoothed_loss == l));
    }

    #[test]
    fn stops_when_the_smoothed_loss_exceeds_the_factor_or_is_not_finite() {
        let lr_losses = [
            (1e-3, 2.0),
            (1e-2, 1.0),
            (1e-1, 3.9),
            (1.0, 4.1),
            (10.0, 50.0),
        ];
        let curve = lr_find_curve(&lr_losses, 0.0, 4.0);
        assert_eq!(curve.points.len(), 4, "stops at 4.1 > 4 × 1.0");
        assert!(curve.stopped_early);
        let nan = lr_find_curve(&[(1e-3, 2.0), (1e-2, f64::NAN), (1e-1, 1.0)], 0.9, 4.0);
        assert_eq!(nan.points.len(), 2);
        assert!(nan.stopped_early);
        // Diverging on the very last planned step is not "early".
        let last = lr_find_curve(&[(1e-3, 2.0), (1e-2, 1.0), (1e-1, 9.0)], 0.0, 4.0);
        assert_eq!(last.points.len(), 3);
        assert!(!last.stopped_early);
    }

    #[test]
    fn suggests_half_the_lr_at_the_minimum_and_the_paper_ratio_below() {
        let lr_losses = [
            (1e-3, 2.3),
            (1e-2, 2.0),
            (1e-1, 1.2),
            (1.0, 1.2),
            (10.0, 3.0),
        ];
        let s = lr_find_curve(&lr_losses, 0.0, 4.0).suggest().unwrap();
        assert_eq!(s.lr_at_min_loss, 1e-1, "the first point of the minimum");
        assert_eq!(s.step_at_min_loss, 2);
        assert_eq!(s.min_smoothed_loss, 1.2);
        assert!((s.max_lr - 0.05).abs() < 1e-15);
        assert!((s.min_lr - 0.035).abs() < 1e-15);
    }

    #[test]
    fn a_loss_that_never_falls_gives_an_error_not_a_suggestion() {
        let rising = [(1e-3, 2.0), (1e-2, 2.1), (1e-1, 2.5), (1.0, 9.0)];
        let err = lr_find_curve(&rising, 0.5, 4.0).suggest().unwrap_err();
        assert!(matches!(err, LrFindError::NoDecrease { .. }), "{err}");
        assert!(err.to_string().contains("never fell"), "{err}");
        let err = lr_find_curve(&[(1e-3, f64::INFINITY)], 0.5, 4.0)
            .suggest()
            .unwrap_err();
        assert!(matches!(err, LrFindError::NoFiniteLoss(_)), "{err}");
    }

    #[test]
    fn rounds_to_significant_digits() {
        assert_eq!(round_significant(0.1234567, 3), 0.123);
        assert_eq!(round_significant(0.0864197, 3), 0.0864);
        assert_eq!(round_significant(3.4567, 3), 3.46);
        assert_eq!(round_significant(1234.5, 3), 1230.0);
        assert_eq!(round_significant(-0.0007, 3), -0.0007);
    }

    #[test]
    fn invalid_settings_name_the_field() {
        let ok = LrFindSettings::default();
        assert!(ok.validate().is_ok());
        let cases = [
            (
                "start_lr",
                LrFindSettings {
                    start_lr: 0.0,
                    ..ok.clone()
                },
            ),
            (
                "end_lr",
                LrFindSettings {
                    end_lr: 1e-6,
                    ..ok.clone()
                },
            ),
            (
                "end_lr",
                LrFindSettings {
                    end_lr: f64::INFINITY,
                    ..ok.clone()
                },
            ),
            (
                "steps",
                LrFindSettings {
                    steps: 1,
                    ..ok.clone()
                },
            ),
            (
                "smoothing",
                LrFindSettings {
                    smoothing: 1.0,
                    ..ok.clone()
                },
            ),
            (
                "divergence_factor",
                LrFindSettings {
                    divergence_factor: 1.0,
                    ..ok.clone()
                },
            ),
        ];
        for (field, settings) in cases {
            let err = settings.validate().unwrap_err();
            assert_eq!(err.field, field, "{settings:?}");
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn writes_csv_json_and_plot() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LrFindSettings::default();
        let lr_losses: Vec<(f64, f64)> = (0..50)
            .map(|i| {
                let lr = 1e-4 * 1.2f64.powi(i);
                (
                    lr,
                    2.3 - 0.02 * i as f64 + if i > 40 { 0.5 * (i - 40) as f64 } else { 0.0 },
                )
            })
            .collect();
        let curve = lr_find_curve(&lr_losses, 0.9, 4.0);
        let suggestion = curve.suggest().unwrap();
        let config = serde_json::json!({"optimizer": "sgd"});
        let files = write_lr_find(
            &dir.path().join("out"),
            &settings,
            &curve,
            Some(&suggestion),
            &config,
        )
        .unwrap();
        let csv = std::fs::read_to_string(&files.csv).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("step,lr,loss,smoothed_loss"));
        assert_eq!(lines.count(), curve.points.len());
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
        assert_eq!(json["suggestion"]["max_lr"], suggestion.max_lr);
        assert_eq!(json["settings"]["steps"], 200);
        assert_eq!(json["config"]["optimizer"], "sgd");
        assert_eq!(&std::fs::read(&files.plot).unwrap()[..4], b"\x89PNG");
    }
}
