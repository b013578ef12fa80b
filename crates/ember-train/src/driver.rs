//! One optimizer step on one batch, with the non-finite skip policy: the inner loop shared by the
//! trainer, `ember lr-find` and the benchmarks.

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;

use crate::guard::{
    first_non_finite_parameter, step_is_finite, NonFinitePolicy, MAX_CONSECUTIVE_SKIPS,
};
use crate::objective::{PassCounts, TaskObjective};
use crate::task::Task;
use crate::StepRule;

/// What a step left.
pub struct Stepped<M> {
    /// The model after the step (the one before it when the step was undone).
    pub model: M,
    /// The mini-batch loss at the point the step started from; `None` when the skip policy undid
    /// the step.
    pub loss: Option<burn::prelude::Tensor<1>>,
}

/// The skip policy undid [`MAX_CONSECUTIVE_SKIPS`] steps in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct GaveUp {
    /// The last undone step's loss.
    pub loss: f64,
    /// The first parameter that step left non-finite, if any.
    pub parameter: Option<String>,
}

/// Takes optimizer steps on a [`Task`]'s batches through a [`StepRule`], counting passes and
/// applying the [`NonFinitePolicy`].
pub struct StepDriver<'a, T: Task> {
    objective: TaskObjective<'a, T>,
    policy: NonFinitePolicy,
    consecutive_skips: usize,
    /// Steps undone by the skip policy so far.
    pub skipped: u64,
}

impl<'a, T: Task> StepDriver<'a, T> {
    /// A driver over `task` applying `policy`.
    pub fn new(task: &'a T, policy: NonFinitePolicy) -> Self {
        Self {
            objective: TaskObjective::new(task),
            policy,
            consecutive_skips: 0,
            skipped: 0,
        }
    }

    /// The forward and backward passes run so far.
    pub fn passes(&self) -> PassCounts {
        self.objective.passes
    }

    /// Before a round's first step: snapshot methods take their snapshot here.
    pub fn begin_round(&mut self, round: usize, model: &T::Model, rule: &mut StepRule<T::Model>) {
        rule.begin_epoch(round, model, &mut self.objective);
    }

    /// One step of `rule` at learning rate `lr` on `batch`.
    ///
    /// Under [`NonFinitePolicy::Skip`] a step whose loss or update is not finite is undone
    /// (parameters, BatchNorm statistics and optimizer state restored from copies taken before
    /// it: the step's forward pass moves the shared statistics) and reported with `loss: None`.
    ///
    /// # Errors
    ///
    /// [`GaveUp`] after [`MAX_CONSECUTIVE_SKIPS`] undone steps in a row.
    pub fn step(
        &mut self,
        rule: &mut StepRule<T::Model>,
        lr: ModuleLearningRate,
        model: T::Model,
        batch: T::Batch,
    ) -> Result<Stepped<T::Model>, GaveUp> {
        self.objective.set_current(batch);
        let fallback = (self.policy == NonFinitePolicy::Skip).then(|| {
            (
                ember_optim::closure::isolated_copy(&model, true),
                rule.clone(),
            )
        });
        let step = rule.step(lr, model, &mut self.objective);
        let Some((old_model, old_rule)) = fallback else {
            return Ok(Stepped {
                model: step.model,
                loss: Some(step.loss),
            });
        };
        if step_is_finite(&step.loss, &step.model) {
            self.consecutive_skips = 0;
            return Ok(Stepped {
                model: step.model,
                loss: Some(step.loss),
            });
        }
        self.skipped += 1;
        self.consecutive_skips += 1;
        if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS {
            return Err(GaveUp {
                loss: step.loss.inner().into_scalar::<f64>(),
                parameter: first_non_finite_parameter(&step.model),
            });
        }
        *rule = old_rule;
        Ok(Stepped {
            model: old_model,
            loss: None,
        })
    }

    /// How many steps in a row the skip policy has undone.
    pub fn consecutive_skips(&self) -> usize {
        self.consecutive_skips
    }
}
