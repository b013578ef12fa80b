//! `ember bench`: performance figures measured side by side in one process (see
//! `ember_lab::tools::bench`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use ember_lab::tools::bench::{self, BenchModel, Sections};
use ember_train::DeviceChoice;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// End-to-end training throughput (batch assembly, forward, backward, Adam update) of each
    /// model on several devices.
    Devices(DeviceArgs),
    /// Every optimizer relative to burn's Adam on one device: the update of the per-parameter
    /// optimizers (time and state bytes per parameter), the whole step of the closure optimizers
    /// (time and passes per step).
    Optimizers(OptimizerArgs),
    /// Both of the above on each device, written as JSON and Markdown (e.g. experiments/bench.md).
    Report(ReportArgs),
    /// A model's training step part by part (SmallCnn's layers, or the transformer's down to
    /// attention's matmuls and softmax: forward and backward of each, the whole step's phases),
    /// beside PyTorch's profile of the same model when given one
    /// (experiments/cpu-profile/run_torch.sh writes it).
    Profile(ProfileArgs),
}

#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// Device to profile on.
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Model whose training step is profiled: small-cnn or transformer.
    #[arg(long, default_value = "small-cnn", value_parser = crate::flags::by_name::<BenchModel>)]
    pub model: BenchModel,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Timed repetitions of every part (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
    /// Untimed repetitions before them.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// PyTorch's profile of the same model (JSON from torch_profile.py), shown beside Ember's.
    #[arg(long)]
    pub torch: Option<PathBuf>,
    /// Render this saved Ember profile (a `--json` of an earlier run) instead of measuring.
    #[arg(long, conflicts_with = "json")]
    pub from: Option<PathBuf>,
    /// Write Ember's profile as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// What every benchmark measures on and how often, and where the report goes.
#[derive(Args, Debug)]
pub struct Settings {
    /// Models to time, comma separated: small-cnn, transformer.
    #[arg(
        long,
        value_parser = crate::flags::by_name::<BenchModel>,
        value_delimiter = ',',
        default_value = "small-cnn,transformer"
    )]
    pub models: Vec<BenchModel>,
    /// Images per step. Snapshot methods (SVRG, VAMO) see 4 such batches as the full data.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Timed steps per measurement (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed warm-up steps before them (kernel compilation, allocator growth).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Write the report as JSON here (set EMBER_COMMIT to record the commit measured).
    #[arg(long, alias = "out")]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// PyTorch's updates on SmallCnn measured on this machine, to show beside Ember's (the JSON
    /// of `experiments/kronecker-speed/anchor.py --json`).
    #[arg(long)]
    pub anchor: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// Devices to time, comma separated (e.g. flex,ndarray or flex,wgpu).
    #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
    pub devices: Vec<String>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Args, Debug)]
pub struct OptimizerArgs {
    /// Device to time on.
    #[arg(long, default_value = "flex")]
    pub device: String,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Devices to time, comma separated (e.g. flex or flex,wgpu).
    #[arg(long, alias = "device", value_delimiter = ',', default_value = "flex")]
    pub devices: Vec<String>,
    #[command(flatten)]
    pub settings: Settings,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    let (devices, settings, sections) = match &command {
        BenchCommand::Profile(args) => return profile(args),
        BenchCommand::Devices(a) => (
            a.devices.clone(),
            &a.settings,
            Sections {
                optimizers: false,
                end_to_end: true,
            },
        ),
        BenchCommand::Optimizers(a) => (
            vec![a.device.clone()],
            &a.settings,
            Sections {
                optimizers: true,
                end_to_end: false,
            },
        ),
        BenchCommand::Report(a) => (
            a.devices.clone(),
            &a.settings,
            Sections {
                optimizers: true,
                end_to_end: true,
            },
        ),
    };
    let devices = devices
        .iter()
        .map(|d| d.parse::<DeviceChoice>())
        .collect::<Result<Vec<_>, _>>()?;
    // Read the anchor first: a bad file is reported before minutes of timing, not after.
    let anchor = settings.anchor.as_deref().map(read_anchor).transpose()?;
    let mut report = bench::measure(
        &devices,
        &bench::Settings {
            models: settings.models.clone(),
            batch_size: settings.batch_size,
            steps: settings.steps,
            warmup: settings.warmup,
        },
        sections,
    )?;
    report.anchor = anchor;
    let markdown = bench::render_markdown(&report);
    println!("{markdown}");
    if let Some(path) = &settings.json {
        write(path, &serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(path) = &settings.markdown {
        write(path, markdown.as_bytes())?;
    }
    Ok(())
}

fn read_anchor(path: &Path) -> anyhow::Result<bench::Anchor> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not an anchor.py --json file", path.display()))
}

fn profile(args: &ProfileArgs) -> anyhow::Result<()> {
    // Read PyTorch's side first: a bad file is reported before minutes of timing, not after.
    let torch = args
        .torch
        .as_deref()
        .map(bench::profile::read_profile)
        .transpose()?;
    let ember = match &args.from {
        Some(path) => bench::profile::read_profile(path)?,
        None => bench::profile::profile(&bench::profile::ProfileSettings {
            device: args.device.parse()?,
            model: args.model,
            batch_size: args.batch_size,
            reps: args.reps,
            warmup: args.warmup,
        })?,
    };
    let markdown = bench::profile::render_profile(&ember, torch.as_ref());
    println!("{markdown}");
    if let Some(path) = &args.json {
        write(path, &serde_json::to_vec_pretty(&ember)?)?;
    }
    if let Some(path) = &args.markdown {
        write(path, markdown.as_bytes())?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    ember_train::write_atomically(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}
