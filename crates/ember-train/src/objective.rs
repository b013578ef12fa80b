//! The training objective handed to optimizers: a [`Task`]'s loss on the current mini-batch, or on
//! one of its fixed full-data batches for snapshot methods, counting every pass it runs.

use burn::optim::GradientsParams;
use burn::prelude::*;
use ember_optim::{Batch, Objective};

use crate::task::Task;

/// Forward and backward passes run so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassCounts {
    /// Forward passes (loss evaluations).
    pub forward: u64,
    /// Backward passes (gradient computations).
    pub backward: u64,
}

impl PassCounts {
    /// Forward and backward passes per step between `before` and `self` over `steps` steps
    /// (`0/0` reads as 0).
    pub fn per_step_since(self, before: PassCounts, steps: usize) -> (f64, f64) {
        let steps = steps.max(1) as f64;
        (
            (self.forward - before.forward) as f64 / steps,
            (self.backward - before.backward) as f64 / steps,
        )
    }
}

/// A [`Task`]'s loss as the [`Objective`] optimizers query: on the current mini-batch, or on
/// full-data batch `i`. The most recent full-data batch is kept, so that the `q + 1` forward passes a
/// zeroth-order snapshot runs per batch build it once.
pub struct TaskObjective<'a, T: Task> {
    task: &'a T,
    current: Option<T::Batch>,
    full: Option<(usize, T::Batch)>,
    /// The passes run through this objective.
    pub passes: PassCounts,
}

impl<'a, T: Task> TaskObjective<'a, T> {
    /// An objective over `task`, with no current batch yet.
    pub fn new(task: &'a T) -> Self {
        Self {
            task,
            current: None,
            full: None,
            passes: PassCounts::default(),
        }
    }

    /// Makes `batch` the current mini-batch.
    pub fn set_current(&mut self, batch: T::Batch) {
        self.current = Some(batch);
    }

    fn mean_loss(&mut self, model: &T::Model, which: Batch) -> Tensor<1> {
        self.passes.forward += 1;
        let task = self.task;
        let batch = match which {
            Batch::Current => self
                .current
                .as_ref()
                .expect("no current mini-batch: closure optimizers use Batch::Full in begin_epoch"),
            Batch::Full(i) => {
                if self.full.as_ref().is_none_or(|(cached, _)| *cached != i) {
                    self.full = Some((i, task.full_batch(i)));
                }
                &self.full.as_ref().expect("just filled").1
            }
        };
        task.loss(model, batch)
    }
}

impl<T: Task> Objective<T::Model> for TaskObjective<'_, T> {
    fn gradient(&mut self, model: &T::Model, batch: Batch) -> (Tensor<1>, GradientsParams) {
        let loss = self.mean_loss(model, batch);
        self.passes.backward += 1;
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss.detach(), grads)
    }

    fn loss(&mut self, model: &T::Model, batch: Batch) -> Tensor<1> {
        self.mean_loss(model, batch).detach()
    }

    fn full_batches(&self) -> usize {
        self.task.full_batches()
    }
}
