//! The study's outputs: plots like the paper's figures, `results.md` (stages, loss rates and test
//! losses per arm and SNR) and `summary.json` (the same, machine-readable, without the traces).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{io, SignGdStudyConfig, StepSummary, StudyError, StudyRun};
use ember_train::write_atomically;

use crate::report::markdown::Table;
use crate::report::plot::{LegendPosition, LinePlot};

/// Writes `results.md` and `summary.json` into `out`, then the plots; returns the files written.
///
/// The numbers come first so that a plot that cannot be drawn (no font for PNG text, say) never
/// costs them: such a plot is a logged warning and is left out of the returned list.
pub fn write_report(
    config: &SignGdStudyConfig,
    runs: &[StudyRun],
    out: &Path,
) -> Result<Vec<PathBuf>, StudyError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut written = Vec::new();
    let results = out.join("results.md");
    write_atomically(&results, render_results(config, runs).as_bytes()).map_err(io(&results))?;
    written.push(results);

    #[derive(Serialize)]
    struct RunSummary<'a> {
        arm: &'a str,
        snr: f64,
        stages: &'a super::Stages,
        loss_rate: &'a super::LossRate,
        wall_time_s: f64,
        last: &'a StepSummary,
        min_test_loss: f64,
    }
    #[derive(Serialize)]
    struct Summary<'a> {
        config: &'a SignGdStudyConfig,
        runs: Vec<RunSummary<'a>>,
    }
    let summary = Summary {
        config,
        runs: runs
            .iter()
            .map(|r| RunSummary {
                arm: &r.arm,
                snr: r.snr,
                stages: &r.stages,
                loss_rate: &r.loss_rate,
                wall_time_s: r.wall_time_s,
                last: r.last(),
                min_test_loss: min_test_loss(r),
            })
            .collect(),
    };
    let path = out.join("summary.json");
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| io(&path)(e.into()))?;
    write_atomically(&path, &json).map_err(io(&path))?;
    written.push(path);

    for &snr in &config.snrs {
        let at_snr: Vec<&StudyRun> = runs.iter().filter(|r| r.snr == snr).collect();
        for (name, plot) in figures(snr, &at_snr) {
            let path = out.join(format!("{name}-snr{snr}.png"));
            match plot.write(&path) {
                Ok(()) => written.push(path),
                Err(e) => tracing::warn!(
                    "plot {} not drawn: {e} (the numbers are in results.md and summary.json)",
                    path.display()
                ),
            }
        }
    }
    Ok(written)
}

fn min_test_loss(run: &StudyRun) -> f64 {
    run.trace
        .iter()
        .map(|s| s.test_loss)
        .fold(f64::INFINITY, f64::min)
}

fn curve(trace: &[StepSummary], value: impl Fn(&StepSummary) -> f64) -> Vec<(f64, f64)> {
    trace.iter().map(|s| (s.step as f64, value(s))).collect()
}

/// A metric of the trace, with the label suffix of its line.
type Line = (&'static str, fn(&StepSummary) -> f64);

/// Adds one line per run and metric, over the first `1/part` of each run.
fn lines_per_run(mut plot: LinePlot, runs: &[&StudyRun], part: usize, lines: &[Line]) -> LinePlot {
    for run in runs {
        let trace = &run.trace[..run.trace.len() / part + usize::from(part > 1)];
        for (suffix, value) in lines {
            let label = if suffix.is_empty() {
                run.arm.clone()
            } else {
                format!("{} {suffix}", run.arm)
            };
            plot = plot.series(label, curve(trace, value));
        }
    }
    plot
}

/// Vertical lines where the stages of `run` begin.
fn with_stage_markers(mut plot: LinePlot, run: &StudyRun) -> LinePlot {
    let s = &run.stages;
    for (label, step) in [
        ("I", s.value_noise_settled),
        ("II", s.noise_signs_aligned),
        ("III", s.signal_signs_fixed),
        ("IV", s.noise_to_signal_attention_vanished),
    ] {
        if let Some(step) = step {
            plot = plot.marker(format!("{} stage {label}", run.arm), step as f64);
        }
    }
    plot
}

/// The paper's figures at one SNR: (file stem, plot).
fn figures(snr: f64, runs: &[&StudyRun]) -> Vec<(&'static str, LinePlot)> {
    let mut figures = Vec::new();
    let sign = runs.iter().find(|r| r.arm == "signgd").or(runs.first());

    // Stage I: value noise grows while key noise stays put, over the first fifth of the run.
    let early = LinePlot::new(format!(
        "value noise and key noise, first steps (SNR {snr})"
    ))
    .x_label("step")
    .y_label("mean <v, y xi> / mean |<w_K,s, y xi>|")
    .legend(LegendPosition::UpperLeft);
    let early = lines_per_run(
        early,
        runs,
        5,
        &[
            ("value noise", |s| s.mean_value_noise),
            ("|key noise|", |s| s.mean_abs_key_noise),
        ],
    );
    figures.push(("value-key-noise", early));

    // Stage II: sign agreement of query and key noise.
    let aligned = LinePlot::new(format!("query/key noise sign agreement (SNR {snr})"))
        .x_label("step")
        .y_label("share of (s, i) with equal signs")
        .y_range(0.0, 1.0)
        .legend(LegendPosition::LowerRight);
    let aligned = lines_per_run(aligned, runs, 1, &[("", |s| s.noise_sign_agreement)]);
    figures.push(("noise-alignment", aligned));

    // Stage III: query and key signal per neuron, with SignGD's stage markers.
    if let Some(run) = sign {
        for (stem, title, pick) in [
            ("query-signal", "query signal <w_Q,s, mu>", true),
            ("key-signal", "key signal <w_K,s, mu>", false),
        ] {
            let neurons = run.trace[0].query_signal.len();
            let mut plot = LinePlot::new(format!("{} per neuron, {} (SNR {snr})", title, run.arm))
                .x_label("step")
                .y_label(title)
                .legend(LegendPosition::UpperLeft);
            for s in 0..neurons {
                let value = |t: &StepSummary| {
                    (if pick { &t.query_signal } else { &t.key_signal })[s] as f64
                };
                plot = plot.series(format!("s={s}"), curve(&run.trace, value));
            }
            figures.push((stem, with_stage_markers(plot, run)));
        }
    }

    // Stage IV: softmax outputs.
    let softmax = LinePlot::new(format!("softmax outputs s_11 and s_21 (SNR {snr})"))
        .x_label("step")
        .y_label("mean attention weight")
        .log_y(true)
        .y_range(1e-12, 1.0)
        .legend(LegendPosition::LowerLeft);
    let mut softmax = lines_per_run(
        softmax,
        runs,
        1,
        &[
            ("s_11", |s| s.mean_signal_to_signal),
            ("s_21", |s| s.mean_noise_to_signal),
        ],
    );
    if let Some(run) = sign {
        softmax = with_stage_markers(softmax, run);
    }
    figures.push(("softmax", softmax));

    // Loss: training and test per optimizer.
    let loss = LinePlot::new(format!("train and test loss (SNR {snr})"))
        .x_label("step")
        .y_label("logistic loss")
        .log_y(true)
        .legend(LegendPosition::LowerLeft);
    let loss = lines_per_run(
        loss,
        runs,
        1,
        &[("train", |s| s.train_loss), ("test", |s| s.test_loss)],
    );
    figures.push(("loss", loss));
    figures
}

fn step(s: Option<usize>) -> String {
    s.map_or("—".to_string(), |s| s.to_string())
}

fn share(s: Option<f64>) -> String {
    s.map_or("—".to_string(), |s| format!("{:.0}%", 100.0 * s))
}

/// `results.md`: the settings, then per SNR one row per arm.
pub fn render_results(config: &SignGdStudyConfig, runs: &[StudyRun]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# SignGD study: stages and loss rates\n");
    let _ = writeln!(
        md,
        "Written by `ember study signgd`. Data: d = {}, n = {} (full batch), {} fresh test samples, \
         s = {} noise coordinates, ‖μ‖ = {}. Model: m_k = {}, m_v = {}, σ₀ = {}. {} steps, seed {}.\n",
        config.dim,
        config.train_size,
        config.test_size,
        config.noise_nonzeros,
        config.signal_norm,
        config.key_width,
        config.value_width,
        config.init_std,
        config.steps,
        config.seed
    );
    let mut arms = Table::new(["arm", "optimizer", "lr"]);
    for arm in &config.arms {
        let spec = serde_json::to_string(&arm.optimizer).unwrap_or_default();
        arms.row([arm.name.clone(), format!("`{spec}`"), arm.lr.to_string()]);
    }
    md += &arms.render();
    let _ = writeln!(
        md,
        "\nStage steps are where a condition starts to hold for the rest of the run (— : never): \
         I value noise positive for every sample and growing (key noise |·| at that step relative \
         to its start in brackets); II the first step at which query/key noise signs agree on \
         ≥ {:.0}% of (s, i) (share agreeing at the end in brackets); III no \
         query/key signal sign changes (share of neurons whose query / key signal has the sign of \
         the majority vote of its noise, in brackets); IV mean s_21 < {} (mean s_11 then → at the \
         last step, in brackets). Loss rate: least-squares fits of ln L against t (linear rate) and ln t \
         (sub-linear) where 1e-6 < L < L₀/10, R² of each.\n",
        100.0 * super::NOISE_AGREEMENT,
        super::NOISE_TO_SIGNAL_ATTENTION
    );
    for &snr in &config.snrs {
        let data = config.data(snr);
        let _ = writeln!(md, "## SNR {snr} (σ_p = {:.4})\n", data.noise_std);
        let mut table = Table::new([
            "arm",
            "I",
            "II (end)",
            "III (Q/K match vote)",
            "IV (s_11 then → end)",
            "in order",
            "loss rate (R² exp / pow)",
            "train loss",
            "test loss: start → min → end",
            "test acc.",
        ]);
        for run in runs.iter().filter(|r| r.snr == snr) {
            table.row(stage_cells(run));
        }
        md += &table.render();
        let _ = writeln!(md);
    }
    md
}

/// One run's row of the stage table (the columns of `render_results`).
fn stage_cells(run: &StudyRun) -> [String; 10] {
    let s = &run.stages;
    let r2 = |f: Option<crate::report::stats::LinearFit>| {
        f.map_or("—".into(), |f| format!("{:.3}", f.r_squared))
    };
    [
        run.arm.clone(),
        format!(
            "{} ({})",
            step(s.value_noise_settled),
            s.key_noise_ratio_at_stage_1
                .map_or("—".into(), |r| format!("{r:.2}×"))
        ),
        format!(
            "{} ({})",
            step(s.noise_signs_aligned),
            share(Some(s.noise_agreement_at_end))
        ),
        format!(
            "{} ({} / {})",
            step(s.signal_signs_fixed),
            share(s.query_signal_matches_vote),
            share(s.key_signal_matches_vote)
        ),
        format!(
            "{} ({})",
            step(s.noise_to_signal_attention_vanished),
            s.signal_to_signal_at_stage_4
                .map_or("—".into(), |v| format!(
                    "{v:.2} → {:.2}",
                    run.last().mean_signal_to_signal
                ))
        ),
        if s.in_order { "yes" } else { "no" }.to_string(),
        format!(
            "{} ({} / {})",
            run.loss_rate.verdict,
            r2(run.loss_rate.exponential),
            r2(run.loss_rate.power_law)
        ),
        format!("{:.2e}", run.last().train_loss),
        format!(
            "{:.3} → {:.3} → {:.3}",
            run.trace[0].test_loss,
            min_test_loss(run),
            run.last().test_loss
        ),
        format!("{:.1}%", 100.0 * run.last().test_accuracy),
    ]
}
