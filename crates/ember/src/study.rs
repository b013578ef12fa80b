//! `ember study`: the studies that reproduce a paper's claims on its own synthetic model.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use ember_lab::tools::signgd_study::write_report;
use ember_lab::{run_signgd_study, SignGdStudyConfig, StudyArm};
use ember_train::DeviceChoice;

#[derive(Subcommand, Debug)]
pub enum StudyCommand {
    /// SignGD vs Adam vs GD on the one-layer attention model and signal–noise data of Li et al.
    /// (ICLR 2025): per-step probes to JSONL, the four stages detected, plots and results.md.
    Signgd(SignGdArgs),
}

/// Options of `ember study signgd`; the defaults are the settings of experiments/signgd/.
#[derive(Args, Debug)]
pub struct SignGdArgs {
    /// Folder for the plots, results.md and summary.json.
    #[arg(long, default_value = "experiments/signgd")]
    pub out: PathBuf,
    /// Folder for the per-step probe logs (<snr>/<arm>.jsonl; several MB per run).
    #[arg(long, default_value = "runs/signgd-study")]
    pub traces_dir: PathBuf,
    /// Signal-to-noise ratios ‖μ‖/(σ_p √s), comma separated; every arm runs at each.
    #[arg(long, value_delimiter = ',', default_value = "1.0,0.25")]
    pub snr: Vec<f64>,
    /// Full-batch steps per run (the paper's figures span 900).
    #[arg(long, default_value_t = 900)]
    pub steps: usize,
    /// Patch dimension d.
    #[arg(long, default_value_t = 2000)]
    pub dim: usize,
    /// Training samples n.
    #[arg(long, default_value_t = 32)]
    pub train_size: usize,
    /// Fresh test samples.
    #[arg(long, default_value_t = 1000)]
    pub test_size: usize,
    /// Non-zero noise coordinates s per sample.
    #[arg(long, default_value_t = 40)]
    pub noise_nonzeros: usize,
    /// ‖μ‖.
    #[arg(long, default_value_t = 1.0)]
    pub signal_norm: f64,
    /// m_k, rows of W_Q and W_K.
    #[arg(long, default_value_t = 10)]
    pub key_width: usize,
    /// m_v, rows of each value matrix.
    #[arg(long, default_value_t = 10)]
    pub value_width: usize,
    /// σ₀ of the N(0, σ₀²) initialisation.
    #[arg(long, default_value_t = 0.01)]
    pub init_std: f64,
    /// SignGD learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr_signgd: f64,
    /// Learning rate of both Adam arms.
    #[arg(long, default_value_t = 1e-3)]
    pub lr_adam: f64,
    /// β₁ = β₂ of the small-β Adam arm.
    #[arg(long, default_value_t = 0.5)]
    pub small_beta: f64,
    /// GD learning rate.
    #[arg(long, default_value_t = 1.0)]
    pub lr_gd: f64,
    /// Seeds the data and the initial weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device: flex, ndarray, wgpu or wgpu:N.
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn signgd(args: SignGdArgs) -> anyhow::Result<()> {
    let choice: DeviceChoice = args.device.parse()?;
    choice.pin_as_default();
    let config = SignGdStudyConfig {
        dim: args.dim,
        train_size: args.train_size,
        test_size: args.test_size,
        noise_nonzeros: args.noise_nonzeros,
        signal_norm: args.signal_norm,
        snrs: args.snr,
        key_width: args.key_width,
        value_width: args.value_width,
        init_std: args.init_std,
        steps: args.steps,
        seed: args.seed,
        arms: StudyArm::paper_arms(args.lr_signgd, args.lr_adam, args.small_beta, args.lr_gd),
    };
    let device = choice.device()?;
    tracing::info!(
        "SignGD study: {} arms x {} SNRs x {} steps on {choice}, traces in {}",
        config.arms.len(),
        config.snrs.len(),
        config.steps,
        args.traces_dir.display()
    );
    let runs = run_signgd_study(&config, &device, &args.traces_dir, !args.quiet)?;
    let files = write_report(&config, &runs, &args.out)
        .with_context(|| format!("writing the report into {}", args.out.display()))?;
    for run in &runs {
        let s = &run.stages;
        println!(
            "SNR {:<5} {:<16} stages I {:?} II {:?} III {:?} IV {:?} in order: {}; loss rate {}; test loss {:.3}, accuracy {:.1}%",
            run.snr,
            run.arm,
            s.value_noise_settled,
            s.noise_signs_aligned,
            s.signal_signs_fixed,
            s.noise_to_signal_attention_vanished,
            s.in_order,
            run.loss_rate.verdict,
            run.last().test_loss,
            100.0 * run.last().test_accuracy
        );
    }
    println!("wrote {} files into {}", files.len(), args.out.display());
    Ok(())
}

pub fn run(command: StudyCommand) -> anyhow::Result<()> {
    match command {
        StudyCommand::Signgd(args) => signgd(args),
    }
}
