//! How the loop turns a mini-batch into an update: through a per-parameter burn optimizer
//! (`loss.backward()` → `ModuleOptimizer::step`) or through a closure optimizer that evaluates the
//! objective itself (GAM, SAM, VAMO, ZO-SGD, SVRG). This is the one place the two paths differ.

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Bytes;
use ember_optim::{Batch, ClosureOptimizer, ClosureStep, Objective};

/// A run's optimizer, of either kind.
pub enum StepRule<M> {
    /// A per-parameter burn optimizer: one forward and one backward pass a step.
    Gradient(ModuleOptimizer),
    /// An optimizer that queries the objective as often as it needs.
    Closure(Box<dyn ClosureOptimizer<M>>),
}

impl<M> Clone for StepRule<M> {
    fn clone(&self) -> Self {
        match self {
            Self::Gradient(o) => Self::Gradient(o.clone()),
            Self::Closure(o) => Self::Closure(o.clone()),
        }
    }
}

impl<M> From<ModuleOptimizer> for StepRule<M> {
    fn from(optimizer: ModuleOptimizer) -> Self {
        Self::Gradient(optimizer)
    }
}

impl<M: Module + 'static> StepRule<M> {
    /// Called before the first step of every epoch (snapshot methods take their snapshot here).
    pub fn begin_epoch(&mut self, epoch: usize, model: &M, objective: &mut dyn Objective<M>) {
        if let Self::Closure(o) = self {
            o.begin_epoch(epoch, model, objective);
        }
    }

    /// One optimizer step on the objective's current mini-batch.
    pub fn step(
        &mut self,
        lr: ModuleLearningRate,
        model: M,
        objective: &mut dyn Objective<M>,
    ) -> ClosureStep<M> {
        match self {
            Self::Gradient(optimizer) => {
                let (loss, grads) = objective.gradient(&model, Batch::Current);
                ClosureStep {
                    model: optimizer.step(lr, model, grads),
                    loss,
                }
            }
            Self::Closure(optimizer) => optimizer.step(lr, model, objective),
        }
    }

    /// Named scalars the optimizer reports (VAMO's α); empty for per-parameter optimizers.
    pub fn diagnostics(&self) -> Vec<(&'static str, f64)> {
        match self {
            Self::Gradient(_) => Vec::new(),
            Self::Closure(o) => o.diagnostics(),
        }
    }

    /// The optimizer state as bytes, for a checkpoint.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Self::Gradient(o) => o
                .into_bytes()
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string()),
            Self::Closure(o) => o.to_bytes().map_err(|e| e.to_string()),
        }
    }

    /// This (freshly built) optimizer with the state of [`to_bytes`](Self::to_bytes) loaded.
    pub fn load_bytes(self, bytes: Vec<u8>) -> Result<Self, String> {
        match self {
            Self::Gradient(o) => o
                .from_bytes(Bytes::from_bytes_vec(bytes))
                .map(Self::Gradient)
                .map_err(|e| e.to_string()),
            Self::Closure(mut o) => {
                o.load_bytes(&bytes).map_err(|e| e.to_string())?;
                Ok(Self::Closure(o))
            }
        }
    }
}
