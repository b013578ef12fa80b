//! `ember bench`: performance figures measured side by side in one process, so that ratios are
//! robust to a noisy machine.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::{Args, Subcommand};
use ember_models::{ImageClassifier, SmallCnn, SmallCnnConfig};
use ember_train::{DeviceChoice, OptimizerSpec};
use serde::Serialize;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Time one SmallCnn training step (forward, backward, Adam) on several devices.
    Devices(DeviceArgs),
    /// Time one optimizer step on SmallCnn's parameters for every optimizer, relative to burn's
    /// Adam, and measure optimizer-state bytes per parameter.
    Optimizers(OptimizerArgs),
}

/// Options shared by every benchmark.
#[derive(Args, Debug)]
pub struct Timing {
    /// Images per step (sets the gradients' scale; the step cost of an optimizer does not depend
    /// on it).
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Timed steps per measurement (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed warm-up steps (kernel compilation, allocator growth).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Write the results as JSON here (set EMBER_COMMIT to record the commit measured).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// Devices to time, comma separated (e.g. flex,ndarray or flex,wgpu).
    #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
    pub devices: Vec<String>,
    #[command(flatten)]
    pub timing: Timing,
}

#[derive(Args, Debug)]
pub struct OptimizerArgs {
    /// Device to time on.
    #[arg(long, default_value = "flex")]
    pub device: String,
    #[command(flatten)]
    pub timing: Timing,
}

#[derive(Serialize)]
struct Median {
    median_s: f64,
    min_s: f64,
    max_s: f64,
}

fn median(mut times: Vec<f64>) -> Median {
    times.sort_by(f64::total_cmp);
    Median {
        median_s: times[times.len() / 2],
        min_s: times[0],
        max_s: times[times.len() - 1],
    }
}

/// SmallCnn at CIFAR shape with one fixed random batch.
struct Workload {
    device: Device,
    model: SmallCnn,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
}

impl Workload {
    fn new(choice: DeviceChoice, batch_size: usize) -> anyhow::Result<Self> {
        let device = choice.device()?;
        device.seed(0);
        let model = SmallCnnConfig::new(3, 10).init(&device)?;
        let images = Tensor::<4>::random(
            [batch_size, 3, 32, 32],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let labels = (0..batch_size as i64).map(|i| i % 10).collect::<Vec<_>>();
        let targets = Tensor::from_data(TensorData::new(labels, [batch_size]), &device);
        Ok(Self {
            device,
            model,
            images,
            targets,
        })
    }

    fn gradients(&self, model: &SmallCnn) -> GradientsParams {
        let loss = CrossEntropyLossConfig::new()
            .init(&self.device)
            .forward(model.forward(self.images.clone()), self.targets.clone());
        GradientsParams::from_grads(loss.backward(), model)
    }

    /// Times `warmup + steps` whole training steps (forward, backward, update).
    fn train_steps(
        &self,
        optimizer: &mut ModuleOptimizer,
        timing: &Timing,
    ) -> anyhow::Result<Vec<f64>> {
        let mut model = self.model.clone();
        let mut times = Vec::with_capacity(timing.steps);
        for step in 0..timing.warmup + timing.steps {
            let start = Instant::now();
            let grads = self.gradients(&model);
            model = optimizer.step(1e-3, model, grads);
            self.device.sync().context("device sync")?;
            if step >= timing.warmup {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        Ok(times)
    }
}

#[derive(Serialize)]
struct DeviceTiming {
    device: String,
    step: Median,
    images_per_s: f64,
    /// This device's images/s divided by the first device's.
    relative_to_first: f64,
}

#[derive(Serialize)]
struct OptimizerTiming {
    optimizer: String,
    step: Median,
    /// Median optimizer-step time divided by Adam's, measured in the same process.
    relative_to_adam: f64,
    /// Serialised optimizer state (burnpack, names included) per trainable parameter.
    state_bytes_per_param: f64,
}

#[derive(Serialize)]
struct Report<T> {
    what: &'static str,
    device: String,
    batch_size: usize,
    steps: usize,
    warmup: usize,
    threads: usize,
    ember_commit: Option<String>,
    results: Vec<T>,
}

fn report<T: Serialize>(
    what: &'static str,
    device: String,
    t: &Timing,
    results: Vec<T>,
) -> Report<T> {
    Report {
        what,
        device,
        batch_size: t.batch_size,
        steps: t.steps,
        warmup: t.warmup,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ember_commit: std::env::var("EMBER_COMMIT").ok(),
        results,
    }
}

fn write_json<T: Serialize>(path: &Option<PathBuf>, report: &T) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_vec_pretty(report)?;
        ember_train::write_atomically(path, &json)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn devices(args: DeviceArgs) -> anyhow::Result<()> {
    let t = &args.timing;
    let mut results: Vec<DeviceTiming> = Vec::new();
    for name in &args.devices {
        let choice: DeviceChoice = name.parse()?;
        tracing::info!("timing SmallCnn training steps on {choice}");
        let workload = Workload::new(choice, t.batch_size)?;
        let mut adam = OptimizerSpec::defaults()[0].build(t.batch_size)?;
        let step = median(workload.train_steps(&mut adam, t)?);
        let images_per_s = t.batch_size as f64 / step.median_s;
        let first = results.first().map_or(images_per_s, |r| r.images_per_s);
        results.push(DeviceTiming {
            device: choice.to_string(),
            step,
            images_per_s,
            relative_to_first: images_per_s / first,
        });
    }
    println!("device      median step   images/s   relative");
    for r in &results {
        println!(
            "{:<10} {:>10.3}s {:>10.1} {:>9.3}x",
            r.device, r.step.median_s, r.images_per_s, r.relative_to_first
        );
    }
    let what = "SmallCnn (32x32x3, 10 classes) forward + backward + Adam step";
    write_json(&t.out, &report(what, args.devices.join(","), t, results))
}

fn optimizers(args: OptimizerArgs) -> anyhow::Result<()> {
    let t = &args.timing;
    let choice: DeviceChoice = args.device.parse()?;
    let workload = Workload::new(choice, t.batch_size)?;
    // Trainable parameters only: burn's num_params also counts BatchNorm running statistics.
    let trainable = SmallCnnConfig::new(3, 10).trainable_params();
    let specs = OptimizerSpec::defaults();
    let mut arms = specs
        .iter()
        .map(|spec| {
            Ok((
                spec.build(t.batch_size)?,
                workload.model.clone(),
                Vec::new(),
            ))
        })
        .collect::<anyhow::Result<Vec<(ModuleOptimizer, SmallCnn, Vec<f64>)>>>()?;
    // Round-robin: every round times one step of every optimizer, so slow drifts of the machine
    // (other processes, thermal state) affect all of them alike and cancel in the ratios.
    tracing::info!("timing {} optimizers round-robin on {choice}", specs.len());
    for round in 0..t.warmup + t.steps {
        for (optimizer, model, times) in arms.iter_mut() {
            let grads = workload.gradients(model);
            workload.device.sync().context("device sync")?;
            let start = Instant::now();
            *model = optimizer.step(1e-3, model.clone(), grads);
            workload.device.sync().context("device sync")?;
            if round >= t.warmup {
                times.push(start.elapsed().as_secs_f64());
            }
        }
    }
    let mut results: Vec<OptimizerTiming> = Vec::new();
    for (spec, (optimizer, _, times)) in specs.iter().zip(arms) {
        let step = median(times);
        let state_bytes = optimizer
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .len();
        let adam = results.first().map_or(step.median_s, |r| r.step.median_s);
        results.push(OptimizerTiming {
            optimizer: spec.name().to_string(),
            relative_to_adam: step.median_s / adam,
            step,
            state_bytes_per_param: state_bytes as f64 / trainable as f64,
        });
    }
    println!("optimizer     median step  vs Adam  state bytes/param");
    for r in &results {
        println!(
            "{:<12} {:>10.2}ms {:>7.2}x {:>10.1}",
            r.optimizer,
            1e3 * r.step.median_s,
            r.relative_to_adam,
            r.state_bytes_per_param
        );
    }
    let what = "optimizer step (update only) on SmallCnn's parameters, gradients of one CIFAR-shaped batch, optimizers timed round-robin";
    write_json(&t.out, &report(what, choice.to_string(), t, results))
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Devices(args) => devices(args),
        BenchCommand::Optimizers(args) => optimizers(args),
    }
}
