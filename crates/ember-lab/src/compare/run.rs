//! Running an experiment: every arm for every seed (finished runs skipped, interrupted ones
//! resumed), then its report.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ember_train::{write_atomically, RunDir};

use super::sweep::{self, ArmSweep, Setting};
use super::{
    archive_runs, archived_runs, collect_results, render_results, write_plots, write_results_json,
    ArmSpec, CompareSpec,
};
use crate::spec::AnyRunSpec;

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
    /// The report, `results.md` in the output folder.
    pub results: PathBuf,
    /// Every plot written: the arms' curves, and the sweep's sensitivity plot when there is one
    /// (a plot that could not be drawn is left out).
    pub plots: Vec<PathBuf>,
}

impl Experiment<'_> {
    /// Trains what is missing (nothing with `report_only`), then writes the report from the runs
    /// that finished and keeps their small files beside it. A run that fails is reported at the
    /// end, after the others ran and the report was written. With `report_only` and no runs of
    /// the spec under `runs_dir`, the report is re-rendered from the runs kept beside it.
    pub fn run(&self, report_only: bool) -> anyhow::Result<Written> {
        let spec = CompareSpec::load(self.spec_path)?;
        let kept = archived_runs(self.out);
        let runs_dir = if report_only
            && !self.runs_dir.join(&spec.name).is_dir()
            && kept.join(&spec.name).is_dir()
        {
            tracing::info!(
                "no runs of `{}` under {}: reporting the runs kept in {}",
                spec.name,
                self.runs_dir.display(),
                kept.display()
            );
            kept.as_path()
        } else {
            self.runs_dir
        };
        let this = Experiment {
            spec_path: self.spec_path,
            runs_dir,
            out: self.out,
        };
        this.run_from(&spec, report_only)
    }

    fn run_from(&self, spec: &CompareSpec, report_only: bool) -> anyhow::Result<Written> {
        // A sweep's trials first: their choice is what the final runs train with.
        if spec.sweep.is_some() {
            self.refuse_changed(&self.planned_trials(spec)?)?;
        }
        let sweeps = self.sweeps(spec, !report_only)?;
        let settings = chosen_settings(spec, sweeps.as_deref());
        self.refuse_changed(&self.planned_finals(spec, &settings)?)?;
        let failed = if report_only {
            Vec::new()
        } else {
            self.train_missing(spec, &settings)
        };
        let written = self.write_report(spec, sweeps.as_deref())?;
        if !failed.is_empty() {
            bail!("{} run(s) failed:\n{}", failed.len(), failed.join("\n"));
        }
        Ok(written)
    }

    /// Every arm's trials (training the missing ones when `train`), when the spec has a sweep.
    pub(super) fn sweeps(
        &self,
        spec: &CompareSpec,
        train: bool,
    ) -> anyhow::Result<Option<Vec<ArmSweep>>> {
        let Some(section) = &spec.sweep else {
            return Ok(None);
        };
        let mut sweeps = Vec::new();
        for (i, arm) in spec.arms.iter().enumerate() {
            sweeps.push(if arm.choice.is_some() && arm.pending.is_none() {
                sweep::run_trials(spec, section, self.runs_dir, arm, i, train)?
            } else {
                ArmSweep {
                    arm: arm.name.clone(),
                    trials: Vec::new(),
                    chosen: None,
                }
            });
        }
        Ok(Some(sweeps))
    }

    /// The commit and machine the report names: this process's, except when the report is
    /// re-rendered from the runs kept beside an earlier one — those numbers were measured where
    /// that report says, so its `results.json`'s commit and machine stay (a re-render on another
    /// machine must not claim to have measured them, and re-renders stay identical).
    fn provenance(&self) -> (String, String) {
        let previous = || -> Option<(String, String)> {
            let text = std::fs::read_to_string(self.out.join("results.json")).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            let field = |name: &str| json.get(name)?.as_str().map(str::to_string);
            Some((field("commit")?, field("machine")?))
        };
        if self.runs_dir == archived_runs(self.out) {
            if let Some(kept) = previous() {
                return kept;
            }
        }
        (
            crate::report::provenance::commit(),
            crate::report::provenance::machine(),
        )
    }

    /// `results.md`, `results.json`, the plots and the runs' small files, from the runs that
    /// finished.
    pub(super) fn write_report(
        &self,
        spec: &CompareSpec,
        sweeps: Option<&[ArmSweep]>,
    ) -> anyhow::Result<Written> {
        let (commit, machine) = self.provenance();
        let results = collect_results(spec, self.runs_dir, sweeps, commit, machine)?;
        std::fs::create_dir_all(self.out)
            .with_context(|| format!("creating {}", self.out.display()))?;
        archive_runs(self.runs_dir, &spec.name, self.out)?;
        write_results_json(&results, self.out)?;
        let mut markdown = render_results(spec, self.spec_path, &results);
        if let (Some(section), Some(sweeps)) = (&spec.sweep, sweeps) {
            markdown += "\n";
            markdown += &sweep::render(spec, section, sweeps);
        }
        let results_path = self.out.join("results.md");
        write_atomically(&results_path, markdown.as_bytes())
            .with_context(|| format!("writing {}", results_path.display()))?;
        let mut plots = write_plots(spec, &results, self.out);
        if let Some(sweeps) = sweeps {
            plots.extend(sweep::write_sensitivity_plot(spec, sweeps, self.out));
        }
        Ok(Written {
            results: results_path,
            plots,
        })
    }

    /// Trains every final run that has not finished the spec's budget; returns what failed.
    fn train_missing(&self, spec: &CompareSpec, settings: &[Option<Setting>]) -> Vec<String> {
        let mut failed = Vec::new();
        for (arm, setting) in spec.arms.iter().zip(settings) {
            if arm.pending.is_some() {
                continue;
            }
            let Some(setting) = setting else {
                let message = format!("{}: no trial finished, so no final runs", arm.name);
                tracing::error!("{message}");
                failed.push(message);
                continue;
            };
            for &seed in &spec.seeds {
                if let Err(message) = self.train_final(spec, arm, seed, setting) {
                    tracing::error!("{message}");
                    failed.push(message);
                }
            }
        }
        failed
    }

    /// Trains (or resumes) the final run of `arm` with `seed`, unless it finished the spec's
    /// budget already; the error says which run and why.
    pub(super) fn train_final(
        &self,
        spec: &CompareSpec,
        arm: &ArmSpec,
        seed: u64,
        setting: &Setting,
    ) -> Result<(), String> {
        let run = spec.run_dir(self.runs_dir, arm, seed);
        match final_state(spec, &run) {
            FinalState::Finished => {
                tracing::info!("{} seed {seed}: finished earlier, skipped", arm.name);
                return Ok(());
            }
            FinalState::Longer(rounds) => {
                // Resuming would rewrite its summary for a model trained longer.
                return Err(format!(
                    "{} seed {seed}: {} finished {rounds} {} but the spec asks for {}; \
                     left as it is (move the folder away to train it again)",
                    arm.name,
                    run.root().display(),
                    spec.train.round_name(),
                    spec.train.rounds()
                ));
            }
            FinalState::ToTrain => {}
        }
        // A final run that cannot be built is a failure the caller sees, never a gap in the
        // report.
        let run_spec = spec
            .run_spec(arm, seed, setting)
            .map_err(|e| format!("{} seed {seed}: {e:#}", arm.name))?;
        tracing::info!(
            "{} seed {seed}: training into {}",
            arm.name,
            run.root().display()
        );
        run_spec
            .train(&run, run.root().exists())
            .map(|_| ())
            .map_err(|e| format!("{} seed {seed} failed: {e:#}", arm.name))
    }

    /// Every trial of a sweep, with the run it is.
    pub(super) fn planned_trials(
        &self,
        spec: &CompareSpec,
    ) -> anyhow::Result<Vec<(String, RunDir, AnyRunSpec)>> {
        let Some(section) = &spec.sweep else {
            return Ok(Vec::new());
        };
        let mut planned = Vec::new();
        for (index, arm) in spec.arms.iter().enumerate() {
            if arm.choice.is_none() || arm.pending.is_some() {
                continue;
            }
            for (k, setting) in sweep::arm_settings(section, arm, index).iter().enumerate() {
                planned.push((
                    format!("{} trial {k}", arm.name),
                    sweep::trial_dir(spec, self.runs_dir, arm, k),
                    spec.trial_spec(arm, setting)?,
                ));
            }
        }
        Ok(planned)
    }

    /// Every final run (arm × seed) whose setting is known, with the run it is.
    pub(super) fn planned_finals(
        &self,
        spec: &CompareSpec,
        settings: &[Option<Setting>],
    ) -> anyhow::Result<Vec<(String, RunDir, AnyRunSpec)>> {
        let mut planned = Vec::new();
        for (arm, setting) in spec.arms.iter().zip(settings) {
            let Some(setting) = setting.as_ref().filter(|_| arm.pending.is_none()) else {
                continue;
            };
            for &seed in &spec.seeds {
                planned.push((
                    format!("{} seed {seed}", arm.name),
                    spec.run_dir(self.runs_dir, arm, seed),
                    spec.run_spec(arm, seed, setting)?,
                ));
            }
        }
        Ok(planned)
    }

    /// Every run folder that already holds a run must have been trained with what the spec asks of
    /// it now: otherwise a finished run would be skipped and its old numbers reported under the
    /// arm's new settings (an interrupted one would be refused at resume anyway, but only after
    /// the runs before it trained). Only `epochs` may differ; the runner handles it. Checked
    /// before anything trains or a report is written, a report-only run included.
    pub(super) fn refuse_changed(
        &self,
        planned: &[(String, RunDir, AnyRunSpec)],
    ) -> anyhow::Result<()> {
        let mut changed = Vec::new();
        for (what, run, planned) in planned {
            let Ok(text) = std::fs::read_to_string(run.config()) else {
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
                    "{what} ({}): {}",
                    run.root().display(),
                    fields.join("; ")
                ));
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

/// Where a final run stands against the spec's budget (epochs, or evaluation rounds of steps).
pub(super) enum FinalState {
    Finished,
    /// Finished more rounds than the spec asks for: never rewritten.
    Longer(usize),
    ToTrain,
}

pub(super) fn final_state(spec: &CompareSpec, run: &RunDir) -> FinalState {
    let rounds = spec.train.rounds();
    match run.finished_rounds() {
        Some(done) if done == rounds => FinalState::Finished,
        Some(done) if done > rounds => FinalState::Longer(done),
        _ => FinalState::ToTrain,
    }
}

/// Per arm the setting its finals train with: the sweep's choice (`None` while no trial
/// finished), or the arm as written without a sweep.
pub(super) fn chosen_settings(
    spec: &CompareSpec,
    sweeps: Option<&[ArmSweep]>,
) -> Vec<Option<Setting>> {
    match sweeps {
        Some(sweeps) => sweeps.iter().map(|s| s.chosen_setting().cloned()).collect(),
        None => vec![Some(Setting::new()); spec.arms.len()],
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
