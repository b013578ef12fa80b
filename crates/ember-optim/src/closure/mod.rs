//! Optimizers that evaluate the objective more than once per step (GAM, SAM, VAMO, ZO-SGD, SVRG).
//!
//! A per-parameter burn `Optimizer` sees one tensor and its gradient; these methods need the loss at
//! other points in parameter space (GAM's four gradients, VAMO's forward-only snapshot estimates),
//! so they step with an [`Objective`] they can query as often as they need, following burn's L-BFGS.
//! Every one of them hands its final direction to a *base* burn [`ModuleOptimizer`] (SGD, AdamW,
//! RF-RMSProp, …) as if it were the gradient, so momentum, weight decay and preconditioning stay the
//! base optimizer's business.
//!
//! SAM and GAM keep no state of their own, so they are [`DirectionRule`]s: usable inside
//! burn-train's `Learner` (see [`DirectionRule::gradients`]), or paired with a base optimizer by
//! [`DirectionRule::with_base`]. VAMO, SVRG and ZO-SGD keep state across steps and need
//! [`ClosureOptimizer::begin_epoch`] with full-data passes (VAMO, SVRG), which burn-train's
//! `TrainStep` (`&self`, one batch, no epoch hook) cannot give them: train them with a loop that
//! drives a [`ClosureOptimizer`], such as ember-train's.

mod counter_normal;
mod direction;
mod gam;
mod param_vec;
mod record;
mod sam;
mod snapshot;
#[cfg(test)]
mod tests;
mod zeroth_order;

pub use direction::{DirectionRule, WithBase};
pub use gam::{Gam, GamConfig};
pub use param_vec::{detached_view, isolated_copy};
pub use record::ClosureRecordError;
pub use sam::{Sam, SamConfig};
pub use snapshot::{Svrg, SvrgConfig, Vamo, VamoConfig};
pub use zeroth_order::{ZoSgd, ZoSgdConfig};

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

/// Which data an [`Objective`] evaluates the loss on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// The mini-batch of the current step.
    Current,
    /// Batch `i` (`0 ≤ i <` [`Objective::full_batches`]) of a fixed, un-augmented pass over the
    /// whole training set, for snapshot methods (SVRG, VAMO).
    Full(usize),
}

/// The training objective as a closure optimizer sees it: the loss of any model (same structure
/// and parameter ids as the one being trained) on the current mini-batch or on the full data.
///
/// Implementations count the passes they run, so a trainer can report them independently of what
/// an optimizer claims.
pub trait Objective<M> {
    /// Mean loss of `model` on `batch` and its gradients: one forward and one backward pass.
    fn gradient(&mut self, model: &M, batch: Batch) -> (Tensor<1>, GradientsParams);
    /// Mean loss of `model` on `batch`, forward pass only (zeroth-order evaluations). Pass a model
    /// whose parameters do not require gradients (see [`detached_view`]) so that no graph is
    /// recorded.
    fn loss(&mut self, model: &M, batch: Batch) -> Tensor<1>;
    /// How many [`Batch::Full`] batches there are.
    fn full_batches(&self) -> usize;
}

/// What one closure-optimizer step hands back to the training loop.
pub struct ClosureStep<M> {
    /// The updated model.
    pub model: M,
    /// Mean loss on the current mini-batch at the point the step started from (for logging).
    pub loss: Tensor<1>,
}

/// An optimizer whose step may evaluate the objective several times.
///
/// The trainer calls [`begin_epoch`](Self::begin_epoch) before the first step of every epoch and
/// [`step`](Self::step) once per mini-batch; a snapshot method stepped without a `begin_epoch`
/// takes its snapshot at that step. State needed to continue a run exactly is saved by
/// [`to_bytes`](Self::to_bytes) at epoch ends; snapshot methods retake their snapshot at the next
/// epoch start, so the snapshot itself never has to be stored.
pub trait ClosureOptimizer<M>: ClosureOptimizerClone<M> + Send {
    /// Called before the first step of epoch `epoch` (0-based) with the model about to be trained.
    fn begin_epoch(&mut self, _epoch: usize, _model: &M, _objective: &mut dyn Objective<M>) {}

    /// One optimizer step on the current mini-batch.
    fn step(
        &mut self,
        lr: ModuleLearningRate,
        model: M,
        objective: &mut dyn Objective<M>,
    ) -> ClosureStep<M>;

    /// Named scalars worth logging (e.g. VAMO's mixing weight α); empty by default.
    fn diagnostics(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// The per-parameter optimizer that applies this one's direction as if it were the gradient.
    fn base(&self) -> &ModuleOptimizer;

    /// Mutable access to [`base`](Self::base), for restoring its state.
    fn base_mut(&mut self) -> &mut ModuleOptimizer;

    /// Named scalars of this optimizer's own that a checkpoint must keep (e.g. ZO-SGD's step
    /// count); empty by default.
    fn saved_scalars(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// Restores what [`saved_scalars`](Self::saved_scalars) returned, in the same order.
    fn restore_scalars(&mut self, _values: &[f64]) {}

    /// The optimizer's state (its scalars, then its base optimizer's record) as bytes.
    ///
    /// # Errors
    ///
    /// A [`ClosureRecordError`] when the base optimizer's record cannot be encoded.
    fn to_bytes(&self) -> Result<Vec<u8>, ClosureRecordError> {
        record::encode(&self.saved_scalars(), self.base())
    }

    /// Restores state written by [`to_bytes`](Self::to_bytes) into a freshly built optimizer of
    /// the same kind; bytes of another kind, or truncated, are an error and change nothing.
    ///
    /// # Errors
    ///
    /// A [`ClosureRecordError`] when `bytes` are not such a state (another kind's, truncated, or
    /// not decodable); the optimizer is then unchanged.
    fn load_bytes(&mut self, bytes: &[u8]) -> Result<(), ClosureRecordError> {
        let names: Vec<&str> = self.saved_scalars().iter().map(|(n, _)| *n).collect();
        let (values, base) = record::decode(bytes, &names, self.base().clone())?;
        *self.base_mut() = base;
        self.restore_scalars(&values);
        Ok(())
    }
}

/// Boxed copies of closure optimizers, so that a trainer can keep the state it started from;
/// implemented for every `Clone` one.
pub trait ClosureOptimizerClone<M> {
    /// A boxed copy of this optimizer, state included.
    fn clone_box(&self) -> Box<dyn ClosureOptimizer<M>>;
}

impl<M, T: ClosureOptimizer<M> + Clone + 'static> ClosureOptimizerClone<M> for T {
    fn clone_box(&self) -> Box<dyn ClosureOptimizer<M>> {
        Box::new(self.clone())
    }
}

impl<M> Clone for Box<dyn ClosureOptimizer<M>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}
