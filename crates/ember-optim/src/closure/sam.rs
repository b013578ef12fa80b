//! SAM: sharpness-aware minimization (Foret, Kleiner, Mobahi, Neyshabur — ICLR 2021), the two-pass
//! baseline GAM is compared with.

use burn::config::Config;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};

use super::param_vec::ParamVec;
use super::{Batch, DirectionRule, Objective, WithBase};
use crate::assemble::or_fail;
use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// Configuration of [`Sam`].
///
/// ```
/// use burn::optim::SgdConfig;
/// use ember_optim::SamConfig;
///
/// let sam = SamConfig::new().with_rho(0.1).build()?;
/// // Around a base optimizer, for a loop that steps closure optimizers:
/// let optim = SamConfig::new().init(SgdConfig::new().init());
/// assert_eq!(SamConfig::new().with_rho(0.0).validate().unwrap_err().field, "rho");
/// # Ok::<(), ember_optim::OptimConfigError>(())
/// ```
#[derive(Config, Debug)]
pub struct SamConfig {
    /// ρ, radius of the ascent step `θ + ρ·g/‖g‖`. Must be > 0; 0.05 is the paper's CIFAR value.
    #[config(default = 0.05)]
    pub rho: f64,
}

impl SamConfig {
    /// Checks `rho`; [`build`](Self::build) and [`try_init`](Self::try_init) run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        FieldCheck::new("SamConfig").positive("rho", self.rho)
    }

    /// SAM's direction rule (see [`GamConfig::build`](crate::GamConfig::build) for its two uses).
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] on `rho` unless it is finite and > 0.
    pub fn build(&self) -> Result<Sam, OptimConfigError> {
        self.validate()?;
        Ok(Sam { rho: self.rho })
    }

    /// Builds SAM around `base`, which steps on its direction (see
    /// [`GamConfig::try_init`](crate::GamConfig::try_init)).
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] on `rho` unless it is finite and > 0.
    pub fn try_init(&self, base: ModuleOptimizer) -> Result<WithBase<Sam>, OptimConfigError> {
        Ok(self.build()?.with_base(base))
    }

    /// [`try_init`](Self::try_init), panicking with its message on an invalid config.
    ///
    /// # Panics
    ///
    /// On an invalid config, with [`try_init`](Self::try_init)'s message naming the field.
    pub fn init(&self, base: ModuleOptimizer) -> WithBase<Sam> {
        or_fail(self.try_init(base))
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
#[derive(Clone, Debug)]
pub struct Sam {
    rho: f64,
}

impl DirectionRule for Sam {
    fn direction<M: Module>(
        &self,
        model: &M,
        gradient: GradientsParams,
        objective: &mut dyn Objective<M>,
    ) -> GradientsParams {
        let g = ParamVec::from_grads(model, &gradient);
        let ascent = g.scaled(&g.unit_factor(self.rho));
        // The perturbed copy keeps the parameter ids, so its gradients apply to `model` as they are.
        objective
            .gradient(&ascent.perturbed(model, true), Batch::Current)
            .1
    }
}
