//! `ember lr-find`: the learning-rate range test on the model, data and optimizer of an `ember
//! train` command line, and the PLRS bounds it suggests.

use std::path::PathBuf;

use clap::Args;
use ember_lab::report::provenance::shell_command;
use ember_lab::tools::lr_find::{round_significant, write_lr_find_data, write_lr_find_plot};
use ember_lab::{LrFindSettings, LrSuggestion, Prepared, SpecError};

use crate::flags::TrainFlags;
use ember_train::ImageClassification;

/// Options of `ember lr-find`: the run options of `ember train` (model, data, optimizer, device,
/// seed), plus the sweep's.
#[derive(Args, Debug, Clone)]
pub struct LrFindArgs {
    #[command(flatten)]
    pub train: TrainFlags,
    /// Where the default output folder goes.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Learning rate of the first step.
    #[arg(long, default_value_t = LrFindSettings::default().start_lr)]
    pub start_lr: f64,
    /// Learning rate of the last step (the rate grows geometrically in between).
    #[arg(long, default_value_t = LrFindSettings::default().end_lr)]
    pub end_lr: f64,
    /// Optimizer steps in the sweep; it stops earlier once the loss diverges.
    #[arg(long, default_value_t = LrFindSettings::default().steps)]
    pub steps: usize,
    /// β of the bias-corrected moving average that smooths the loss.
    #[arg(long, default_value_t = LrFindSettings::default().smoothing)]
    pub smoothing: f64,
    /// Stop once the smoothed loss exceeds this many times its lowest value.
    #[arg(long, default_value_t = LrFindSettings::default().divergence_factor)]
    pub divergence_factor: f64,
    /// Folder for lr_find.{csv,json,png} [default: <runs-dir>/lr-find-<optimizer>].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Flags of `ember lr-find` that `ember train` does not take, or that the suggested command sets
/// itself; left out of the printed command line.
const NOT_FOR_TRAIN: &[&str] = &[
    "--start-lr",
    "--end-lr",
    "--steps",
    "--smoothing",
    "--divergence-factor",
    "--out",
    "--scheduler",
    "--lr",
    "--min-lr",
    "--max-lr",
    "--lr-min",
    "--lr-max",
];

pub fn run(args: LrFindArgs) -> anyhow::Result<()> {
    let spec = args.train.run_spec()?;
    let optimizer_spec = &spec.optimizer;
    let Prepared {
        device_choice,
        device,
        data,
        model,
    } = spec.prepare()?;
    let settings = LrFindSettings {
        start_lr: args.start_lr,
        end_lr: args.end_lr,
        steps: args.steps,
        smoothing: args.smoothing,
        divergence_factor: args.divergence_factor,
    };
    settings.validate()?;
    let task = ImageClassification::new(
        &data,
        spec.train.batch_size,
        spec.train.eval_batch_size,
        spec.train.seed,
        &device,
    )
    .map_err(SpecError::from)?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.runs_dir
            .join(format!("lr-find-{}", optimizer_spec.name()))
    });
    tracing::info!(
        "lr-find: {} with {} on {device_choice}, lr {:e} → {:e} over {} steps of {} images; output in {}",
        spec.model.type_name(),
        optimizer_spec.name(),
        settings.start_lr,
        settings.end_lr,
        settings.steps,
        spec.train.batch_size,
        out.display()
    );

    let optimizer = optimizer_spec.build_rule(spec.train.batch_size)?;
    let curve = ember_lab::lr_find(model, optimizer, &task, &settings)?;
    let suggestion = curve.suggest();
    let config = serde_json::json!({
        "optimizer": optimizer_spec,
        "train_args": &args.train,
        "train_images": data.train.len(),
        "ember_version": env!("CARGO_PKG_VERSION"),
    });
    // The numbers first (files, then the printed suggestion), the plot last: a plot that cannot
    // be drawn (no font, say) is a warning, never a lost result.
    let mut files = write_lr_find_data(&out, &settings, &curve, suggestion.as_ref().ok(), &config)?;
    let suggestion = match suggestion {
        Ok(suggestion) => suggestion,
        Err(e) => {
            write_lr_find_plot(&mut files, &settings, &curve, None);
            return Err(anyhow::Error::new(e)
                .context(format!("the recorded curve is in {}", files.csv.display())));
        }
    };

    let last = curve.points.last().map_or(f64::NAN, |p| p.lr);
    println!(
        "lr-find: {} steps up to lr {last:.3e}{}; lowest smoothed loss {:.4} at lr {:.3e}; \
         suggested max_lr {}, min_lr {}; files in {}",
        curve.points.len(),
        if curve.stopped_early {
            " (stopped: the loss diverged)"
        } else {
            ""
        },
        suggestion.min_smoothed_loss,
        suggestion.lr_at_min_loss,
        round3(suggestion.max_lr),
        round3(suggestion.min_lr),
        out.display()
    );
    let raw: Vec<String> = std::env::args().collect();
    println!("{}", train_command(&raw, &suggestion));
    write_lr_find_plot(&mut files, &settings, &curve, Some(&suggestion));
    Ok(())
}

/// `ember train` with this invocation's model, data, optimizer and device flags and PLRS bounds from
/// `suggestion`, ready to paste.
fn train_command(raw_args: &[String], suggestion: &LrSuggestion) -> String {
    let mut words = vec!["ember", "train"];
    let mut args = raw_args
        .iter()
        .skip(1)
        .skip_while(|a| a.as_str() != "lr-find")
        .skip(1);
    while let Some(arg) = args.next() {
        let name = arg.split('=').next().unwrap_or(arg);
        if NOT_FOR_TRAIN.contains(&name) {
            if !arg.contains('=') {
                args.next(); // its value
            }
            continue;
        }
        words.push(arg);
    }
    let (min_lr, max_lr) = (round3(suggestion.min_lr), round3(suggestion.max_lr));
    words.extend([
        "--scheduler",
        "plrs",
        "--min-lr",
        &min_lr,
        "--max-lr",
        &max_lr,
    ]);
    shell_command(words)
}

/// `v` to 3 significant digits, as short as possible.
fn round3(v: f64) -> String {
    round_significant(v, 3).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion() -> LrSuggestion {
        LrSuggestion {
            lr_at_min_loss: 0.2,
            step_at_min_loss: 10,
            min_smoothed_loss: 1.0,
            max_lr: 0.1234567,
            min_lr: 0.0864197,
        }
    }

    #[test]
    fn the_printed_command_keeps_train_flags_and_sets_plrs() {
        let raw: Vec<String> = [
            "/x/ember",
            "lr-find",
            "--dataset",
            "cifar10",
            "--steps",
            "100",
            "--end-lr=5",
            "--momentum",
            "0",
            "--lr",
            "0.1",
            "--runs-dir",
            "my runs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            train_command(&raw, &suggestion()),
            "ember train --dataset cifar10 --momentum 0 --runs-dir 'my runs' --scheduler plrs \
             --min-lr 0.0864 --max-lr 0.123"
        );
    }
}
