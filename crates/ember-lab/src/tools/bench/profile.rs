//! `ember bench profile`: where SmallCnn's training step goes, layer by layer, read next to the
//! same profile of PyTorch (`experiments/cpu-profile/torch_profile.py`).
//!
//! The protocol is the Python script's, literally, so the two tables line up row by row: every
//! layer is timed on its own on a random input of its shape (requiring a gradient, except the
//! first conv's, the network input) with a fixed random upstream gradient `g`; one rep times the
//! forward `y = layer(x)` and, separately, the backward of `(y · g).sum()` (of the loss itself for
//! the loss). The whole step (forward and loss, backward, Adam update) is timed on one fixed batch,
//! its phases separately. Medians over the reps after the warm-up reps. The device is synchronised
//! before every clock reading.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use ember_data::{epoch_order, Augmentation, GeneratedConfig, ImageBatcher, Normalization};
use ember_models::{ImageClassifier, SmallCnnConfig, SmallCnnLayer};
use ember_train::DeviceChoice;
use serde::{Deserialize, Serialize};

use super::report::format_time;
use crate::report::markdown::Table;
use crate::report::stats::MedianRange;

const CLASSES: usize = 10;
const CHANNELS: usize = 3;
const SIDE: usize = 32;

/// How often to time each part, and on what.
#[derive(Clone, Debug)]
pub struct ProfileSettings {
    /// The device to profile on.
    pub device: DeviceChoice,
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
    /// The layer's name, as in the Python profile (`loss` for the loss).
    pub layer: String,
    /// What it is: `conv`, `batchnorm`, `relu`, `maxpool`, `gap`, `linear` or `loss`.
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
    /// Every layer (and the loss) timed on its own, in forward order.
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

/// A layer of SmallCnn (or its loss), timed on its own.
// Built once per profile, 23 of them: boxing the large variant would save nothing worth a `Box`.
#[allow(clippy::large_enum_variant)]
enum Layer {
    Model(SmallCnnLayer),
    Loss(Box<(CrossEntropyLoss, Tensor<1, Int>)>),
}

/// What flows between layers.
#[derive(Clone)]
enum Activation {
    Image(Tensor<4>),
    Flat(Tensor<2>),
    Scalar(Tensor<1>),
}

impl Activation {
    fn dims(&self) -> Vec<usize> {
        match self {
            Self::Image(t) => t.dims().to_vec(),
            Self::Flat(t) => t.dims().to_vec(),
            Self::Scalar(_) => Vec::new(),
        }
    }

    fn random(dims: &[usize], device: &Device, require_grad: bool) -> Self {
        let normal = Distribution::Normal(0.0, 1.0);
        let t = match *dims {
            [a, b, c, d] => Self::Image(Tensor::random([a, b, c, d], normal, device)),
            [a, b] => Self::Flat(Tensor::random([a, b], normal, device)),
            _ => Self::Scalar(Tensor::random([1], normal, device)),
        };
        if require_grad {
            t.require_grad()
        } else {
            t
        }
    }

    fn require_grad(self) -> Self {
        match self {
            Self::Image(t) => Self::Image(t.require_grad()),
            Self::Flat(t) => Self::Flat(t.require_grad()),
            Self::Scalar(t) => Self::Scalar(t.require_grad()),
        }
    }

    /// `(self · g).sum()`, or `self` for the loss (a scalar, no upstream gradient).
    fn weighted_sum(self, g: &Option<Activation>) -> Tensor<1> {
        match (self, g) {
            (Self::Image(y), Some(Self::Image(g))) => y.mul(g.clone()).sum(),
            (Self::Flat(y), Some(Self::Flat(g))) => y.mul(g.clone()).sum(),
            (Self::Scalar(y), _) => y,
            _ => unreachable!("an upstream gradient has its output's rank"),
        }
    }
}

impl Layer {
    fn kind(&self) -> &'static str {
        match self {
            Self::Model(SmallCnnLayer::Conv(_)) => "conv",
            Self::Model(SmallCnnLayer::Norm(_)) => "batchnorm",
            Self::Model(SmallCnnLayer::Relu(_)) => "relu",
            Self::Model(SmallCnnLayer::Pool(_)) => "maxpool",
            Self::Model(SmallCnnLayer::GlobalPool(_)) => "gap",
            Self::Model(SmallCnnLayer::Head(_)) => "linear",
            Self::Loss(_) => "loss",
        }
    }

    fn forward(&self, x: Activation) -> Activation {
        use SmallCnnLayer as L;
        match (self, x) {
            (Self::Model(L::GlobalPool(l)), Activation::Image(x)) => {
                Activation::Flat(l.forward(x).flatten::<2>(1, 3))
            }
            (Self::Model(L::Head(l)), Activation::Flat(x)) => Activation::Flat(l.forward(x)),
            // As SmallCnn runs them: conv and BatchNorm on Ember's kernels where the device is flex.
            (Self::Model(l), Activation::Image(x)) => match l.forward_maps(x) {
                Some(y) => Activation::Image(y),
                None => unreachable!("only the head takes flat features"),
            },
            (Self::Loss(loss), Activation::Flat(x)) => {
                let (l, targets) = loss.as_ref();
                Activation::Scalar(l.forward(x, targets.clone()))
            }
            _ => unreachable!("SmallCnn's layers are chained in order"),
        }
    }
}

/// SmallCnn's layers (its default configuration) in forward order, named as in the Python
/// profile, the loss last.
fn small_cnn_layers(batch_size: usize, device: &Device) -> anyhow::Result<Vec<(String, Layer)>> {
    let mut layers: Vec<(String, Layer)> = SmallCnnConfig::new(CHANNELS, CLASSES)
        .init(device)?
        .into_layers()
        .into_iter()
        .map(|(name, layer)| (name, Layer::Model(layer)))
        .collect();
    let targets = Tensor::<1, Int>::random(
        [batch_size],
        Distribution::Uniform(0.0, CLASSES as f64),
        device,
    );
    let loss = CrossEntropyLossConfig::new().init(device);
    layers.push(("loss".into(), Layer::Loss(Box::new((loss, targets)))));
    Ok(layers)
}

/// Seconds since `start`, after the device has finished its queued work.
fn elapsed(start: Instant, device: &Device) -> anyhow::Result<f64> {
    device.sync().context("device sync")?;
    Ok(start.elapsed().as_secs_f64())
}

fn median_ms(times: Vec<f64>) -> f64 {
    MedianRange::of(times).map_or(f64::NAN, |m| m.median * 1e3)
}

/// Profiles SmallCnn's training step on `s.device`, part by part.
pub fn profile(s: &ProfileSettings) -> anyhow::Result<Profile> {
    anyhow::ensure!(
        s.batch_size > 0 && s.reps > 0,
        "--batch-size and --reps must be at least 1, got {} and {}",
        s.batch_size,
        s.reps
    );
    let device = s.device.device()?;
    device.seed(0);
    let reps = s.warmup + s.reps;

    // Each layer on its own.
    let mut parts = Vec::new();
    let mut x = Activation::random(&[s.batch_size, CHANNELS, SIDE, SIDE], &device, false);
    for (index, (name, layer)) in small_cnn_layers(s.batch_size, &device)?
        .into_iter()
        .enumerate()
    {
        let input = Activation::random(&x.dims(), &device, index > 0);
        let output_dims = layer.forward(input.clone()).dims();
        let g = (!output_dims.is_empty()).then(|| Activation::random(&output_dims, &device, false));
        let (mut forward, mut backward) = (Vec::new(), Vec::new());
        for rep in 0..reps {
            let start = Instant::now();
            let y = layer.forward(input.clone());
            let f = elapsed(start, &device)?;
            let start = Instant::now();
            let _grads = y.weighted_sum(&g).backward();
            let b = elapsed(start, &device)?;
            if rep >= s.warmup {
                forward.push(f);
                backward.push(b);
            }
        }
        tracing::info!("profiled {name}");
        parts.push(PartTiming {
            kind: layer.kind().into(),
            layer: name,
            input: input.dims(),
            output: output_dims.clone(),
            forward_ms: median_ms(forward),
            backward_ms: median_ms(backward),
        });
        x = Activation::random(&output_dims, &device, false);
    }

    // The whole step, with burn's Adam.
    let mut model = SmallCnnConfig::new(CHANNELS, CLASSES).init(&device)?;
    let mut adam = AdamConfig::new().init();
    let images = Tensor::<4>::random(
        [s.batch_size, CHANNELS, SIDE, SIDE],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let targets = Tensor::<1, Int>::random(
        [s.batch_size],
        Distribution::Uniform(0.0, CLASSES as f64),
        &device,
    );
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut phases = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for rep in 0..reps {
        let t0 = Instant::now();
        let loss = loss_fn.forward(model.forward(images.clone()), targets.clone());
        let forward = elapsed(t0, &device)?;
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let backward = elapsed(t1, &device)?;
        let t2 = Instant::now();
        model = adam.step(1e-3, model, grads);
        let update = elapsed(t2, &device)?;
        if rep >= s.warmup {
            let whole = t0.elapsed().as_secs_f64();
            for (times, t) in phases.iter_mut().zip([forward, backward, update, whole]) {
                times.push(t);
            }
        }
    }
    let [forward, backward, update, whole] = phases.map(median_ms);

    Ok(Profile {
        framework: format!("burn 0.22.1 ({})", s.device),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        batch_size: s.batch_size,
        reps: s.reps,
        warmup: s.warmup,
        parts,
        step: StepTiming {
            forward_ms: forward,
            backward_ms: backward,
            update_ms: update,
            whole_ms: whole,
            images_per_s: s.batch_size as f64 / (whole / 1e3),
        },
        batch_assembly_ms: Some(batch_assembly_ms(s, &device)?),
        profiler_top_ops: Vec::new(),
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

/// The profile as Markdown: per layer, per kind and for the whole step, with PyTorch's figures and
/// the ratio beside Ember's when `torch` is given.
pub fn render_profile(ember: &Profile, torch: Option<&Profile>) -> String {
    let mut out = format!(
        "SmallCnn, batch {}, {} threads; medians of {} reps after {} warm-up reps.\n\n",
        ember.batch_size, ember.threads, ember.reps, ember.warmup
    );
    out += &parts_table(ember, torch).render();
    out += "\nBy kind (sums over the layers of each kind):\n\n";
    out += &kinds_table(ember, torch).render();
    out += "\nThe whole step (one fixed batch, Adam):\n\n";
    out += &step_table(ember, torch).render();
    if let Some(assembly) = ember.batch_assembly_ms {
        out += &format!(
            "\nBuilding one augmented batch on the device (gather, crop, flip, normalise from `u8`): \
             {} (not part of the whole step above).\n",
            ms(assembly)
        );
    }
    if let Some(t) = torch.filter(|t| !t.profiler_top_ops.is_empty()) {
        out += "\nPyTorch's profiler, busiest ops by self CPU time (totals over its profiled steps):\n\n";
        let mut table = Table::new(["op", "self CPU", "calls"]);
        for op in &t.profiler_top_ops {
            table.row([
                format!("`{}`", op.name),
                ms(op.self_cpu_ms),
                op.calls.to_string(),
            ]);
        }
        out += &table.render();
    }
    out
}

/// A time given in milliseconds, in the report's units.
fn ms(value: f64) -> String {
    format_time(value / 1e3)
}

fn ratio(mine: f64, theirs: f64) -> String {
    format!("{:.2}", mine / theirs)
}

/// `header`, with PyTorch's columns appended when there is a torch profile.
fn table_with_torch(header: &[&str], torch_columns: &[&str], torch: Option<&Profile>) -> Table {
    let mut cells = header.to_vec();
    if torch.is_some() {
        cells.extend(torch_columns);
    }
    Table::new(cells)
}

/// One row per layer: its input shape and forward and backward times.
fn parts_table(ember: &Profile, torch: Option<&Profile>) -> Table {
    let mut table = table_with_torch(
        &["part", "kind", "input", "Ember fwd", "Ember bwd"],
        &["torch fwd", "torch bwd", "Ember ÷ torch (fwd + bwd)"],
        torch,
    );
    for part in &ember.parts {
        let shape = part
            .input
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("×");
        let mut cells = vec![
            part.layer.clone(),
            part.kind.clone(),
            shape,
            ms(part.forward_ms),
            ms(part.backward_ms),
        ];
        if let Some(t) = torch.and_then(|t| t.parts.iter().find(|p| p.layer == part.layer)) {
            cells.extend([
                ms(t.forward_ms),
                ms(t.backward_ms),
                ratio(part.total_ms(), t.total_ms()),
            ]);
        }
        table.row(cells);
    }
    table
}

/// One row per layer kind (in order of first appearance), then all parts together.
fn kinds_table(ember: &Profile, torch: Option<&Profile>) -> Table {
    let mut table = table_with_torch(
        &["kind", "Ember fwd + bwd", "share of Ember's parts"],
        &["torch fwd + bwd", "Ember ÷ torch"],
        torch,
    );
    // `None`: every part.
    let sum = |p: &Profile, kind: Option<&str>| {
        p.parts
            .iter()
            .filter(|x| kind.is_none_or(|k| x.kind == k))
            .map(PartTiming::total_ms)
            .sum::<f64>()
    };
    let mut kinds: Vec<Option<&str>> = Vec::new();
    for part in &ember.parts {
        if !kinds.contains(&Some(part.kind.as_str())) {
            kinds.push(Some(&part.kind));
        }
    }
    kinds.push(None);
    for kind in kinds {
        let mine = sum(ember, kind);
        let mut cells = vec![
            kind.unwrap_or("all parts").to_string(),
            ms(mine),
            format!("{:.0}%", 100.0 * mine / sum(ember, None)),
        ];
        if let Some(t) = torch {
            let theirs = sum(t, kind);
            cells.extend([ms(theirs), ratio(mine, theirs)]);
        }
        table.row(cells);
    }
    table
}

/// The whole step's phases, then images per second.
fn step_table(ember: &Profile, torch: Option<&Profile>) -> Table {
    let mut table = table_with_torch(&["phase", "Ember"], &["torch", "Ember ÷ torch"], torch);
    let phases = |p: &Profile| {
        [
            ("forward + loss", p.step.forward_ms),
            ("backward", p.step.backward_ms),
            ("update", p.step.update_ms),
            ("whole step", p.step.whole_ms),
        ]
    };
    for (i, (name, mine)) in phases(ember).into_iter().enumerate() {
        let mut cells = vec![name.to_string(), ms(mine)];
        if let Some(t) = torch {
            let theirs = phases(t)[i].1;
            cells.extend([ms(theirs), ratio(mine, theirs)]);
        }
        table.row(cells);
    }
    let mut cells = vec![
        "images/s".to_string(),
        format!("{:.1}", ember.step.images_per_s),
    ];
    if let Some(t) = torch {
        cells.extend([
            format!("{:.1}", t.step.images_per_s),
            format!(
                "{:.2} (Ember's share of torch's)",
                ember.step.images_per_s / t.step.images_per_s
            ),
        ]);
    }
    table.row(cells);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(layer: &str, kind: &str, forward_ms: f64, backward_ms: f64) -> PartTiming {
        PartTiming {
            layer: layer.into(),
            kind: kind.into(),
            input: vec![64, 3, 32, 32],
            output: vec![64, 32, 32, 32],
            forward_ms,
            backward_ms,
        }
    }

    fn profile(framework: &str, scale: f64, images_per_s: f64) -> Profile {
        Profile {
            framework: framework.into(),
            threads: 2,
            batch_size: 64,
            reps: 10,
            warmup: 2,
            parts: vec![
                part("conv1", "conv", 1.0 * scale, 2.0 * scale),
                part("relu1", "relu", 0.5 * scale, 0.25 * scale),
                part("conv2", "conv", 0.5 * scale, 0.25 * scale),
            ],
            step: StepTiming {
                forward_ms: 2.0 * scale,
                backward_ms: 3.0 * scale,
                update_ms: 1.0 * scale,
                whole_ms: 6.0 * scale,
                images_per_s,
            },
            batch_assembly_ms: None,
            profiler_top_ops: vec![],
        }
    }

    #[test]
    fn kinds_sum_their_layers_and_ratios_divide_ember_by_torch() {
        let ember = profile("ember", 4.0, 100.0);
        let torch = profile("torch", 1.0, 400.0);
        let md = render_profile(&ember, Some(&torch));
        // conv: (1 + 2 + 0.5 + 0.25) × 4 = 15 ms of 18 ms in all.
        assert!(
            md.contains("| conv | 15.0 ms | 83% | 3.75 ms | 4.00 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| all parts | 18.0 ms | 100% | 4.50 ms | 4.00 |\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "| relu1 | relu | 64×3×32×32 | 2.00 ms | 1.00 ms | 0.50 ms | 0.25 ms | 4.00 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("| whole step | 24.0 ms | 6.00 ms | 4.00 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| images/s | 100.0 | 400.0 | 0.25 (Ember's share of torch's) |\n"),
            "{md}"
        );
    }

    #[test]
    fn without_torch_only_embers_columns_are_drawn() {
        let md = render_profile(&profile("ember", 1.0, 50.0), None);
        assert!(
            md.contains("| kind | Ember fwd + bwd | share of Ember's parts |\n|---|---|---|\n"),
            "{md}"
        );
        assert!(md.contains("| relu | 0.75 ms | 17% |\n"), "{md}");
        assert!(!md.contains("torch"), "{md}");
    }
}
