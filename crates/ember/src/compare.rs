//! `ember compare SPEC.toml`: trains every arm of an experiment spec for every seed, resuming what
//! was interrupted and skipping what finished, then writes `results.md` and plots.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser};
use ember_train::{
    collect_results, render_results, write_atomically, write_plots, ArmSpec, CompareSpec,
};

use crate::train::{self, TrainArgs};

/// Options of `ember compare`.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// The experiment spec (TOML; see experiments/*.toml).
    pub spec: PathBuf,
    /// Where run folders go: <runs-dir>/<spec name>/<arm>-s<seed>/.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Where results.md and the plots go [default: beside the spec, in a folder named after it:
    /// experiments/X.toml → experiments/X/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train nothing; rewrite the report from the runs that finished.
    #[arg(long)]
    pub report_only: bool,
}

/// `ember train`'s flags, parsed from an arm's argument list.
#[derive(Parser, Debug)]
#[command(name = "ember train")]
struct TrainFlags {
    #[command(flatten)]
    args: TrainArgs,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let spec = CompareSpec::load(&args.spec)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.spec));
    refuse_changed_arms(&spec, &args)?;
    let mut failed = Vec::new();
    if !args.report_only {
        for arm in spec.runnable_arms() {
            for &seed in &spec.seeds {
                let run = spec.run_dir(&args.runs_dir, arm, seed);
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
                let mut flags = arm_flags(&spec, arm, seed, &args)?;
                flags.args.resume = run.root().exists();
                tracing::info!(
                    "{} seed {seed}: training into {}",
                    arm.name,
                    run.root().display()
                );
                if let Err(e) = train::run(flags.args) {
                    tracing::error!("{} seed {seed} failed: {e:#}", arm.name);
                    failed.push(format!("{} seed {seed}: {e:#}", arm.name));
                }
            }
        }
    }

    let results = collect_results(&spec, &args.runs_dir)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let provenance = format!("commit {}", commit());
    let markdown = render_results(&spec, &args.spec, &results, &provenance);
    let results_path = out.join("results.md");
    write_atomically(&results_path, markdown.as_bytes())
        .with_context(|| format!("writing {}", results_path.display()))?;
    let plots = write_plots(&spec, &results, &out)?;
    println!(
        "wrote {} and {} plots in {}",
        results_path.display(),
        plots.len(),
        out.display()
    );
    if !failed.is_empty() {
        bail!("{} run(s) failed:\n{}", failed.len(), failed.join("\n"));
    }
    Ok(())
}

/// Every run folder of the spec that already holds a run must have been trained with what its arm
/// says now: otherwise a finished run would be skipped and its old numbers reported under the arm's
/// new flags (an interrupted one would be refused at resume anyway, but only after the arms before
/// it trained). Only `epochs` may differ; the runner handles it. Checked before anything trains
/// or a report is written, `--report-only` included.
fn refuse_changed_arms(spec: &CompareSpec, args: &CompareArgs) -> anyhow::Result<()> {
    let mut changed = Vec::new();
    for arm in spec.runnable_arms() {
        for &seed in &spec.seeds {
            let run = spec.run_dir(&args.runs_dir, arm, seed);
            let Ok(text) = std::fs::read_to_string(run.config()) else {
                continue;
            };
            let recorded: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", run.config().display()))?;
            let flags = arm_flags(spec, arm, seed, args)?;
            let planned = train::planned_config(&flags.args)
                .with_context(|| format!("{}: arm `{}`", args.spec.display(), arm.name))?;
            let differences = ember_train::differing_fields(&recorded, &planned);
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
            "{}: {} run(s) were trained with other settings than their arm now asks for, so their \
             numbers would be reported under the wrong flags; restore the arm, or move the run \
             folder away to train it again:\n{}",
            args.spec.display(),
            changed.len(),
            changed.join("\n")
        );
    }
    Ok(())
}

/// The `ember train` flags of one arm and seed, parsed.
fn arm_flags(
    spec: &CompareSpec,
    arm: &ArmSpec,
    seed: u64,
    args: &CompareArgs,
) -> anyhow::Result<TrainFlags> {
    let mut argv = spec.train_args(arm, seed, &args.runs_dir);
    argv.push("--quiet".into());
    TrainFlags::try_parse_from(std::iter::once("ember train".to_string()).chain(argv))
        .with_context(|| format!("{}: arm `{}`: bad flags", args.spec.display(), arm.name))
}

/// `experiments/X.toml` → `experiments/X/`.
fn default_out(spec: &Path) -> PathBuf {
    let stem = spec
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    spec.parent().unwrap_or(Path::new(".")).join(stem)
}

/// The commit the report describes: `EMBER_COMMIT`, else `git rev-parse --short HEAD`.
fn commit() -> String {
    if let Ok(c) = std::env::var("EMBER_COMMIT") {
        return c;
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
