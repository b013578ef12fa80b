use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::Args;
use ember_models::{ImageClassifier, SmallCnnConfig};
use ember_train::DeviceChoice;
use serde::Serialize;

/// Options of `ember bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Devices to time, comma separated (e.g. flex,ndarray or flex,wgpu).
    #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
    pub devices: Vec<String>,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Timed steps per device (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed warm-up steps per device (kernel compilation, allocator growth).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct DeviceTiming {
    device: String,
    median_step_s: f64,
    min_step_s: f64,
    max_step_s: f64,
    images_per_s: f64,
    /// This device's images/s divided by the first device's.
    relative_to_first: f64,
}

#[derive(Serialize)]
struct BenchReport {
    what: &'static str,
    batch_size: usize,
    steps: usize,
    warmup: usize,
    threads: usize,
    results: Vec<DeviceTiming>,
}

/// Median, min and max seconds of one SmallCnn (CIFAR shape) forward + backward + Adam step.
fn time_train_step(choice: DeviceChoice, args: &BenchArgs) -> anyhow::Result<(f64, f64, f64)> {
    let device = choice.device()?;
    device.seed(0);
    let mut model = SmallCnnConfig::new(3, 10).init(&device)?;
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let images = Tensor::<4>::random(
        [args.batch_size, 3, 32, 32],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..args.batch_size as i64)
                .map(|i| i % 10)
                .collect::<Vec<_>>(),
            [args.batch_size],
        ),
        &device,
    );
    let mut times = Vec::with_capacity(args.steps);
    for step in 0..args.warmup + args.steps {
        let start = Instant::now();
        let loss = loss_fn.forward(model.forward(images.clone()), targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
        device.sync().context("device sync")?;
        if step >= args.warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0], times[times.len() - 1]))
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.steps > 0, "--steps must be at least 1");
    let mut results: Vec<DeviceTiming> = Vec::new();
    for name in &args.devices {
        let choice: DeviceChoice = name.parse()?;
        tracing::info!("timing SmallCnn training steps on {choice}");
        let (median, min, max) = time_train_step(choice, &args)?;
        let images_per_s = args.batch_size as f64 / median;
        let first = results.first().map_or(images_per_s, |r| r.images_per_s);
        results.push(DeviceTiming {
            device: choice.to_string(),
            median_step_s: median,
            min_step_s: min,
            max_step_s: max,
            images_per_s,
            relative_to_first: images_per_s / first,
        });
    }
    let report = BenchReport {
        what: "SmallCnn (32x32x3, 10 classes) forward + backward + Adam step",
        batch_size: args.batch_size,
        steps: args.steps,
        warmup: args.warmup,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        results,
    };
    println!("device      median step   images/s   relative");
    for r in &report.results {
        println!(
            "{:<10} {:>10.3}s {:>10.1} {:>9.3}x",
            r.device, r.median_step_s, r.images_per_s, r.relative_to_first
        );
    }
    if let Some(path) = &args.out {
        let json = serde_json::to_vec_pretty(&report)?;
        ember_train::write_atomically(path, &json)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
