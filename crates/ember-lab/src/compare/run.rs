//! Running an experiment: every arm for every seed (finished runs skipped, interrupted ones
//! resumed), then its report.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ember_train::write_atomically;

use super::{collect_results, render_results, write_plots, CompareSpec};

/// Where an experiment's runs and report go.
pub struct Experiment<'a> {
    /// The spec file (named in the report).
    pub spec_path: &'a Path,
    /// Run folders go to `<runs_dir>/<spec name>/<arm>-s<seed>/`.
    pub runs_dir: &'a Path,
    /// `results.md` and the plots go here.
    pub out: &'a Path,
}

/// What [`Experiment::run`] wrote.
pub struct Written {
    pub results: PathBuf,
    pub plots: Vec<PathBuf>,
}

impl Experiment<'_> {
    /// Trains what is missing (nothing with `report_only`), then writes the report from the runs
    /// that finished. A run that fails is reported at the end, after the others ran and the report
    /// was written.
    pub fn run(&self, report_only: bool) -> anyhow::Result<Written> {
        let spec = CompareSpec::load(self.spec_path)?;
        self.refuse_changed_arms(&spec)?;
        let failed = if report_only {
            Vec::new()
        } else {
            self.train_missing(&spec)
        };
        let results = collect_results(&spec, self.runs_dir)?;
        std::fs::create_dir_all(self.out)
            .with_context(|| format!("creating {}", self.out.display()))?;
        let provenance = format!("commit {}", crate::provenance::commit());
        let markdown = render_results(&spec, self.spec_path, &results, &provenance);
        let results_path = self.out.join("results.md");
        write_atomically(&results_path, markdown.as_bytes())
            .with_context(|| format!("writing {}", results_path.display()))?;
        let plots = write_plots(&spec, &results, self.out)?;
        if !failed.is_empty() {
            bail!("{} run(s) failed:\n{}", failed.len(), failed.join("\n"));
        }
        Ok(Written {
            results: results_path,
            plots,
        })
    }

    /// Trains every run that has not finished the spec's epochs; returns what failed.
    fn train_missing(&self, spec: &CompareSpec) -> Vec<String> {
        let mut failed = Vec::new();
        for arm in spec.runnable_arms() {
            for &seed in &spec.seeds {
                let run = spec.run_dir(self.runs_dir, arm, seed);
                match spec.finished_epochs(&run) {
                    Some(epochs) if epochs == spec.train.epochs => {
                        tracing::info!("{} seed {seed}: finished earlier, skipped", arm.name);
                        continue;
                    }
                    Some(epochs) if epochs > spec.train.epochs => {
                        // Resuming would rewrite its summary for a model trained longer.
                        let message = format!(
                            "{} seed {seed}: {} finished {epochs} epochs but the spec asks for {}; \
                             left as it is (move the folder away to train it again)",
                            arm.name,
                            run.root().display(),
                            spec.train.epochs
                        );
                        tracing::error!("{message}");
                        failed.push(message);
                        continue;
                    }
                    _ => {}
                }
                let Some(run_spec) = spec.run_spec(arm, seed) else {
                    continue;
                };
                tracing::info!(
                    "{} seed {seed}: training into {}",
                    arm.name,
                    run.root().display()
                );
                if let Err(e) = run_spec.train(&run, run.root().exists()) {
                    tracing::error!("{} seed {seed} failed: {e:#}", arm.name);
                    failed.push(format!("{} seed {seed}: {e:#}", arm.name));
                }
            }
        }
        failed
    }

    /// Every run folder of the spec that already holds a run must have been trained with what its
    /// arm says now: otherwise a finished run would be skipped and its old numbers reported under
    /// the arm's new settings (an interrupted one would be refused at resume anyway, but only after
    /// the arms before it trained). Only `epochs` may differ; the runner handles it. Checked before
    /// anything trains or a report is written, a report-only run included.
    fn refuse_changed_arms(&self, spec: &CompareSpec) -> anyhow::Result<()> {
        let mut changed = Vec::new();
        for arm in spec.runnable_arms() {
            for &seed in &spec.seeds {
                let run = spec.run_dir(self.runs_dir, arm, seed);
                let Ok(text) = std::fs::read_to_string(run.config()) else {
                    continue;
                };
                let Some(planned) = spec.run_spec(arm, seed) else {
                    continue;
                };
                let recorded: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", run.config().display()))?;
                let differences = ember_train::differing_fields(&recorded, &planned.config_json());
                if !differences.is_empty() {
                    let fields: Vec<String> = differences
                        .iter()
                        .map(|(field, change)| format!("{field}: {change}"))
                        .collect();
                    changed.push(format!(
                        "{} seed {seed} ({}): {}",
                        arm.name,
                        run.root().display(),
                        fields.join("; ")
                    ));
                }
            }
        }
        if !changed.is_empty() {
            bail!(
                "{}: {} run(s) were trained with other settings than their arm now asks for, so \
                 their numbers would be reported under the wrong settings; restore the arm, or move \
                 the run folder away to train it again:\n{}",
                self.spec_path.display(),
                changed.len(),
                changed.join("\n")
            );
        }
        Ok(())
    }
}

/// `experiments/X.toml` → `experiments/X/`: where a spec's report goes by default.
pub fn default_out(spec: &Path) -> PathBuf {
    let stem = spec
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    spec.parent().unwrap_or(Path::new(".")).join(stem)
}
