//! RF-AdaGrad: root-free AdaGrad, the running-sum variant of RF-RMSProp (Lin et al., ICML 2024).

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::rf_rmsprop::{RfRmsProp, RootFreeDiagonalKnobs, RootFreeDiagonalState};
use crate::transform::{BatchSizeHandle, CurvatureAccumulation};
use crate::OptimConfigError;

/// Configuration of [`RfAdaGrad`]. The learning rate β1 is not here: burn passes it to each step
/// (unvalidated).
///
/// ```
/// use ember_optim::RfAdaGradConfig;
///
/// let optim = RfAdaGradConfig::new(128).with_beta2(0.05).init(); // B = 128
/// let err = RfAdaGradConfig::new(128).with_damping(-1.0).try_init().err().unwrap();
/// assert_eq!(err.field, "damping");
/// ```
#[derive(Config, Debug)]
pub struct RfAdaGradConfig {
    /// β2, the weight of each step's curvature evidence: `s ← s + β2·B·g⊙g`. The default matches
    /// RF-RMSProp's so both take the same first step. Must be > 0.
    #[config(default = 1e-2)]
    pub beta2: f64,
    /// λ, the damping added to the curvature outside any root: `d = g / (s + λ)`. Must be ≥ 0.
    #[config(default = 1e-5)]
    pub damping: f64,
    /// α1, heavy-ball momentum on the preconditioned direction, `buf ← α1·buf + d` (no `1 − α1`
    /// factor). Must lie in [0, 1).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// κ, weight decay added after preconditioning: `d ← d + κ·θ`. Must be ≥ 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// s0, the curvature before the first step. Must be > 0.
    #[config(default = 1.0)]
    pub init_curvature: f64,
    /// B, the number of examples the loss averages over (see
    /// [`RfRmsPropConfig::batch_size`](crate::RfRmsPropConfig)). Must be ≥ 1.
    pub batch_size: usize,
    /// Per-parameter gradient clipping, applied by the `init` methods only.
    pub grad_clipping: Option<GradientClippingConfig>,
}

/// Root-free AdaGrad: [`RfRmsProp`] with the curvature summed instead of averaged,
///
/// ```text
/// s   ← s + β2·B·(g ⊙ g)                 s starts at s0 = init_curvature
/// d   ← g / (s + λ) + κ·θ
/// buf ← α1·buf + d
/// θ   ← θ − β1·buf
/// ```
///
/// One of the variants of Lin, Dangel, Eschenhagen, Bae, Turner, Makhzani, *Can We Remove the
/// Square-Root in Adaptive Gradient Methods? A Second-Order Perspective*, ICML 2024. Since `s` only
/// grows, the effective step decays like `1/t` rather than AdaGrad's `1/√t`. It shares RF-RMSProp's
/// code and state layout ([`RootFreeDiagonalState`]); only the accumulation differs.
#[derive(Clone, Debug)]
pub struct RfAdaGrad {
    inner: RfRmsProp,
}

impl RfAdaGrad {
    /// The handle B is read from at every step; set it before stepping when B varies.
    pub fn batch_size(&self) -> &BatchSizeHandle {
        self.inner.batch_size()
    }
}

impl Optimizer for RfAdaGrad {
    type State<const D: usize> = RootFreeDiagonalState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        self.inner.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

impl RfAdaGradConfig {
    fn knobs(&self) -> RootFreeDiagonalKnobs {
        RootFreeDiagonalKnobs {
            config: "RfAdaGradConfig",
            accumulation: CurvatureAccumulation::Sum,
            beta2: self.beta2,
            damping: self.damping,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            init_curvature: self.init_curvature,
            batch_size: self.batch_size,
        }
    }

    /// Checks every field, naming the first one out of range; [`build`](Self::build) and the
    /// `init` methods run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        self.knobs().validate()
    }

    /// The bare optimizer, for
    /// [`ModuleOptimizer::with_group`](burn::optim::ModuleOptimizer::with_group); it reads B from
    /// its [`batch_size`](RfAdaGrad::batch_size) handle, which starts at the config's `batch_size`.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range (see
    /// [`validate`](Self::validate)).
    pub fn build(&self) -> Result<RfAdaGrad, OptimConfigError> {
        self.validate()?;
        Ok(RfAdaGrad {
            inner: self.knobs().build(),
        })
    }

    crate::assemble::module_optimizer_init!(batch_size);
}

#[cfg(test)]
mod tests {
    use super::super::rf_rmsprop::tests::{reference, run};
    use super::*;
    use crate::test_util::{assert_close, assert_decreases_least_squares, assert_resume};

    fn config() -> RfAdaGradConfig {
        RfAdaGradConfig::new(4)
            .with_beta2(0.5)
            .with_damping(0.02)
            .with_momentum(0.6)
            .with_weight_decay(0.05)
            .with_init_curvature(1.5)
    }

    #[test]
    fn one_step_matches_reference() {
        let optim = config().build().unwrap();
        let handle = optim.batch_size().clone();
        let actual = run(&optim, &handle, &[0.2], &[4], 1);
        let expected = reference(true, &[0.2], &[4], 0.5, 0.02, 0.6, 0.05, 1.5, 1);
        assert_close(&actual, &expected, 1e-5);
    }

    #[test]
    fn three_steps_match_reference() {
        let optim = config().build().unwrap();
        let handle = optim.batch_size().clone();
        let (lrs, bs) = ([0.2, 0.1, 0.3], [4, 10, 2]);
        let actual = run(&optim, &handle, &lrs, &bs, 3);
        let expected = reference(true, &lrs, &bs, 0.5, 0.02, 0.6, 0.05, 1.5, 3);
        assert_close(&actual, &expected, 1e-5);
    }

    #[test]
    fn validation_names_the_field() {
        let err = |c: RfAdaGradConfig| c.try_init().err().unwrap();
        let new = || RfAdaGradConfig::new(8);
        let e = err(new().with_beta2(-0.1));
        assert_eq!(e.field, "beta2");
        assert!(
            e.to_string().contains("RfAdaGradConfig.beta2 = -0.1"),
            "{e}"
        );
        // A sum has no convex-combination constraint: β2 > 1 is fine.
        assert!(new().with_beta2(2.0).try_init().is_ok());
        assert_eq!(err(new().with_momentum(-0.1)).field, "momentum");
        assert_eq!(err(new().with_init_curvature(-1.0)).field, "init_curvature");
        assert_eq!(err(RfAdaGradConfig::new(0)).field, "batch_size");
    }

    #[test]
    fn save_load_resumes_identically() {
        assert_resume(|| RfAdaGradConfig::new(2).init());
    }

    #[test]
    fn decreases_least_squares_loss() {
        assert_decreases_least_squares(|| RfAdaGradConfig::new(16).init(), 0.05);
    }
}
