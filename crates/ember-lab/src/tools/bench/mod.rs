//! Performance figures measured side by side in one process, so that ratios are robust to a noisy
//! machine (`ember bench`).
//!
//! [`workload`] sets up a model on a device with a few batches of generated images, [`measure`]
//! times optimizer updates, closure optimizers' whole steps and end-to-end training on it, and
//! [`report`] collects the numbers and renders them as Markdown.

mod measure;
pub mod profile;
pub mod report;
mod workload;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::bail;
use ember_train::DeviceChoice;

pub use report::{render_markdown, Anchor, BenchReport};
pub use workload::{BenchModel, FULL_DATA_BATCHES};

use report::{ModelInfo, NotMeasured};
use workload::Workload;

/// What every benchmark measures on and how often.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Models to time.
    pub models: Vec<BenchModel>,
    /// Images per step. Snapshot methods (SVRG, VAMO) see [`FULL_DATA_BATCHES`] such batches as
    /// the full data.
    pub batch_size: usize,
    /// Timed steps per measurement (the median is reported).
    pub steps: usize,
    /// Untimed warm-up steps before them (kernel compilation, allocator growth).
    pub warmup: usize,
}

/// Which measurements to run.
#[derive(Clone, Copy, Debug)]
pub struct Sections {
    /// Every optimizer's update (and closure optimizers' whole step) relative to Adam.
    pub optimizers: bool,
    /// End-to-end training throughput per device.
    pub end_to_end: bool,
}

/// Measures `sections` on every device and model, side by side in this process.
pub fn measure(
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
        ember_commit: crate::report::provenance::commit(),
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
        command: crate::report::provenance::invocation(),
        updates: Vec::new(),
        whole_steps: Vec::new(),
        end_to_end: Vec::new(),
        anchor: None,
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
