//! `ember compare SPEC.toml`: trains every arm of an experiment spec for every seed, resuming what
//! was interrupted and skipping what finished, then writes `results.md` and plots.

use std::path::PathBuf;

use clap::Args;
use ember_lab::compare::{default_out, Experiment};

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

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.spec));
    let written = Experiment {
        spec_path: &args.spec,
        runs_dir: &args.runs_dir,
        out: &out,
    }
    .run(args.report_only)?;
    println!(
        "wrote {} and {} plots in {}",
        written.results.display(),
        written.plots.len(),
        out.display()
    );
    Ok(())
}
