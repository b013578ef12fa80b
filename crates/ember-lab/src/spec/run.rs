use anyhow::Context;
use burn::prelude::{Device, Module};
use ember_data::{Augmentation, ImageBatcher, Normalization, Split};
use ember_models::AnyClassifier;
use ember_train::{
    DeviceChoice, EvalSplit, ImageClassification, RunDir, RunSummary, TrainData, TrainParts,
    TrainSettings,
};
use serde::Serialize;

use super::{DataSpec, DatasetSpec, Holdout, ModelSpec, OptimizerSpec, SchedulerSpec, SpecError};
use crate::spec::TransformerSpec;

/// One training run, complete: what `ember train`'s flags and an experiment arm (for one seed)
/// both become, and what a run's `config.json` records.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The model and its shape.
    pub model: ModelSpec,
    /// The data set, its subsets, augmentation, noise and validation split.
    pub data: DataSpec,
    /// The optimizer and its hyper-parameters.
    pub optimizer: OptimizerSpec,
    /// The learning-rate schedule.
    pub scheduler: SchedulerSpec,
    /// The training loop's settings: batch sizes, budget, seed, logging.
    pub train: TrainSettings,
    /// `flex`, `ndarray`, `wgpu`, `wgpu:N` or `wgpu-cpu` ([`DeviceChoice`]).
    pub device: String,
}

/// Everything built from a [`RunSpec`] before training: the device, the loaded data with its
/// batcher and the freshly initialised model. `ember lr-find` starts from the same, so a range
/// test sees exactly the model, data and optimizer that a run with the same spec would.
pub struct Prepared {
    /// The spec's `device`, parsed (and pinned as burn's default device).
    pub device_choice: DeviceChoice,
    /// The device itself, seeded by the run's seed.
    pub device: Device,
    /// Both halves of the data (the evaluated one per `evaluate`) and the batcher fitted to the
    /// training half.
    pub data: TrainData,
    /// The freshly initialised model.
    pub model: AnyClassifier,
}

impl RunSpec {
    /// The same run with every seeded part (model initialisation, data order and augmentation,
    /// generated data, pixel noise, PLRS draws, VAMO/ZO directions) seeded by `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.train.seed = seed;
        self.data.dataset = self.data.dataset.with_seed(seed);
        self.optimizer = self.optimizer.with_seed(seed);
        self.scheduler = self.scheduler.with_seed(seed);
        self
    }

    /// Checks everything that can be checked without loading data, naming the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.device
            .parse::<DeviceChoice>()
            .map_err(|e| SpecError::new("device", e.to_string()))?;
        self.data.validate()?;
        self.optimizer.validate()?;
        if self.optimizer.needs_transformer_blocks()
            && !matches!(self.model, ModelSpec::Transformer(_))
        {
            return Err(SpecError::new(
                "name",
                format!(
                    "{} steps the weight matrices of transformer blocks; model `{}` has none",
                    self.optimizer.name(),
                    self.model.kind()
                ),
            ));
        }
        self.scheduler.validate()
    }

    /// The run's `config.json`: everything that decides its trajectory, resolved (the augmentation
    /// default applied), in the layout Ember has always written.
    pub fn config_json(&self) -> serde_json::Value {
        let (widths, convs_per_stage, hidden, transformer) = match &self.model {
            ModelSpec::Cnn {
                widths,
                convs_per_stage,
            } => (Some(&widths[..]), Some(*convs_per_stage), None, None),
            ModelSpec::Mlp { hidden } => (None, None, Some(&hidden[..]), None),
            ModelSpec::Transformer(t) => (None, None, None, Some(t)),
        };
        serde_json::to_value(RunConfig {
            model: self.model.kind(),
            widths,
            convs_per_stage,
            hidden,
            transformer,
            dataset: &self.data.dataset,
            train_subset: self.data.train_subset,
            test_subset: self.data.test_subset,
            pixel_noise: (self.data.pixel_noise > 0.0).then_some(self.data.pixel_noise),
            validation: self.data.validation.as_ref(),
            evaluate: self.data.validation.map(|_| self.data.evaluate),
            augment: self.data.augments(),
            optimizer: &self.optimizer,
            scheduler: &self.scheduler,
            device: &self.device,
            train: &self.train,
            ember_version: env!("CARGO_PKG_VERSION"),
        })
        .expect("a run spec serialises")
    }

    /// Checks the spec, picks the device, loads the data and initialises the model (seeded by
    /// the run's seed).
    pub fn prepare(&self) -> anyhow::Result<Prepared> {
        self.validate()?;
        let device_choice: DeviceChoice = self.device.parse()?;
        device_choice.pin_as_default();

        let loading = std::time::Instant::now();
        let Split { train, test } = self
            .data
            .load(self.train.seed)
            .with_context(|| format!("loading data set `{}`", self.data.dataset.label()))?;
        if train.is_empty() || test.is_empty() {
            anyhow::bail!("the data set has an empty train or test half");
        }
        let shape = train.shape().clone();
        tracing::info!(
            "data: {} train / {} {} images of {}x{}x{}, {} classes (loaded in {:.1}s)",
            train.len(),
            test.len(),
            self.data.evaluate,
            shape.channels,
            shape.height,
            shape.width,
            train.num_classes(),
            loading.elapsed().as_secs_f64()
        );
        self.train.validate().map_err(SpecError::from)?;
        let batcher = ImageBatcher::new(
            Normalization::fit(&train),
            self.data.augments().then(Augmentation::cifar),
        );

        let device = device_choice.device()?;
        device.seed(self.train.seed);
        let model = self.model.init(&shape, train.num_classes(), &device)?;
        Ok(Prepared {
            device_choice,
            device,
            data: TrainData {
                train,
                test,
                eval_split: self.data.evaluate,
                batcher,
            },
            model,
        })
    }

    /// Trains the run into `run` (continuing it from its newest checkpoint with `resume`).
    pub fn train(&self, run: &RunDir, resume: bool) -> anyhow::Result<RunSummary> {
        let Prepared {
            device_choice,
            device,
            data,
            model,
        } = self.prepare()?;
        let task = ImageClassification::new(
            &data,
            self.train.batch_size,
            self.train.eval_batch_size,
            self.train.seed,
            &device,
        )
        .map_err(SpecError::from)?;
        let plan = ember_train::Task::plan(&task, &self.train.budget).map_err(SpecError::from)?;
        let steps_per_epoch = plan.steps_per_round;
        let parts = TrainParts {
            model,
            optimizer: self.optimizer.build_rule(self.train.batch_size)?,
            scheduler: self.scheduler.build(plan.total_steps(), steps_per_epoch)?,
            schedule_spans_run: self
                .scheduler
                .spans_run()
                .then(|| self.scheduler.name().to_string()),
        };
        tracing::info!(
            "training {} ({} parameters) with {} on {device_choice} for {} rounds of {} steps, run folder {}",
            self.model.type_name(),
            parts.model.num_params(),
            self.optimizer.name(),
            plan.rounds,
            plan.steps_per_round,
            run.root().display()
        );
        Ok(ember_train::train(
            run,
            &self.config_json(),
            &self.train,
            &task,
            parts,
            resume,
        )?)
    }
}

/// The layout of `config.json`. Kept field for field as `ember train` has always written it, so
/// that runs trained before a change still resume and still count as finished for their arm.
#[derive(Serialize)]
struct RunConfig<'a> {
    model: &'static str,
    /// SmallCnn's stage widths (cnn only).
    #[serde(skip_serializing_if = "Option::is_none")]
    widths: Option<&'a [usize]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    convs_per_stage: Option<usize>,
    /// The MLP's hidden widths (mlp only).
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden: Option<&'a [usize]>,
    /// The transformer's shape (transformer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    transformer: Option<&'a TransformerSpec>,
    dataset: &'a DatasetSpec,
    train_subset: Option<usize>,
    test_subset: Option<usize>,
    /// Standard deviation of the fixed pixel noise; absent when off, so that runs from before it
    /// existed still resume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pixel_noise: Option<f64>,
    /// The validation split held out of the training set, and what the epochs were evaluated on;
    /// both absent without a split, as in runs from before splits existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    validation: Option<&'a Holdout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluate: Option<EvalSplit>,
    augment: bool,
    optimizer: &'a OptimizerSpec,
    scheduler: &'a SchedulerSpec,
    device: &'a str,
    train: &'a TrainSettings,
    ember_version: &'static str,
}
