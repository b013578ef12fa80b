//! Image classification as a [`Task`]: cross-entropy of an [`ImageClassifier`] on augmented
//! batches, an epoch per round, accuracy as the selection metric.

use std::cell::RefCell;

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;
use ember_data::{epoch_order, DeviceImages, EpochBatches, ImageBatch, ImageBatcher, ImageSet};
use ember_models::ImageClassifier;

use crate::task::{BatchPosition, Budget, Fingerprint, RoundPlan, Task};
use crate::{EvalSplit, Evaluation, Selection, SettingsError};

/// The images a run trains and evaluates on, still on the host.
pub struct TrainData {
    /// The images the optimizer steps on.
    pub train: ImageSet,
    /// What each epoch is evaluated on: the test set, or a validation split.
    pub test: ImageSet,
    /// Which of the two [`test`](Self::test) is.
    pub eval_split: EvalSplit,
    /// How a batch is assembled on the device (augmentation, normalisation).
    pub batcher: ImageBatcher,
}

/// Image classification of `M` on [`TrainData`] uploaded to the training device once.
///
/// An epoch visits the training set in the order of `(seed, epoch)` in batches of `batch_size`
/// (the last incomplete batch dropped, so every step sees as many images and BatchNorm statistics
/// stay comparable); full-data batches are consecutive images in index order, un-augmented.
pub struct ImageClassification<M> {
    train: DeviceImages,
    eval: DeviceImages,
    eval_split: EvalSplit,
    batcher: ImageBatcher,
    batch_size: usize,
    eval_batch_size: usize,
    seed: u64,
    fingerprint: String,
    loss: CrossEntropyLoss,
    /// The batches of the epoch being trained, built when its first batch is asked for.
    epoch: RefCell<Option<(usize, EpochBatches)>>,
    model: std::marker::PhantomData<fn() -> M>,
}

impl<M: ImageClassifier + 'static> ImageClassification<M> {
    /// The task on `data`, uploaded to `device`, with training batches of `batch_size` and
    /// evaluation batches of `eval_batch_size` images; `seed` orders and augments the epochs.
    ///
    /// # Errors
    ///
    /// A batch size of 0 or larger than the training set, naming the field.
    pub fn new(
        data: &TrainData,
        batch_size: usize,
        eval_batch_size: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, SettingsError> {
        let train_len = data.train.len();
        if batch_size == 0 || batch_size > train_len {
            return Err(SettingsError::new(
                "batch_size",
                format!(
                    "must be between 1 and the training set size ({train_len}), got {batch_size}"
                ),
            ));
        }
        if eval_batch_size == 0 {
            return Err(SettingsError::new("eval_batch_size", "must be at least 1"));
        }
        Ok(Self {
            train: data.batcher.upload(&data.train, device),
            eval: data.batcher.upload(&data.test, device),
            eval_split: data.eval_split,
            batcher: data.batcher.clone(),
            batch_size,
            eval_batch_size,
            seed,
            fingerprint: fingerprint(&[&data.train, &data.test]),
            loss: CrossEntropyLossConfig::new().init(device),
            epoch: RefCell::new(None),
            model: std::marker::PhantomData,
        })
    }

    /// The training images, on the device.
    pub fn train_images(&self) -> &DeviceImages {
        &self.train
    }
}

impl<M: ImageClassifier + 'static> Task for ImageClassification<M> {
    type Model = M;
    type Batch = ImageBatch;

    fn plan(&self, budget: &Budget) -> Result<RoundPlan, SettingsError> {
        match *budget {
            Budget::Epochs { epochs } => Ok(RoundPlan {
                rounds: epochs,
                steps_per_round: self.train.len() / self.batch_size,
            }),
            Budget::Steps { .. } => Err(SettingsError::new(
                "steps",
                "image classification trains for a number of epochs, not steps",
            )),
        }
    }

    fn train_batch(&self, position: BatchPosition) -> ImageBatch {
        let mut epoch = self.epoch.borrow_mut();
        if epoch
            .as_ref()
            .is_none_or(|(round, _)| *round != position.round)
        {
            let order = epoch_order(self.train.len(), self.seed, position.round);
            let batches = self
                .batcher
                .epoch(&self.train, &order, self.seed, position.round);
            *epoch = Some((position.round, batches));
        }
        let (_, batches) = epoch.as_ref().expect("just built");
        batches.batch(position.index * self.batch_size, self.batch_size)
    }

    fn full_batches(&self) -> usize {
        self.train.len() / self.batch_size
    }

    fn full_batch(&self, index: usize) -> ImageBatch {
        self.batcher
            .eval_batch(&self.train, index * self.batch_size, self.batch_size)
    }

    fn loss(&self, model: &M, batch: &ImageBatch) -> Tensor<1> {
        let logits = model.forward(batch.images.clone());
        self.loss.forward(logits, batch.targets.clone())
    }

    /// Mean cross-entropy and accuracy, in inference mode (no autodiff, BatchNorm on running
    /// statistics). The sums stay on the device until every batch is done: two host reads per
    /// evaluation, so a GPU never waits on the host between batches.
    fn evaluate(&self, model: &M) -> Evaluation {
        let (loss, accuracy) = evaluate(model, &self.eval, &self.batcher, self.eval_batch_size);
        Evaluation {
            split: self.eval_split,
            loss,
            metrics: [("accuracy".to_string(), accuracy)].into(),
        }
    }

    fn selection(&self) -> Selection {
        Selection::accuracy()
    }

    fn items_per_batch(&self) -> usize {
        self.batch_size
    }

    fn item_name(&self) -> &'static str {
        "images"
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

/// Mean cross-entropy loss and accuracy of `model` on `images`, in inference mode.
pub fn evaluate<M: ImageClassifier>(
    model: &M,
    images: &DeviceImages,
    batcher: &ImageBatcher,
    batch_size: usize,
) -> (f64, f64) {
    let model = model.valid();
    let device = images.device().inner();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut loss_sum = Tensor::<1>::zeros([1], &device);
    let mut correct = Tensor::<1, Int>::zeros([1], &device);
    let mut start = 0;
    while start < images.len() {
        let len = batch_size.min(images.len() - start);
        let batch = batcher.eval_batch(images, start, len);
        let logits = model.forward(batch.images.inner());
        let targets = batch.targets.inner();
        loss_sum = loss_sum.add(
            loss_fn
                .forward(logits.clone(), targets.clone())
                .mul_scalar(len as f64),
        );
        let predicted = logits.argmax(1).flatten::<1>(0, 1);
        correct = correct.add(predicted.equal(targets).int().sum());
        start += len;
    }
    let n = images.len().max(1) as f64;
    (
        loss_sum.into_scalar::<f64>() / n,
        correct.into_scalar::<i64>() as f64 / n,
    )
}

/// The images, labels and shapes of `sets`: equal data give equal fingerprints everywhere.
fn fingerprint(sets: &[&ImageSet]) -> String {
    let mut hash = Fingerprint::default();
    for set in sets {
        let shape = set.shape();
        for n in [set.len(), shape.channels, shape.height, shape.width] {
            hash.word(n as u64);
        }
        hash.bytes(set.pixels());
        for &label in set.labels() {
            hash.word(u64::from(label));
        }
    }
    hash.hex()
}
