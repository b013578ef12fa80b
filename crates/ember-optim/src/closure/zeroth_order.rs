//! The two-point zeroth-order gradient estimator and ZO-SGD, which steps on it alone.

use burn::config::Config;
use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

use super::counter_normal::DirectionKey;
use super::param_vec::{detached_view, ParamVec};
use super::{Batch, ClosureOptimizer, ClosureStep, Objective};
use crate::assemble::or_fail;
use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// The points a two-point estimate evaluates: `x` itself and `x + μ·uⱼ` for `q` unit directions.
///
/// ```text
/// ∇̂f_B(x) = Σⱼ cⱼ·uⱼ,   cⱼ = d/(μ·q) · (f_B(x + μ·uⱼ) − f_B(x))
/// ```
///
/// Only the `q` coefficients depend on the batch `B`, so estimates on many batches with the same
/// directions (VAMO's snapshot) are kept as coefficients, never as `d`-sized vectors per batch.
#[derive(Clone)]
pub(crate) struct ZoPoints<M> {
    /// `x`, on a copy that records no gradients.
    pub center: M,
    /// `x + μ·uⱼ`, copies with their own BatchNorm statistics that record no gradients.
    pub shifted: Vec<M>,
    /// The unit directions `uⱼ`.
    pub directions: Vec<ParamVec>,
    /// `d/(μ·q)`.
    pub scale: f64,
}

impl<M: Module> ZoPoints<M> {
    /// Evaluation points around `center` (a no-grad copy of `model`) along `q` directions, the
    /// `j`-th drawn from the stream `key_of(j)`.
    pub fn new(
        model: &M,
        center: M,
        mu: f64,
        q: usize,
        key_of: impl Fn(usize) -> DirectionKey,
    ) -> Self {
        let template = ParamVec::from_params(model);
        let d = template.num_elements();
        let directions: Vec<ParamVec> = (0..q)
            .map(|j| ParamVec::random_unit(&template, key_of(j)))
            .collect();
        let shifted = directions
            .iter()
            .map(|u| u.mul_scalar(mu).perturbed(model, false))
            .collect();
        Self {
            center,
            shifted,
            directions,
            scale: d as f64 / (mu * q as f64),
        }
    }

    /// The coefficients `cⱼ` on `batch`, and `f_B(x)`: `q + 1` forward passes.
    pub fn coefficients(
        &self,
        objective: &mut dyn Objective<M>,
        batch: Batch,
    ) -> (Vec<Tensor<1>>, Tensor<1>) {
        let f0 = objective.loss(&self.center, batch);
        let coefficients = self
            .shifted
            .iter()
            .map(|m| (objective.loss(m, batch) - f0.clone()).mul_scalar(self.scale))
            .collect();
        (coefficients, f0)
    }

    /// `Σⱼ cⱼ·uⱼ`.
    pub fn estimate(&self, coefficients: &[Tensor<1>]) -> ParamVec {
        ParamVec::weighted_sum(&self.directions, coefficients).expect("at least one direction")
    }
}

/// Configuration of [`ZoSgd`].
///
/// ```
/// use burn::optim::SgdConfig;
/// use ember_optim::ZoSgdConfig;
///
/// let zo = ZoSgdConfig::new().with_directions(8).with_seed(1).init(SgdConfig::new().init());
/// let err = ZoSgdConfig::new().with_directions(0).try_init(SgdConfig::new().init());
/// assert_eq!(err.err().unwrap().field, "directions");
/// ```
#[derive(Config, Debug)]
pub struct ZoSgdConfig {
    /// μ, the smoothing radius of the finite differences. Must be > 0.
    #[config(default = 1e-3)]
    pub mu: f64,
    /// q, random directions per estimate (`q + 1` forward passes a step). Must be ≥ 1.
    #[config(default = 1)]
    pub directions: usize,
    /// Seed of the directions; a step's directions depend only on it and the step number.
    #[config(default = 0)]
    pub seed: u64,
}

impl ZoSgdConfig {
    /// Checks every field, naming the first one out of range; [`try_init`](Self::try_init) runs
    /// it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("ZoSgdConfig");
        check.positive("mu", self.mu)?;
        check.at_least_one("directions", self.directions)
    }

    /// Builds ZO-SGD around `base`, which steps on the zeroth-order estimate.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] on `mu` unless finite and > 0, or `directions` = 0.
    pub fn try_init(&self, base: ModuleOptimizer) -> Result<ZoSgd, OptimConfigError> {
        self.validate()?;
        Ok(ZoSgd {
            config: self.clone(),
            base,
            steps: 0,
        })
    }

    /// [`try_init`](Self::try_init), panicking with its message on an invalid config.
    pub fn init(&self, base: ModuleOptimizer) -> ZoSgd {
        or_fail(self.try_init(base))
    }
}

/// ZO-SGD: steps on the two-point estimate `∇̂f_B(x)` from forward passes only (no backward pass),
/// with fresh directions every step. The pass at `x` itself updates BatchNorm statistics; the
/// shifted passes run on copies.
#[derive(Clone)]
pub struct ZoSgd {
    config: ZoSgdConfig,
    base: ModuleOptimizer,
    steps: u64,
}

impl<M: Module + 'static> ClosureOptimizer<M> for ZoSgd {
    fn step(
        &mut self,
        lr: ModuleLearningRate,
        model: M,
        objective: &mut dyn Objective<M>,
    ) -> ClosureStep<M> {
        let (mu, q, seed, step) = (
            self.config.mu,
            self.config.directions,
            self.config.seed,
            self.steps,
        );
        let points = ZoPoints::new(&model, detached_view(&model), mu, q, |j| DirectionKey {
            seed,
            step,
            j: j as u64,
        });
        let (coefficients, loss) = points.coefficients(objective, Batch::Current);
        let grads = points.estimate(&coefficients).to_grads(&model);
        self.steps += 1;
        ClosureStep {
            model: self.base.step(lr, model, grads),
            loss,
        }
    }

    fn base(&self) -> &ModuleOptimizer {
        &self.base
    }

    fn base_mut(&mut self) -> &mut ModuleOptimizer {
        &mut self.base
    }

    fn saved_scalars(&self) -> Vec<(&'static str, f64)> {
        vec![("steps", self.steps as f64)]
    }

    fn restore_scalars(&mut self, values: &[f64]) {
        self.steps = values.first().map_or(0, |&steps| steps as u64);
    }
}
