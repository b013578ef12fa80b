//! What every benchmark times: one model at CIFAR shape on one device, trained on a few fixed
//! batches of the generated data set through `ember-train`'s own objective and step rules.

use anyhow::Context;
use burn::prelude::*;
use ember_data::{Augmentation, GeneratedConfig, ImageBatcher, Normalization};
use ember_models::{AnyClassifier, SmallCnnConfig, TwoLayerTransformerConfig};
use ember_train::{DeviceChoice, EvalSplit, ImageClassification, Task, TaskObjective, TrainData};
use serde::{Deserialize, Serialize};

/// Batches in the "full data" that snapshot methods (SVRG, VAMO) average over at the start of an
/// epoch: enough to exercise the pass, few enough to keep the benchmark short.
pub const FULL_DATA_BATCHES: usize = 4;

/// CIFAR's shape: 3×32×32 images, 10 classes.
const CHANNELS: usize = 3;
const SIDE: usize = 32;
const CLASSES: usize = 10;

/// The models a benchmark can time, at CIFAR shape with their default widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchModel {
    /// `SmallCnn` (3 stages of 3×3 convolutions with BatchNorm).
    SmallCnn,
    /// `TwoLayerTransformer` (patch 4, dim 64, 4 heads, MLP 128, 2 blocks).
    Transformer,
}

impl BenchModel {
    /// The model's type name, as reports show it.
    pub fn name(self) -> &'static str {
        match self {
            BenchModel::SmallCnn => "SmallCnn",
            BenchModel::Transformer => "TwoLayerTransformer",
        }
    }

    /// Trainable parameters, from the config (burn's `num_params` also counts BatchNorm running
    /// statistics, which no optimizer updates).
    pub fn trainable_params(self) -> usize {
        match self {
            BenchModel::SmallCnn => Self::small_cnn().trainable_params(),
            BenchModel::Transformer => Self::transformer().trainable_params(),
        }
    }

    pub(crate) fn init(self, device: &Device) -> anyhow::Result<AnyClassifier> {
        Ok(match self {
            BenchModel::SmallCnn => Self::small_cnn().init(device)?.into(),
            BenchModel::Transformer => Self::transformer().init(device)?.into(),
        })
    }

    pub(crate) fn small_cnn() -> SmallCnnConfig {
        SmallCnnConfig::new(CHANNELS, CLASSES)
    }

    pub(crate) fn transformer() -> TwoLayerTransformerConfig {
        TwoLayerTransformerConfig::new(CHANNELS, SIDE, SIDE, CLASSES)
    }
}

/// A model on a device with [`FULL_DATA_BATCHES`] batches of generated CIFAR-shaped images.
pub struct Workload {
    /// Which model.
    pub kind: BenchModel,
    /// The device, as chosen on the command line.
    pub choice: DeviceChoice,
    /// The device itself (seeded with 0).
    pub device: Device,
    /// The freshly initialised model.
    pub model: AnyClassifier,
    /// Images per batch.
    pub batch_size: usize,
    /// Image classification of `FULL_DATA_BATCHES × batch_size` images on the device, with
    /// CIFAR's crop + flip augmentation as `ember train` uses on natural images: the full data of
    /// snapshot methods, and the epochs of the end-to-end loop (seed 0).
    pub task: ImageClassification<AnyClassifier>,
}

impl Workload {
    /// `kind` initialised on `choice`'s device, with its generated data in batches of
    /// `batch_size`.
    pub fn new(choice: DeviceChoice, kind: BenchModel, batch_size: usize) -> anyhow::Result<Self> {
        let device = choice.device()?;
        device.seed(0);
        let model = kind.init(&device)?;
        let split = GeneratedConfig {
            train_size: FULL_DATA_BATCHES * batch_size,
            test_size: 1,
            image_size: SIDE,
            channels: CHANNELS,
            num_classes: CLASSES,
            ..GeneratedConfig::default()
        }
        .generate()?;
        let data = TrainData {
            batcher: ImageBatcher::new(
                Normalization::fit(&split.train),
                Some(Augmentation::cifar()),
            ),
            train: split.train,
            test: split.test,
            eval_split: EvalSplit::Test,
        };
        let task = ImageClassification::new(&data, batch_size, batch_size, 0, &device)?;
        Ok(Self {
            kind,
            choice,
            device,
            model,
            batch_size,
            task,
        })
    }

    /// The training objective over this workload's data, with full-data batch 0 as the current
    /// mini-batch; it counts the passes run through it.
    pub fn objective(&self) -> TaskObjective<'_, ImageClassification<AnyClassifier>> {
        let mut objective = TaskObjective::new(&self.task);
        objective.set_current(self.task.full_batch(0));
        objective
    }

    /// Waits for the device to finish queued work, so that a timer stopped after it measures that
    /// work.
    pub fn sync(&self) -> anyhow::Result<()> {
        self.device.sync().context("device sync")
    }
}
