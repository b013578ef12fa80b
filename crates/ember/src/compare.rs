//! `ember compare SPEC.toml`: trains every arm of an experiment spec for every seed, resuming what
//! was interrupted and skipping what finished, then writes `results.md` and plots.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ember_lab::compare::{default_out, Experiment, Shard, WorkerOptions};

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
    /// Train nothing; rewrite the report from the runs that finished (from the runs kept beside
    /// the report when --runs-dir has none).
    #[arg(long, conflicts_with_all = ["worker", "shard"])]
    pub report_only: bool,
    /// Be one of many workers on this experiment (processes on one machine or many sharing
    /// --runs-dir): claim a run nobody holds, train it, repeat; the worker that finishes the last
    /// run writes the report.
    #[arg(long)]
    pub worker: bool,
    /// Work only on every N-th run of the plan, starting at the I-th (1-based; e.g. a Slurm array
    /// task id): `--shard 2/4`. Implies --worker, on the same claims.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Seconds a worker's claim lasts without renewal: how long a crashed worker's run waits
    /// before another worker takes it over (renewed every quarter of it).
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    pub lease: f64,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.spec));
    let experiment = Experiment {
        spec_path: &args.spec,
        runs_dir: &args.runs_dir,
        out: &out,
    };
    if args.worker || args.shard.is_some() {
        if !(args.lease.is_finite() && args.lease >= 1.0) {
            anyhow::bail!("--lease {}: must be at least 1 second", args.lease);
        }
        let options = WorkerOptions {
            shard: args.shard,
            lease: Duration::from_secs_f64(args.lease),
        };
        match experiment.work(&options)? {
            Some(written) => println!(
                "wrote {} and {} plots in {}",
                written.results.display(),
                written.plots.len(),
                out.display()
            ),
            None => println!("nothing left for this worker; the report is another worker's"),
        }
        return Ok(());
    }
    let written = experiment.run(args.report_only)?;
    println!(
        "wrote {} and {} plots in {}",
        written.results.display(),
        written.plots.len(),
        out.display()
    );
    Ok(())
}
