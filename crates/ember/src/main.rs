//! `ember`: train and compare optimizers on burn from the command line. One module per command;
//! each holds its clap options and calls `ember-lab` / `ember-train` for the work.

mod bench;
mod compare;
mod flags;
mod lr_find;
mod plot;
mod sample;
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
    /// suggest PLRS bounds (--min-lr, --max-lr). Takes the run options of `ember train`.
    LrFind(Box<lr_find::LrFindArgs>),
    /// Run an experiment spec (experiments/*.toml): every arm for every seed (finished runs are
    /// skipped, interrupted ones resumed), then results.md and plots with the spread over seeds.
    ///
    /// A spec with a [sweep] section tunes every arm first: each arm's `search` knobs (a grid,
    /// tried exhaustively, or a log-uniform range, sampled) are tried for `trials` runs on a
    /// validation split (held out of the training images, or a text's validation documents), the
    /// best by the validation metric is chosen, and only then do the finals train that setting on
    /// every seed and read the test set. The report states that budget and warns when arms got
    /// unequal ones or a choice sits at the edge of its searched space; with `reference = "ARM"`
    /// it gives every arm's difference to that arm with a 95 % interval and a p-value (paired by
    /// seed), and with `target` the steps and seconds each arm took to reach it.
    Compare(compare::CompareArgs),
    /// Text generated from a language-modelling run's newest checkpoint (`ember train --text`).
    Sample(sample::SampleArgs),
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

/// The log filter when `RUST_LOG` is unset: Ember's own progress (info) and everyone's warnings,
/// but not the info chatter of the libraries underneath (burn and cubecl's kernel autotuner log
/// every tuning decision, "Tuning MatmulAutotuneKey …", at info level).
const DEFAULT_LOG_FILTER: &str =
    "warn,ember=info,ember_lab=info,ember_train=info,ember_data=info,ember_models=info,ember_optim=info";

fn main() -> std::process::ExitCode {
    // First, before any thread or GPU device exists.
    ensure_xdg_runtime_dir();
    // Freed tensor buffers stay in the process for the next step instead of being mapped anew.
    ember_kernels::allocator::reuse_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER)),
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
        Command::Sample(args) => sample::run(args),
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

/// Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on every start when the
/// variable is unset (containers, cron, ssh without a login session). When it is unset, point it at
/// a private folder (mode 0700, owned by this user) under the temporary folder, creating it; when
/// that cannot be done, leave the variable alone. Must run while the process is single-threaded.
fn ensure_xdg_runtime_dir() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty()) {
        return;
    }
    if let Some(dir) = private_runtime_dir(&std::env::temp_dir()) {
        std::env::set_var("XDG_RUNTIME_DIR", dir);
    }
}

/// `<tmp>/ember-runtime-<uid>`, created with mode 0700; an existing one is used only when it is a
/// real folder (not a link) owned by this user and closed to others.
#[cfg(unix)]
fn private_runtime_dir(tmp: &std::path::Path) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let dir = tmp.join(format!("ember-runtime-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    let private = meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0;
    private.then_some(dir)
}

#[cfg(not(unix))]
fn private_runtime_dir(_tmp: &std::path::Path) -> Option<std::path::PathBuf> {
    None
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
    fn the_default_filter_keeps_embers_info_and_drops_the_libraries_info() {
        use tracing_subscriber::layer::SubscriberExt;
        // Records what reaches the output through the default filter.
        #[derive(Clone, Default)]
        struct Seen(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let meta = event.metadata();
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", meta.level(), meta.target()));
            }
        }
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new(DEFAULT_LOG_FILTER))
            .with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "ember::train", "epoch 1/3");
            tracing::info!(target: "ember_train::trainer", "resuming");
            tracing::warn!(target: "ember_train::trainer", "skipping damaged checkpoint");
            // What the autotuner logs through the `log` facade arrives with its module as target.
            tracing::info!(target: "cubecl_runtime::tune::tuner", "Tuning MatmulAutotuneKey");
            tracing::info!(target: "burn_cubecl::kernel", "chatter");
            tracing::info!(target: "wgpu_core::instance", "adapter");
            tracing::warn!(target: "cubecl_runtime::tune::tuner", "a real problem");
        });
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                "INFO ember::train",
                "INFO ember_train::trainer",
                "WARN ember_train::trainer",
                "WARN cubecl_runtime::tune::tuner",
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_runtime_dir_is_private_and_a_foreign_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = private_runtime_dir(tmp.path()).expect("created");
        assert!(dir.starts_with(tmp.path()));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        assert_eq!(private_runtime_dir(tmp.path()), Some(dir.clone()), "reused");
        // Opened up to others (or planted by someone else): not used.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(private_runtime_dir(tmp.path()), None);
    }

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
