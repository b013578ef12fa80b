//! `ember bench profile`: where a model's training step goes (SmallCnn's or the transformer's),
//! part by part, read next to the same profile of PyTorch
//! (`experiments/cpu-profile/torch_profile.py --model …`).
//!
//! The protocol is the Python script's, literally, so the two tables line up row by row: every
//! part is timed on its own on random inputs of its shapes (requiring a gradient, except the
//! network input) with a fixed random upstream gradient `g` per output; one rep times the forward
//! `y = part(x)` and, separately, the backward of `Σ (yᵢ · gᵢ).sum()` (of the loss itself for the
//! loss; none for a parameter-free first part, patchify, whose output nothing differentiates). The
//! whole step (forward and loss, backward, Adam update) is timed on one fixed batch, its phases
//! separately. Medians over the reps after the warm-up reps. The device is synchronised before
//! every clock reading.

mod parts;
mod render;
mod small_cnn;
mod transformer;

pub use render::render_profile;

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use ember_data::{epoch_order, Augmentation, GeneratedConfig, ImageBatcher, Normalization};
use ember_models::ImageClassifier;
use ember_train::DeviceChoice;
use serde::{Deserialize, Serialize};

use super::BenchModel;
use crate::report::stats::MedianRange;

const CLASSES: usize = 10;
const CHANNELS: usize = 3;
const SIDE: usize = 32;

/// How often to time each part, and on what.
#[derive(Clone, Debug)]
pub struct ProfileSettings {
    /// The device to profile on.
    pub device: DeviceChoice,
    /// The model whose step is profiled.
    pub model: BenchModel,
    /// Images per batch (at least 1).
    pub batch_size: usize,
    /// Timed reps per part (at least 1; the median is reported).
    pub reps: usize,
    /// Untimed reps before them.
    pub warmup: usize,
}

/// One layer's median forward and backward time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartTiming {
    /// The part's name, as in the Python profile (`conv1`, `qkv2`, …; `loss` for the loss).
    pub layer: String,
    /// What it is: SmallCnn's `conv`, `batchnorm`, `relu`, `maxpool`, `gap`; the transformer's
    /// `patchify`, `tokens`, `layernorm`, `attn-proj`, `attn-matmul`, `softmax`, `residual`, `mlp`,
    /// `gelu`; both models' `linear` and `loss`.
    pub kind: String,
    /// Shape of its input.
    pub input: Vec<usize>,
    /// Shape of its output (empty for the scalar loss).
    pub output: Vec<usize>,
    /// Median forward time, milliseconds.
    pub forward_ms: f64,
    /// Median backward time, milliseconds.
    pub backward_ms: f64,
}

impl PartTiming {
    /// Forward and backward together.
    pub fn total_ms(&self) -> f64 {
        self.forward_ms + self.backward_ms
    }
}

/// The whole step's phases, medians over the same reps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    /// Forward pass and loss, milliseconds.
    pub forward_ms: f64,
    /// Backward pass, milliseconds.
    pub backward_ms: f64,
    /// Adam's update, milliseconds.
    pub update_ms: f64,
    /// The whole step, milliseconds.
    pub whole_ms: f64,
    /// Images per second at the median whole step.
    pub images_per_s: f64,
}

/// A profile as both sides write it (the Python script's JSON has the same fields, and more).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The model profiled, e.g. `SmallCnn` (profiles written before the transformer's had none:
    /// they are SmallCnn's).
    #[serde(default = "small_cnn_name")]
    pub model: String,
    /// What was profiled, e.g. `burn 0.22.1 (flex)` or `torch 2.5.1`.
    pub framework: String,
    /// CPU threads it ran with (Ember: the logical CPUs the process may use).
    pub threads: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Timed reps per measurement.
    pub reps: usize,
    /// Untimed reps before them.
    pub warmup: usize,
    /// Every part (and the loss) timed on its own, in forward order.
    pub parts: Vec<PartTiming>,
    /// The whole training step's phases.
    pub step: StepTiming,
    /// Ember only: building one augmented training batch on the device from its `u8` images.
    #[serde(default)]
    pub batch_assembly_ms: Option<f64>,
    /// PyTorch only: its profiler's busiest ops over a few whole steps.
    #[serde(default)]
    pub profiler_top_ops: Vec<TopOp>,
}

fn small_cnn_name() -> String {
    BenchModel::SmallCnn.name().into()
}

/// One op of PyTorch's profiler table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopOp {
    /// The op's name, e.g. `aten::convolution_backward`.
    pub name: String,
    /// CPU time in the op itself (children excluded) over the profiled steps, milliseconds.
    pub self_cpu_ms: f64,
    /// Times it was called.
    pub calls: u64,
}

/// Seconds since `start`, after the device has finished its queued work.
fn elapsed(start: Instant, device: &Device) -> anyhow::Result<f64> {
    device.sync().context("device sync")?;
    Ok(start.elapsed().as_secs_f64())
}

fn median_ms(times: Vec<f64>) -> f64 {
    MedianRange::of(times).map_or(f64::NAN, |m| m.median * 1e3)
}

/// Profiles the training step of `s.model` on `s.device`, part by part.
pub fn profile(s: &ProfileSettings) -> anyhow::Result<Profile> {
    anyhow::ensure!(
        s.batch_size > 0 && s.reps > 0,
        "--batch-size and --reps must be at least 1, got {} and {}",
        s.batch_size,
        s.reps
    );
    let device = s.device.device()?;
    device.seed(0);
    let targets = Tensor::<1, Int>::random(
        [s.batch_size],
        Distribution::Uniform(0.0, CLASSES as f64),
        &device,
    );
    let chain = match s.model {
        BenchModel::SmallCnn => small_cnn::parts(targets.clone(), &device)?,
        BenchModel::Transformer => transformer::parts(targets.clone(), &device)?,
    };
    let images = Tensor::<4>::random(
        [s.batch_size, CHANNELS, SIDE, SIDE],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let parts = chain.time(parts::Value::Image(images.clone()), s, &device)?;
    let step = time_step(s.model.init(&device)?, images, targets, s, &device)?;
    let batch_assembly_ms = match s.model {
        BenchModel::SmallCnn => Some(batch_assembly_ms(s, &device)?),
        BenchModel::Transformer => None,
    };
    Ok(Profile {
        model: s.model.name().into(),
        framework: format!(
            "burn 0.22.1 ({}{})",
            s.device,
            match ember_kernels::enabled() {
                true => ", Ember's kernels",
                false => ", burn's ops: EMBER_KERNELS=burn",
            }
        ),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        batch_size: s.batch_size,
        reps: s.reps,
        warmup: s.warmup,
        parts,
        step,
        batch_assembly_ms,
        profiler_top_ops: Vec::new(),
    })
}

/// The whole training step of `model` with burn's Adam on one fixed batch, phase by phase.
fn time_step(
    mut model: ember_models::AnyClassifier,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    s: &ProfileSettings,
    device: &Device,
) -> anyhow::Result<StepTiming> {
    let mut adam = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut phases = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for rep in 0..s.warmup + s.reps {
        let t0 = Instant::now();
        let loss = loss_fn.forward(model.forward(images.clone()), targets.clone());
        let forward = elapsed(t0, device)?;
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let backward = elapsed(t1, device)?;
        let t2 = Instant::now();
        model = adam.step(1e-3, model, grads);
        let update = elapsed(t2, device)?;
        if rep >= s.warmup {
            let whole = t0.elapsed().as_secs_f64();
            for (times, t) in phases.iter_mut().zip([forward, backward, update, whole]) {
                times.push(t);
            }
        }
    }
    let [forward, backward, update, whole] = phases.map(median_ms);
    Ok(StepTiming {
        forward_ms: forward,
        backward_ms: backward,
        update_ms: update,
        whole_ms: whole,
        images_per_s: s.batch_size as f64 / (whole / 1e3),
    })
}

/// Median time to build one augmented CIFAR-shaped training batch from `u8` images on the device.
fn batch_assembly_ms(s: &ProfileSettings, device: &Device) -> anyhow::Result<f64> {
    let set = GeneratedConfig {
        train_size: 4 * s.batch_size,
        test_size: 1,
        image_size: SIDE,
        channels: CHANNELS,
        num_classes: CLASSES,
        ..GeneratedConfig::default()
    }
    .generate()?
    .train;
    let batcher = ImageBatcher::new(Normalization::fit(&set), Some(Augmentation::cifar()));
    let images = batcher.upload(&set, device);
    let batches = batcher.epoch(&images, &epoch_order(set.len(), 0, 0), 0, 0);
    let mut times = Vec::new();
    for rep in 0..s.warmup + s.reps {
        let start = Instant::now();
        let batch = batches.batch((rep % 4) * s.batch_size, s.batch_size);
        let t = elapsed(start, device)?;
        drop(batch);
        if rep >= s.warmup {
            times.push(t);
        }
    }
    Ok(median_ms(times))
}

/// Reads a profile written by this module or by the Python script.
pub fn read_profile(path: &Path) -> anyhow::Result<Profile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a profile", path.display()))
}
