//! SAM: sharpness-aware minimization (Foret, Kleiner, Mobahi, Neyshabur — ICLR 2021), the two-pass
//! baseline GAM is compared with.

use burn::config::Config;
use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::ModuleOptimizer;

use super::{Batch, ClosureOptimizer, ClosureStep, Objective, ParamVec};
use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// Configuration of [`Sam`].
#[derive(Config, Debug)]
pub struct SamConfig {
    /// ρ, radius of the ascent step `θ + ρ·g/‖g‖`. Must be > 0; 0.05 is the paper's CIFAR value.
    #[config(default = 0.05)]
    pub rho: f64,
}

impl SamConfig {
    /// Builds SAM around `base`, which steps on the gradient taken at the perturbed point.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] on `rho` unless it is finite and > 0.
    pub fn init(&self, base: ModuleOptimizer) -> Result<Sam, OptimConfigError> {
        FieldCheck::new("SamConfig").positive("rho", self.rho)?;
        Ok(Sam {
            rho: self.rho,
            base,
        })
    }
}

/// SAM, two gradient passes per step on the same mini-batch:
///
/// ```text
/// g = ∇L(θ)
/// direction = ∇L(θ + ρ·g/(‖g‖ + ξ))      handed to the base optimizer as the gradient at θ
/// ```
///
/// BatchNorm running statistics move with the first pass only, as in GAM.
#[derive(Clone)]
pub struct Sam {
    rho: f64,
    base: ModuleOptimizer,
}

impl<M: Module + 'static> ClosureOptimizer<M> for Sam {
    fn step(
        &mut self,
        lr: ModuleLearningRate,
        model: M,
        objective: &mut dyn Objective<M>,
    ) -> ClosureStep<M> {
        let (loss, g) = objective.gradient(&model, Batch::Current);
        let g = ParamVec::from_grads(&model, &g);
        let ascent = g.scaled(&g.unit_factor(self.rho));
        let (_, sharp) = objective.gradient(&ascent.perturbed(&model, true), Batch::Current);
        // The perturbed copy keeps the parameter ids, so its gradients apply to `model` as they are.
        ClosureStep {
            model: self.base.step(lr, model, sharp),
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
