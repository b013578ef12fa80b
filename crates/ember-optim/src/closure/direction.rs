//! Direction rules (SAM, GAM): methods that turn several gradients of the current batch into one
//! update direction, which any per-parameter optimizer then applies as if it were the gradient.

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use super::{Batch, ClosureOptimizer, ClosureStep, Objective};

/// A method that computes its update direction from extra gradient evaluations on the current
/// batch, starting from the plain gradient there: SAM ([`Sam`](crate::Sam)) and GAM
/// ([`Gam`](crate::Gam)).
///
/// It keeps no state between steps, so it fits anywhere a gradient is produced:
///
/// * **burn-train's `Learner`**: call [`gradients`](Self::gradients) in your model's
///   `TrainStep::step` and return its gradients in the `TrainOutput`; the Learner's own optimizer
///   (SGD, AdamW, RF-RMSProp, …) applies them, and its scheduler and checkpoints work unchanged.
/// * **a loop that steps closure optimizers** (ember-train's trainer): [`with_base`](Self::with_base)
///   pairs the rule with the optimizer that applies its direction.
///
/// BatchNorm running statistics move with the first pass only (the one on `model` itself): every
/// further pass runs on a copy with its own statistics, as the papers' code does.
pub trait DirectionRule: Clone + Send + 'static {
    /// The direction at `model`, given `gradient` (the mean-loss gradient of the current batch at
    /// `model`, already computed) and `objective` for the further passes on the same batch.
    fn direction<M: Module>(
        &self,
        model: &M,
        gradient: GradientsParams,
        objective: &mut dyn Objective<M>,
    ) -> GradientsParams;

    /// The rule's direction for one batch, for burn-train's `TrainStep::step`.
    ///
    /// `forward` runs the model on the batch and returns the mean loss and whatever the step
    /// reports (e.g. burn's `ClassificationOutput`); it is called once on `model` (that call's
    /// output is returned, for the Learner's metrics) and again on perturbed copies. Returns the
    /// gradients to put in `TrainOutput` and the first call's output.
    ///
    /// ```no_run
    /// # use burn::module::Module;
    /// # use burn::optim::GradientsParams;
    /// # use burn::tensor::Tensor;
    /// use ember_optim::{DirectionRule, SamConfig};
    ///
    /// # fn demo<M: Module>(model: &M, forward: impl Fn(&M) -> Tensor<1>) {
    /// let sam = SamConfig::new().build().unwrap();
    /// // inside `fn step(&self, batch) -> TrainOutput<ClassificationOutput>`:
    /// let (grads, loss): (GradientsParams, Tensor<1>) =
    ///     sam.gradients(model, |m| { let loss = forward(m); (loss.clone(), loss) });
    /// # }
    /// ```
    fn gradients<M: Module, T>(
        &self,
        model: &M,
        mut forward: impl FnMut(&M) -> (Tensor<1>, T),
    ) -> (GradientsParams, T) {
        let (loss, output) = forward(model);
        let gradient = GradientsParams::from_grads(loss.backward(), model);
        let mut objective = ForwardObjective {
            forward: |m: &M| forward(m).0,
        };
        (self.direction(model, gradient, &mut objective), output)
    }

    /// The rule with `base`, the per-parameter optimizer that applies its direction, as a
    /// [`ClosureOptimizer`].
    fn with_base(self, base: ModuleOptimizer) -> WithBase<Self> {
        WithBase { rule: self, base }
    }
}

/// The current batch's loss through a caller's forward closure: all a direction rule needs.
struct ForwardObjective<F> {
    forward: F,
}

impl<M: Module, F: FnMut(&M) -> Tensor<1>> Objective<M> for ForwardObjective<F> {
    fn gradient(&mut self, model: &M, _batch: Batch) -> (Tensor<1>, GradientsParams) {
        let loss = (self.forward)(model);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss, grads)
    }

    fn loss(&mut self, model: &M, _batch: Batch) -> Tensor<1> {
        (self.forward)(model)
    }

    fn full_batches(&self) -> usize {
        0
    }
}

/// A [`DirectionRule`] whose direction `base` applies: a [`ClosureOptimizer`] whose saved state is
/// the base optimizer's (the rule keeps none).
#[derive(Clone)]
pub struct WithBase<R> {
    rule: R,
    base: ModuleOptimizer,
}

impl<R> WithBase<R> {
    /// The direction rule.
    pub fn rule(&self) -> &R {
        &self.rule
    }
}

impl<M: Module + 'static, R: DirectionRule> ClosureOptimizer<M> for WithBase<R> {
    fn step(
        &mut self,
        lr: ModuleLearningRate,
        model: M,
        objective: &mut dyn Objective<M>,
    ) -> ClosureStep<M> {
        let (loss, gradient) = objective.gradient(&model, Batch::Current);
        let direction = self.rule.direction(&model, gradient, objective);
        ClosureStep {
            model: self.base.step(lr, model, direction),
            loss,
        }
    }

    fn base(&self) -> &ModuleOptimizer {
        &self.base
    }

    fn base_mut(&mut self) -> &mut ModuleOptimizer {
        &mut self.base
    }
}
