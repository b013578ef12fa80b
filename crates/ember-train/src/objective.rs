//! The training objective handed to optimizers: cross-entropy on the current mini-batch, or on a
//! fixed pass over the training set for snapshot methods, counting every pass it runs.

use burn::nn::loss::CrossEntropyLoss;
use burn::optim::GradientsParams;
use burn::prelude::*;
use ember_data::{DeviceImages, ImageBatch, ImageBatcher};
use ember_models::ImageClassifier;
use ember_optim::{Batch, Objective};

/// Forward and backward passes run so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassCounts {
    pub forward: u64,
    pub backward: u64,
}

/// Cross-entropy of an [`ImageClassifier`] on the current batch or on full-data batch `i`.
///
/// Full-data batches are `batch_size` consecutive images in index order without augmentation (the
/// last incomplete one dropped), the same every epoch; the most recent one is kept so that the
/// `q + 1` forward passes a zeroth-order snapshot runs per batch gather it once.
pub struct BatchObjective<'a> {
    loss_fn: &'a CrossEntropyLoss,
    train: &'a DeviceImages,
    batcher: &'a ImageBatcher,
    batch_size: usize,
    current: Option<ImageBatch>,
    full: Option<(usize, ImageBatch)>,
    /// The passes run through this objective.
    pub passes: PassCounts,
}

impl<'a> BatchObjective<'a> {
    pub fn new(
        loss_fn: &'a CrossEntropyLoss,
        train: &'a DeviceImages,
        batcher: &'a ImageBatcher,
        batch_size: usize,
    ) -> Self {
        Self {
            loss_fn,
            train,
            batcher,
            batch_size,
            current: None,
            full: None,
            passes: PassCounts::default(),
        }
    }

    /// Makes `batch` the current mini-batch.
    pub fn set_current(&mut self, batch: ImageBatch) {
        self.current = Some(batch);
    }

    fn batch(&mut self, which: Batch) -> &ImageBatch {
        match which {
            Batch::Current => self
                .current
                .as_ref()
                .expect("no current mini-batch: closure optimizers use Batch::Full in begin_epoch"),
            Batch::Full(i) => {
                if self.full.as_ref().is_none_or(|(cached, _)| *cached != i) {
                    let batch =
                        self.batcher
                            .eval_batch(self.train, i * self.batch_size, self.batch_size);
                    self.full = Some((i, batch));
                }
                &self.full.as_ref().expect("just filled").1
            }
        }
    }

    fn mean_loss<M: ImageClassifier>(&mut self, model: &M, which: Batch) -> Tensor<1> {
        self.passes.forward += 1;
        let loss_fn = self.loss_fn;
        let batch = self.batch(which);
        let logits = model.forward(batch.images.clone());
        loss_fn.forward(logits, batch.targets.clone())
    }
}

impl<M: ImageClassifier> Objective<M> for BatchObjective<'_> {
    fn gradient(&mut self, model: &M, batch: Batch) -> (Tensor<1>, GradientsParams) {
        let loss = self.mean_loss(model, batch);
        self.passes.backward += 1;
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss.detach(), grads)
    }

    fn loss(&mut self, model: &M, batch: Batch) -> Tensor<1> {
        self.mean_loss(model, batch).detach()
    }

    fn full_batches(&self) -> usize {
        self.train.len() / self.batch_size
    }
}
