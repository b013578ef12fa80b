//! `ember train`: one run from the command line.

use std::path::PathBuf;

use crate::flags::{TextFlags, TrainFlags};
use anyhow::bail;
use clap::Args;
use ember_train::RunDir;

/// Options of `ember train`: the run ([`TrainFlags`]) and its folder.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub flags: TrainFlags,
    /// Language modelling (`--text PATH` and its options).
    #[command(flatten)]
    pub text: TextFlags,
    /// Name of the run folder under --runs-dir [default: <dataset>-<optimizer>-<unix time>]: one
    /// folder name (letters, digits, -, _, .), never a path.
    #[arg(long)]
    pub run_name: Option<String>,
    /// Where run folders are created.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Continue the run named --run-name from its newest good checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// --text: before training, write the run's replay kit into DIR (initial weights, token
    /// splits, every step's windows and learning rate), from which another implementation trains
    /// the same run step for step (experiments/shakespeare/torch_anchor.py).
    #[arg(long, value_name = "DIR")]
    pub replay_kit: Option<PathBuf>,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.run_name {
        if !ember_train::is_folder_name(name) {
            bail!(
                "--run-name {name:?}: a run's name is one folder name (letters, digits, -, _, .), \
                 not a path; the run folder goes under --runs-dir ({})",
                args.runs_dir.display()
            );
        }
    }
    if args.resume {
        // Before loading any data: a misspelt run name is named with the runs that do exist.
        let Some(name) = &args.run_name else {
            let runs = ember_train::existing_runs(&args.runs_dir);
            bail!(
                "--resume needs --run-name NAME (the run to continue); runs in {}: {}",
                args.runs_dir.display(),
                if runs.is_empty() {
                    "none".into()
                } else {
                    runs.join(", ")
                }
            );
        };
        RunDir::new(args.runs_dir.join(name)).ensure_resumable()?;
    }
    if args.text.text.is_some() {
        return train_text(&args);
    }
    if args.replay_kit.is_some() {
        bail!("--replay-kit records a language-modelling run: it needs --text PATH");
    }
    let spec = args.flags.run_spec()?;
    let run_name = args.run_name.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let data = args.flags.dataset.split(':').next().unwrap_or("data");
        format!("{data}-{}-{secs}", spec.optimizer.name())
    });
    let run = RunDir::new(args.runs_dir.join(&run_name));
    let summary = spec.train(&run, args.resume)?;
    let split = summary.final_eval.split;
    println!(
        "{split} accuracy: {:.2}% (best {:.2}%), {split} loss {:.4}, {:.1} train images/s, {:.0}s, {:.2} forward + {:.2} backward passes/step; run folder {}",
        100.0 * summary.final_value(),
        100.0 * summary.best_value,
        summary.final_eval.loss,
        summary.items_per_s,
        summary.wall_time_s,
        summary.forward_passes_per_step,
        summary.backward_passes_per_step,
        run.root().display()
    );
    Ok(())
}

/// `ember train --text PATH`: a language model.
fn train_text(args: &TrainArgs) -> anyhow::Result<()> {
    let spec = args.text.run_spec(&args.flags)?;
    let run_name = args.run_name.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("text-{}-{secs}", spec.optimizer.name())
    });
    if let Some(dir) = &args.replay_kit {
        let kit = ember_lab::tools::replay::write_replay(&spec, dir)?;
        println!(
            "replay kit: {} parameters, {} steps, {} train and {} evaluation tokens in {}",
            kit.parameters,
            kit.steps,
            kit.train_tokens,
            kit.eval_tokens,
            dir.display()
        );
    }
    let run = RunDir::new(args.runs_dir.join(&run_name));
    let summary = spec.train(&run, args.resume)?;
    let eval = &summary.final_eval;
    let bits = eval
        .metrics
        .iter()
        .find(|(k, _)| k.starts_with("bits_per_"))
        .map(|(k, v)| format!("{v:.4} {}", k.replace('_', " ")))
        .unwrap_or_default();
    println!(
        "{} loss: {:.4} (best {:.4}), {bits}, perplexity {:.2}, {:.0} train tokens/s, {:.0}s; run folder {}",
        eval.split,
        eval.loss,
        summary.best_value,
        eval.metric("perplexity").unwrap_or(f64::NAN),
        summary.items_per_s,
        summary.wall_time_s,
        run.root().display()
    );
    Ok(())
}
