//! GAM: gradient-norm-aware minimization (Zhang, Xu, Yu, Zou, Cui — CVPR 2023).

use burn::config::Config;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};

use super::param_vec::{ParamVec, NORM_EPS};
use super::{Batch, DirectionRule, Objective, WithBase};
use crate::assemble::or_fail;
use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// Configuration of [`Gam`]. Defaults are the paper's CIFAR-10 ResNet settings.
///
/// ```
/// use ember_optim::{DirectionRule, GamConfig};
/// use burn::optim::SgdConfig;
///
/// let gam = GamConfig::new().with_grad_norm_rho(0.1).build()?;
/// // For a loop that steps closure optimizers (ember-train's trainer):
/// let optim = gam.with_base(SgdConfig::new().init());
/// // The same in one call:
/// let optim = GamConfig::new().init(SgdConfig::new().init());
/// assert_eq!(GamConfig::new().with_alpha(2.0).validate().unwrap_err().field, "alpha");
/// # Ok::<(), ember_optim::OptimConfigError>(())
/// ```
#[derive(Config, Debug)]
pub struct GamConfig {
    /// ρ, radius of the ascent on the gradient norm (`θ2 = θ + ρ·h0/‖h0‖`). Must be > 0.
    #[config(default = 0.2)]
    pub grad_norm_rho: f64,
    /// ρ', radius of the finite-difference probes `θ + ρ'·g/‖g‖`. Must be > 0.
    #[config(default = 0.03)]
    pub grad_rho: f64,
    /// α, weight of `g1` in `h+ = α·g1 + (1 − α)·g3`. Must lie in [0, 1].
    #[config(default = 0.1)]
    pub alpha: f64,
    /// β, weight of `g0` in `h− = β·g0 + (1 − β)·g2`. Must lie in [0, 1].
    #[config(default = 0.1)]
    pub beta: f64,
    /// γ, how much of `h−`'s part orthogonal to `h+` is subtracted. Must be ≥ 0.
    #[config(default = 0.05)]
    pub gamma: f64,
    /// Weight `h−` as the upstream code does, `g0 + (1 − β)·g2` (g0 not scaled by β), instead of
    /// the paper's `β·g0 + (1 − β)·g2`.
    #[config(default = false)]
    pub upstream_h_minus: bool,
}

impl GamConfig {
    /// Checks every field, naming the first one out of range; [`build`](Self::build) and
    /// [`try_init`](Self::try_init) run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("GamConfig");
        check.positive("grad_norm_rho", self.grad_norm_rho)?;
        check.positive("grad_rho", self.grad_rho)?;
        check.closed_unit("alpha", self.alpha)?;
        check.closed_unit("beta", self.beta)?;
        check.non_negative("gamma", self.gamma)
    }

    /// GAM's direction rule: use it in burn-train's `TrainStep::step` through
    /// [`DirectionRule::gradients`], or give it a base optimizer with
    /// [`DirectionRule::with_base`] for a training loop that steps closure optimizers.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn build(&self) -> Result<Gam, OptimConfigError> {
        self.validate()?;
        Ok(Gam {
            config: self.clone(),
        })
    }

    /// Builds GAM around `base`, which steps on its direction: [`build`](Self::build) then
    /// [`DirectionRule::with_base`], for a training loop that steps closure optimizers.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn try_init(&self, base: ModuleOptimizer) -> Result<WithBase<Gam>, OptimConfigError> {
        Ok(self.build()?.with_base(base))
    }

    /// [`try_init`](Self::try_init), panicking with its message on an invalid config.
    ///
    /// # Panics
    ///
    /// On an invalid config, with [`try_init`](Self::try_init)'s message naming the field.
    pub fn init(&self, base: ModuleOptimizer) -> WithBase<Gam> {
        or_fail(self.try_init(base))
    }
}

/// GAM, four gradient passes per step on the same mini-batch:
///
/// ```text
/// g0 = ∇L(θ)
/// g1 = ∇L(θ + ρ'·g0/‖g0‖)
/// h0 = g1 − g0                                   ≈ ρ'·H·ĝ0, the gradient of the gradient norm
/// θ2 = θ + ρ·h0/‖h0‖                             ascent on the gradient norm
/// g2 = ∇L(θ2)
/// g3 = ∇L(θ2 + ρ'·g2/‖g2‖)
/// h+ = α·g1 + (1 − α)·g3
/// h− = β·g0 + (1 − β)·g2                         (upstream code: g0 + (1 − β)·g2)
/// h−⊥ = h− − (⟨h−, h+⟩/‖h+‖²)·h+
/// direction = h+ − γ·h−⊥                         handed to the base optimizer as the gradient
/// ```
///
/// Norms carry ξ = 1e-12 in their denominators. BatchNorm running statistics move with pass 1
/// only: passes 2–4 run on copies with their own statistics. From *Gradient Norm Aware
/// Minimization Seeks First-Order Flatness and Improves Generalization*, CVPR 2023.
#[derive(Clone, Debug)]
pub struct Gam {
    config: GamConfig,
}

impl DirectionRule for Gam {
    fn direction<M: Module>(
        &self,
        model: &M,
        gradient: GradientsParams,
        objective: &mut dyn Objective<M>,
    ) -> GradientsParams {
        let c = &self.config;
        let gradient_at = |objective: &mut dyn Objective<M>, shift: &ParamVec| {
            let (_, grads) = objective.gradient(&shift.perturbed(model, true), Batch::Current);
            ParamVec::from_grads(model, &grads)
        };
        let g0 = ParamVec::from_grads(model, &gradient);
        let g1 = gradient_at(objective, &g0.scaled(&g0.unit_factor(c.grad_rho)));
        let h0 = g1.lincomb(1.0, &g0, -1.0);
        let ascent = h0.scaled(&h0.unit_factor(c.grad_norm_rho));
        let g2 = gradient_at(objective, &ascent);
        let g3 = gradient_at(
            objective,
            &ascent.add_scaled(&g2, &g2.unit_factor(c.grad_rho)),
        );

        let h_plus = g1.lincomb(c.alpha, &g3, 1.0 - c.alpha);
        let g0_weight = if c.upstream_h_minus { 1.0 } else { c.beta };
        let h_minus = g0.lincomb(g0_weight, &g2, 1.0 - c.beta);
        let projection = h_minus.dot(&h_plus) / h_plus.dot(&h_plus).add_scalar(NORM_EPS);
        let h_perp = h_minus.add_scaled(&h_plus, &projection.neg());
        h_plus.lincomb(1.0, &h_perp, -c.gamma).to_grads(model)
    }
}
