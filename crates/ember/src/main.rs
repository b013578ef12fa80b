//! `ember`: train and compare optimizers on burn from the command line.

mod bench;
mod compare;
mod lr_find;
mod plot;
mod study;
mod train;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Train and compare optimizers on burn 0.22.
///
/// Start with `ember train`: it trains SmallCnn on a generated data set on the CPU in a few minutes
/// and prints the test accuracy. Every run writes runs/<name>/{config.json, metrics.jsonl,
/// summary.json, checkpoints/}.
#[derive(Parser, Debug)]
#[command(name = "ember", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model on a data set with one optimizer; prints the test accuracy.
    Train(Box<train::TrainArgs>),
    /// Learning-rate range test: train while the lr grows geometrically, record the loss, and
    /// suggest PLRS bounds (--lr-min, --lr-max). Takes every option of `ember train`.
    LrFind(Box<lr_find::LrFindArgs>),
    /// Run an experiment spec (experiments/*.toml): every arm for every seed (finished runs are
    /// skipped, interrupted ones resumed), then results.md and plots with the spread over seeds.
    Compare(compare::CompareArgs),
    /// Plot one metric of several runs (from their metrics.jsonl) into a .png or .svg.
    Plot(plot::PlotArgs),
    /// Performance figures measured side by side in one process: every optimizer relative to
    /// burn's Adam on SmallCnn and the two-layer transformer, end-to-end images/s per device;
    /// `bench report` writes them as JSON and Markdown.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Studies that check a paper's claims on its own synthetic model (signgd).
    #[command(subcommand)]
    Study(study::StudyCommand),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let result = match Cli::parse().command {
        Command::Train(args) => train::run(*args),
        Command::LrFind(args) => lr_find::run(*args),
        Command::Compare(args) => compare::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Study(args) => study::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", error_report(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, one per line, leaving out a cause whose text the line before already
/// quotes (our error messages include their source's message, so that they read well alone).
fn error_report(error: &anyhow::Error) -> String {
    let mut report = format!("Error: {error}");
    let mut previous = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !previous.contains(&text) {
            report += &format!("\n  caused by: {text}");
        }
        previous = text;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_report_skips_causes_already_quoted() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(io)
            .context("cannot access data.bin: no such file")
            .context("loading data set `cifar10`");
        assert_eq!(
            error_report(&error),
            "Error: loading data set `cifar10`\n  caused by: cannot access data.bin: no such file"
        );
    }
}
