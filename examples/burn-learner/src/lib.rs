//! A small burn-train project, written the way a burn user writes one, that trains with every
//! ember-optim optimizer inside burn's `Learner`: the optimizer is one line
//! ([`OptimizerChoice::module_optimizer`]), SAM/GAM are three lines of `TrainStep::step`, and the
//! root-free methods' batch size B follows burn's `DataLoader`, smaller last batch included.
//!
//! The task: four Gaussian classes in 8 dimensions, an MLP, cross-entropy.

use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
};
use ember_optim::{
    BatchSizeHandle, DirectionRule, Gam, GamConfig, IfShampooConfig, PlrsConfig, RfAdaGradConfig,
    RfAdamWConfig, RfRmsPropConfig, Sam, SamConfig, ShampooConfig, SignGdConfig, SignumConfig,
};

/// Input features per example.
pub const FEATURES: usize = 8;
/// Classes.
pub const CLASSES: usize = 4;

/// One example: features and its class.
#[derive(Clone, Debug)]
pub struct Example {
    features: [f32; FEATURES],
    label: usize,
}

/// `n` examples: class `c`'s mean is ±1.5 on a pattern of axes, plus unit Gaussian noise from a
/// fixed seed, so every run sees the same data.
pub fn examples(n: usize, seed: u64) -> Vec<Example> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        // xorshift64*: enough for a test set, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let label = i % CLASSES;
            let mut features = [0.0f32; FEATURES];
            for (k, x) in features.iter_mut().enumerate() {
                let mean = if (k + label).is_multiple_of(CLASSES) {
                    1.5
                } else {
                    -0.5
                };
                let (u1, u2) = (1.0 - uniform(), uniform());
                let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                *x = (mean + normal) as f32;
            }
            Example { features, label }
        })
        .collect()
}

/// A batch on the device.
#[derive(Clone, Debug)]
pub struct ExampleBatch {
    pub features: Tensor<2>,
    pub targets: Tensor<1, Int>,
}

/// Stacks examples into an [`ExampleBatch`].
#[derive(Clone, Default)]
pub struct ExampleBatcher;

impl Batcher<Example, ExampleBatch> for ExampleBatcher {
    fn batch(&self, items: Vec<Example>, device: &Device) -> ExampleBatch {
        let n = items.len();
        let features: Vec<f32> = items.iter().flat_map(|e| e.features).collect();
        let targets: Vec<i64> = items.iter().map(|e| e.label as i64).collect();
        ExampleBatch {
            features: Tensor::from_data(TensorData::new(features, [n, FEATURES]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        }
    }
}

/// How `TrainStep::step` turns a batch into gradients.
#[derive(Clone, Debug, Default)]
pub enum GradientRule {
    /// The plain gradient.
    #[default]
    Plain,
    /// SAM's direction.
    Sam(Sam),
    /// GAM's direction.
    Gam(Gam),
}

/// A two-layer MLP that knows how to take its training step.
#[derive(Module, Debug)]
pub struct Classifier {
    hidden: Linear,
    output: Linear,
    activation: Relu,
    /// Not a parameter: how the step computes its gradient.
    #[module(skip)]
    rule: GradientRule,
    /// Not a parameter: the handle the root-free optimizers read B from, set from every batch.
    #[module(skip)]
    batch_size: Option<BatchSizeHandle>,
}

impl Classifier {
    /// A fresh model on `device`.
    pub fn new(device: &Device, rule: GradientRule, batch_size: Option<BatchSizeHandle>) -> Self {
        Self {
            hidden: LinearConfig::new(FEATURES, 32).init(device),
            output: LinearConfig::new(32, CLASSES).init(device),
            activation: Relu::new(),
            rule,
            batch_size,
        }
    }

    /// Logits, mean cross-entropy and targets of one batch.
    pub fn forward_classification(&self, batch: ExampleBatch) -> ClassificationOutput {
        let logits = self
            .output
            .forward(self.activation.forward(self.hidden.forward(batch.features)));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for Classifier {
    type Input = ExampleBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ExampleBatch) -> TrainOutput<ClassificationOutput> {
        if let Some(handle) = &self.batch_size {
            // burn's DataLoader ends an epoch with a smaller batch unless the data divides evenly:
            // tell the root-free optimizer the B of the batch it is about to step on.
            let _ = handle.set(batch.targets.dims()[0]);
        }
        let forward = |model: &Self| {
            let output = model.forward_classification(batch.clone());
            (output.loss.clone(), output)
        };
        match &self.rule {
            GradientRule::Plain => {
                let output = self.forward_classification(batch.clone());
                TrainOutput::new(self, output.loss.backward(), output)
            }
            GradientRule::Sam(sam) => {
                let (grads, item) = sam.gradients(self, forward);
                TrainOutput { grads, item }
            }
            GradientRule::Gam(gam) => {
                let (grads, item) = gam.gradients(self, forward);
                TrainOutput { grads, item }
            }
        }
    }
}

impl InferenceStep for Classifier {
    type Input = ExampleBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ExampleBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}

/// Every optimizer this example trains with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerChoice {
    Adam,
    RfRmsProp,
    RfAdaGrad,
    RfAdamW,
    IfShampoo,
    Shampoo,
    SignGd,
    Signum,
    /// SGD with the PLRS scheduler.
    SgdPlrs,
    /// SAM around SGD.
    Sam,
    /// GAM around SGD.
    Gam,
}

impl OptimizerChoice {
    /// All of them, Adam (the baseline) first.
    pub const ALL: [OptimizerChoice; 11] = [
        Self::Adam,
        Self::RfRmsProp,
        Self::RfAdaGrad,
        Self::RfAdamW,
        Self::IfShampoo,
        Self::Shampoo,
        Self::SignGd,
        Self::Signum,
        Self::SgdPlrs,
        Self::Sam,
        Self::Gam,
    ];

    /// The optimizer: in a burn project, the one line that was `AdamConfig::new().init()`. The
    /// root-free methods take B, the examples per batch, and hand back the handle through which
    /// the training step corrects it for a smaller last batch.
    pub fn module_optimizer(self, batch_size: usize) -> (ModuleOptimizer, Option<BatchSizeHandle>) {
        let with_handle = |(optim, handle)| (optim, Some(handle));
        match self {
            Self::Adam => (AdamConfig::new().init(), None),
            Self::RfRmsProp => {
                with_handle(RfRmsPropConfig::new(batch_size).init_with_batch_size_handle())
            }
            Self::RfAdaGrad => {
                with_handle(RfAdaGradConfig::new(batch_size).init_with_batch_size_handle())
            }
            Self::RfAdamW => {
                with_handle(RfAdamWConfig::new(batch_size).init_with_batch_size_handle())
            }
            Self::IfShampoo => {
                with_handle(IfShampooConfig::new(batch_size).init_with_batch_size_handle())
            }
            Self::Shampoo => (ShampooConfig::new().init(), None),
            Self::SignGd => (SignGdConfig::new().init(), None),
            Self::Signum => (SignumConfig::new().init(), None),
            Self::SgdPlrs | Self::Sam | Self::Gam => (SgdConfig::new().init(), None),
        }
    }

    /// The learning-rate schedule: `lr` constant, except PLRS (uniform in [0.07, 0.1]).
    pub fn scheduler(self, lr: f64) -> ModuleLrScheduler {
        match self {
            Self::SgdPlrs => PlrsConfig::new(0.07, 0.1).with_seed(1).init().unwrap(),
            _ => ModuleLrScheduler::from(lr),
        }
    }

    /// A learning rate inside the plateau of this problem's sweep (`main.rs sweep`; the
    /// ember-optim README's table).
    pub fn learning_rate(self) -> f64 {
        match self {
            Self::SignGd | Self::Signum => 3e-3,
            Self::Adam | Self::RfRmsProp | Self::RfAdaGrad | Self::IfShampoo | Self::Shampoo => {
                1e-2
            }
            Self::RfAdamW | Self::SgdPlrs | Self::Sam | Self::Gam => 0.1,
        }
    }

    /// How `TrainStep::step` computes the gradient.
    pub fn gradient_rule(self) -> GradientRule {
        match self {
            Self::Sam => GradientRule::Sam(SamConfig::new().build().unwrap()),
            Self::Gam => GradientRule::Gam(GamConfig::new().build().unwrap()),
            _ => GradientRule::Plain,
        }
    }

    /// The name printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Adam => "Adam (burn)",
            Self::RfRmsProp => "RF-RMSProp",
            Self::RfAdaGrad => "RF-AdaGrad",
            Self::RfAdamW => "RF-AdamW",
            Self::IfShampoo => "IF-Shampoo",
            Self::Shampoo => "Shampoo",
            Self::SignGd => "SignGD",
            Self::Signum => "Signum",
            Self::SgdPlrs => "SGD + PLRS",
            Self::Sam => "SAM (SGD)",
            Self::Gam => "GAM (SGD)",
        }
    }
}

/// The CPU device the example trains on. burn materialises loaded optimizer state on
/// `Device::default()`, so that is pinned to the same backend.
pub fn device() -> Device {
    static PIN_DEFAULT: std::sync::Once = std::sync::Once::new();
    PIN_DEFAULT.call_once(|| std::env::set_var("BURN_DEVICE", "flex"));
    Device::flex()
}

/// What a run ends with, measured on the validation set.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Every parameter, flattened in visiting order (for exact comparisons).
    pub parameters: Vec<f32>,
}

/// Training settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The constant learning rate; `None`: [`OptimizerChoice::learning_rate`]. (PLRS keeps its
    /// bounds.)
    pub learning_rate: Option<f64>,
    /// Training examples (not a multiple of the batch size, so the last batch is smaller).
    pub train_size: usize,
    /// Validation examples.
    pub valid_size: usize,
    /// Examples per batch.
    pub batch_size: usize,
    /// Epochs in all.
    pub epochs: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            learning_rate: None,
            train_size: 250,
            valid_size: 200,
            batch_size: 32,
            epochs: 3,
        }
    }
}

/// Trains with `choice` in burn's `Learner`, checkpointing under `dir`; with `resume_from`,
/// continues from that epoch's checkpoint (burn-train's own resume) instead of starting afresh.
pub fn train(
    choice: OptimizerChoice,
    settings: &Settings,
    dir: &Path,
    resume_from: Option<usize>,
) -> Outcome {
    let device = device();
    device.seed(42);
    let autodiff = device.clone().autodiff();
    // No shuffling: the data order is then the same in a resumed run, so it can be compared with
    // an uninterrupted one exactly.
    let loader = |n: usize, seed: u64| {
        DataLoaderBuilder::new(ExampleBatcher)
            .batch_size(settings.batch_size)
            .build(InMemDataset::new(examples(n, seed)))
    };
    let (train_loader, valid_loader) = (
        loader(settings.train_size, 1),
        loader(settings.valid_size, 2),
    );

    let mut training = SupervisedTraining::new(dir, train_loader, valid_loader.clone())
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_default_checkpointers()
        .with_application_logger(None)
        .num_epochs(settings.epochs);
    if let Some(epoch) = resume_from {
        training = training.checkpoint(epoch);
    }
    let (optimizer, batch_size) = choice.module_optimizer(settings.batch_size);
    let model = Classifier::new(&autodiff, choice.gradient_rule(), batch_size);
    let lr = settings
        .learning_rate
        .unwrap_or_else(|| choice.learning_rate());
    let result = training.launch(Learner::new(model, optimizer, choice.scheduler(lr)));
    evaluate(&result.model, valid_loader.as_ref())
}

/// Loss and accuracy of `model` over the whole of `loader`.
pub fn evaluate(model: &Classifier, loader: &dyn DataLoader<ExampleBatch>) -> Outcome {
    let (mut loss_sum, mut correct, mut count) = (0.0, 0usize, 0usize);
    for batch in loader.iter() {
        let Ok(batch) = batch else { continue };
        let n = batch.targets.dims()[0];
        let output = model.forward_classification(batch);
        loss_sum += output.loss.into_scalar::<f64>() * n as f64;
        let predicted = output.output.argmax(1).reshape([n]);
        correct += predicted
            .equal(output.targets)
            .int()
            .sum()
            .into_scalar::<i64>() as usize;
        count += n;
    }
    Outcome {
        loss: loss_sum / count.max(1) as f64,
        accuracy: correct as f64 / count.max(1) as f64,
        parameters: parameters(model),
    }
}

/// Every parameter of `model`, flattened in visiting order.
pub fn parameters<M: Module>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.try_to_vec::<f32>().unwrap_or_default());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}
