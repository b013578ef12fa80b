//! `ember bench`: performance figures measured side by side in one process, so that ratios are
//! robust to a noisy machine.
//!
//! [`workload`] sets up a model on a device with a few batches of generated images, [`measure`]
//! times optimizer updates, closure optimizers' whole steps and end-to-end training on it, and
//! [`report`] collects the numbers and renders them as Markdown.

mod measure;
mod report;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ember_train::DeviceChoice;

use report::{BenchReport, ModelInfo, NotMeasured};
use workload::{BenchModel, Workload, FULL_DATA_BATCHES};

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
}

/// What every benchmark measures on and how often.
#[derive(Args, Debug)]
pub struct Settings {
    /// Models to time, comma separated.
    #[arg(
        long,
        value_enum,
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

/// Which measurements a subcommand runs.
#[derive(Clone, Copy)]
struct Sections {
    optimizers: bool,
    end_to_end: bool,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    let (devices, settings, sections) = match &command {
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
    let report = measure(&devices, settings, sections)?;
    let markdown = report::render_markdown(&report);
    println!("{markdown}");
    if let Some(path) = &settings.json {
        write(path, &serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(path) = &settings.markdown {
        write(path, (markdown + "\n").as_bytes())?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    ember_train::write_atomically(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

fn measure(
    devices: &[DeviceChoice],
    s: &Settings,
    sections: Sections,
) -> anyhow::Result<BenchReport> {
    if s.batch_size == 0 || s.steps == 0 {
        bail!(
            "--batch-size and --steps must be at least 1, got {} and {}",
            s.batch_size,
            s.steps
        );
    }
    if devices.is_empty() || s.models.is_empty() {
        bail!("name at least one device and one model");
    }
    let load_at_start = load_average();
    let mut report = BenchReport {
        ember_commit: ember_commit(),
        date: utc_date(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
        devices: devices.iter().map(ToString::to_string).collect(),
        not_measured: unmeasured_gpu(devices).into_iter().collect(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average: None,
        batch_size: s.batch_size,
        steps: s.steps,
        warmup: s.warmup,
        full_data_batches: FULL_DATA_BATCHES,
        models: s
            .models
            .iter()
            .map(|m| ModelInfo {
                name: m.name().into(),
                trainable_params: m.trainable_params(),
            })
            .collect(),
        command: invocation(),
        updates: Vec::new(),
        whole_steps: Vec::new(),
        end_to_end: Vec::new(),
    };
    for &device in devices {
        for &model in &s.models {
            let workload = Workload::new(device, model, s.batch_size)?;
            if sections.optimizers {
                report.updates.extend(measure::updates(&workload, s)?);
                report
                    .whole_steps
                    .extend(measure::whole_steps(&workload, s)?);
            }
            if sections.end_to_end {
                report.end_to_end.push(measure::end_to_end(&workload, s)?);
            }
        }
    }
    report.load_average = load_at_start.zip(load_average()).map(|(a, b)| [a, b]);
    let first = |model: &str| {
        report
            .end_to_end
            .iter()
            .find(|r| r.model == model && r.device == report.devices[0])
            .map_or(f64::NAN, |r| r.images_per_s)
    };
    let firsts: Vec<f64> = report.end_to_end.iter().map(|r| first(&r.model)).collect();
    for (row, first) in report.end_to_end.iter_mut().zip(firsts) {
        row.relative_to_first_device = row.images_per_s / first;
    }
    Ok(report)
}

/// The commit measured: `EMBER_COMMIT`, else what git says of the working tree (`-dirty` when it
/// has uncommitted changes), else "unknown".
fn ember_commit() -> String {
    if let Ok(commit) = std::env::var("EMBER_COMMIT") {
        if !commit.trim().is_empty() {
            return commit.trim().to_string();
        }
    }
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// This process's arguments after the program name, shell-quoted where needed.
fn invocation() -> String {
    std::env::args()
        .skip(1)
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The machine's 1-minute load average, where the kernel reports it (`/proc/loadavg`).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The GPU column a report shows when no GPU device was measured, with the reason.
fn unmeasured_gpu(devices: &[DeviceChoice]) -> Option<NotMeasured> {
    // `wgpu-cpu` is a software adapter, not a GPU.
    let gpu_measured = devices
        .iter()
        .any(|d| matches!(d, DeviceChoice::Wgpu | DeviceChoice::WgpuGpu(_)));
    if gpu_measured {
        return None;
    }
    let reason = if gpu_present() {
        "not measured: not requested (add wgpu to --devices)"
    } else {
        "not measured: no GPU this session"
    };
    Some(NotMeasured {
        device: "wgpu (GPU)".into(),
        reason: reason.into(),
    })
}

/// Whether the kernel exposes a GPU: an NVIDIA or AMD compute node, or a DRM render node.
fn gpu_present() -> bool {
    let render_node = std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    render_node || Path::new("/dev/nvidia0").exists() || Path::new("/dev/kfd").exists()
}

/// The UTC calendar date `YYYY-MM-DD` of a Unix time.
fn utc_date(unix_s: u64) -> String {
    // Count from 0000-03-01 so that the leap day ends a year; 146,097 days make 400 years.
    let days = (unix_s / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March, with lengths 31, 30, 31, 30, 31 repeating (153 days per 5 months).
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(951_868_800), "2000-03-01");
        assert_eq!(utc_date(1_798_000_000), "2026-12-23");
        assert_eq!(utc_date(1_735_689_599), "2024-12-31");
    }

    #[test]
    fn software_adapters_do_not_count_as_a_gpu() {
        assert!(unmeasured_gpu(&[DeviceChoice::Flex, DeviceChoice::WgpuCpu]).is_some());
        assert!(unmeasured_gpu(&[DeviceChoice::Flex, DeviceChoice::Wgpu]).is_none());
        assert!(unmeasured_gpu(&[DeviceChoice::WgpuGpu(1)]).is_none());
    }
}
