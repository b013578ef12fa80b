//! Snapshot methods: SVRG (first-order snapshot) and VAMO (zeroth-order snapshot), which take a
//! snapshot of the model at the start of every epoch and correct each mini-batch gradient with it.

use burn::config::Config;
use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

use super::counter_normal::DirectionKey;
use super::param_vec::ParamVec;
use super::zeroth_order::ZoPoints;
use super::{isolated_copy, Batch, ClosureOptimizer, ClosureStep, Objective};
use crate::assemble::or_fail;
use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// The batches a snapshot averages over: the first `limit` full-data batches (all by default),
/// or the current batch when the objective has none (a loss closure, say), which makes the
/// correction vanish and the method its base optimizer.
fn snapshot_batches(limit: Option<usize>, available: usize) -> Vec<Batch> {
    let n = limit.map_or(available, |l| l.min(available));
    if n == 0 {
        vec![Batch::Current]
    } else {
        (0..n).map(Batch::Full).collect()
    }
}

/// Configuration of [`Vamo`]. Defaults follow the paper (α = 1/d, μ = 1e-3, q = 1, snapshot over
/// all the data).
///
/// ```
/// use burn::nn::Linear;
/// use burn::optim::SgdConfig;
/// use ember_optim::{Vamo, VamoConfig};
///
/// // VAMO for a `Linear` model, its mixed gradient applied by plain SGD (as in the paper):
/// let vamo: Vamo<Linear> = VamoConfig::new().with_directions(4).init(SgdConfig::new().init());
/// let err = VamoConfig::new().with_mu(0.0).try_init::<Linear>(SgdConfig::new().init());
/// assert_eq!(err.err().unwrap().field, "mu");
/// ```
#[derive(Config, Debug)]
pub struct VamoConfig {
    /// α, the weight of the zeroth-order correction; `None` uses 1/d (d = trainable parameters), the
    /// paper's theoretical choice. Must lie in [0, 1].
    pub alpha: Option<f64>,
    /// Re-estimate α after every epoch as the variance-minimising `Cov(g, c)/Var(c)` of the
    /// first-order gradient `g` and the correction `c` observed during that epoch, clipped to
    /// [0, 1]. The first epoch uses `alpha` (or 1/d).
    #[config(default = false)]
    pub adaptive_alpha: bool,
    /// μ, the smoothing radius. Must be > 0.
    #[config(default = 1e-3)]
    pub mu: f64,
    /// q, random directions (fixed for an epoch). Must be ≥ 1.
    #[config(default = 1)]
    pub directions: usize,
    /// Full-data batches the snapshot estimate averages over; `None`: all of them.
    pub snapshot_batches: Option<usize>,
    /// Seed of the directions; an epoch's directions depend only on it and the epoch number.
    #[config(default = 0)]
    pub seed: u64,
}

impl VamoConfig {
    /// Checks every field, naming the first one out of range.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] on `alpha` outside [0, 1], `mu` not finite and > 0, or a zero
    /// `directions` / `snapshot_batches`.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("VamoConfig");
        if let Some(alpha) = self.alpha {
            check.closed_unit("alpha", alpha)?;
        }
        check.positive("mu", self.mu)?;
        check.at_least_one("directions", self.directions)?;
        if let Some(n) = self.snapshot_batches {
            check.at_least_one("snapshot_batches", n)?;
        }
        Ok(())
    }

    /// Builds VAMO around `base` (the paper uses plain SGD), which steps on the mixed gradient.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn try_init<M: Module>(&self, base: ModuleOptimizer) -> Result<Vamo<M>, OptimConfigError> {
        self.validate()?;
        Ok(Vamo {
            config: self.clone(),
            base,
            alpha: self.alpha,
            snapshot: None,
            covariance: None,
            next_epoch: 0,
        })
    }

    /// [`try_init`](Self::try_init), panicking with its message on an invalid config.
    pub fn init<M: Module>(&self, base: ModuleOptimizer) -> Vamo<M> {
        or_fail(self.try_init(base))
    }
}

/// VAMO (Chen & Ma, *Variance-Reduced Mixed-Gradient Optimizer*, arXiv 2505.13954): SVRG's epoch
/// structure with zeroth-order snapshot terms.
///
/// ```text
/// at the start of epoch s:  x̂ ← x;  draw u₁…u_q (seeded by (seed, s));
///                           ĝ = ∇̂f(x̂) averaged over the full-data batches (forward passes only)
/// each step on batch I:     v = ∇f_I(x) − α·(∇̂f_I(x̂) − ĝ)
///                           base optimizer steps on v (plain SGD: x ← x − η·v)
/// ```
///
/// Both zeroth-order terms use the same directions, so `ĝ` and the per-batch estimates are stored
/// as `q` coefficients and the directions are regenerated from their seeds, never kept per sample.
/// A step costs one forward+backward pass and `q + 1` forward passes; a snapshot costs `q + 1`
/// forward passes per full-data batch. Snapshot evaluations run on copies with their own BatchNorm
/// statistics, so with α = 0 VAMO is exactly its base optimizer.
///
/// Cloning is cheap (tensors are shared handles) and keeps the snapshot, so a trainer can keep a
/// copy to fall back to.
#[derive(Clone)]
pub struct Vamo<M> {
    config: VamoConfig,
    base: ModuleOptimizer,
    /// α in use; resolved to 1/d at the first snapshot when not configured.
    alpha: Option<f64>,
    snapshot: Option<VamoSnapshot<M>>,
    /// `(Σ⟨g, c⟩, Σ‖c‖²)` over this epoch's steps, for the adaptive α.
    covariance: Option<(Tensor<1>, Tensor<1>)>,
    /// The epoch a step taken before any `begin_epoch` begins by itself.
    next_epoch: usize,
}

#[derive(Clone)]
struct VamoSnapshot<M> {
    points: ZoPoints<M>,
    /// The snapshot coefficients `ĉⱼ` of `ĝ = Σⱼ ĉⱼ·uⱼ`.
    full: Vec<Tensor<1>>,
}

impl<M: Module> Vamo<M> {
    /// α for the next epoch: the variance-minimising estimate when adaptive and observed, else the
    /// current one.
    fn next_alpha(&self) -> Option<f64> {
        match (&self.covariance, self.config.adaptive_alpha) {
            (Some((cov, var)), true) => {
                let (cov, var) = (
                    cov.clone().into_scalar::<f64>(),
                    var.clone().into_scalar::<f64>(),
                );
                if var > 0.0 && cov.is_finite() && var.is_finite() {
                    Some((cov / var).clamp(0.0, 1.0))
                } else {
                    self.alpha
                }
            }
            _ => self.alpha,
        }
    }
}

impl<M: Module + 'static> ClosureOptimizer<M> for Vamo<M> {
    fn begin_epoch(&mut self, epoch: usize, model: &M, objective: &mut dyn Objective<M>) {
        self.next_epoch = epoch + 1;
        self.alpha = self.next_alpha();
        self.covariance = None;
        let (mu, q, seed) = (self.config.mu, self.config.directions, self.config.seed);
        let points = ZoPoints::new(model, isolated_copy(model, false), mu, q, |j| {
            DirectionKey {
                seed,
                step: epoch as u64,
                j: j as u64,
            }
        });
        let d = points.directions.first().map_or(1, ParamVec::num_elements);
        self.alpha.get_or_insert(1.0 / d.max(1) as f64);

        let batches = snapshot_batches(self.config.snapshot_batches, objective.full_batches());
        let count = batches.len() as f64;
        let mut sums: Vec<Tensor<1>> = Vec::new();
        for batch in batches {
            let (c, _) = points.coefficients(objective, batch);
            sums = if sums.is_empty() {
                c
            } else {
                sums.into_iter().zip(c).map(|(a, x)| a + x).collect()
            };
        }
        let full = sums.into_iter().map(|s| s.div_scalar(count)).collect();
        self.snapshot = Some(VamoSnapshot { points, full });
    }

    fn step(
        &mut self,
        lr: ModuleLearningRate,
        model: M,
        objective: &mut dyn Objective<M>,
    ) -> ClosureStep<M> {
        if self.snapshot.is_none() {
            // Stepped without `begin_epoch` (or right after a load): snapshot here.
            self.begin_epoch(self.next_epoch, &model, objective);
        }
        let Some(snapshot) = self.snapshot.as_ref() else {
            unreachable!("begin_epoch always takes a snapshot")
        };
        let alpha = self.alpha.unwrap_or(0.0);
        let (loss, g) = objective.gradient(&model, Batch::Current);
        let g = ParamVec::from_grads(&model, &g);
        let (batch, _) = snapshot.points.coefficients(objective, Batch::Current);
        let differences: Vec<Tensor<1>> = batch
            .into_iter()
            .zip(&snapshot.full)
            .map(|(c, full)| c - full.clone())
            .collect();
        let correction = snapshot.points.estimate(&differences);
        if self.config.adaptive_alpha {
            let (cov, var) = (g.dot(&correction), correction.dot(&correction));
            self.covariance = Some(match self.covariance.take() {
                None => (cov, var),
                Some((c, v)) => (c + cov, v + var),
            });
        }
        let mixed = g.lincomb(1.0, &correction, -alpha);
        let grads = mixed.to_grads(&model);
        ClosureStep {
            model: self.base.step(lr, model, grads),
            loss,
        }
    }

    fn diagnostics(&self) -> Vec<(&'static str, f64)> {
        self.alpha.map(|a| vec![("alpha", a)]).unwrap_or_default()
    }

    fn base(&self) -> &ModuleOptimizer {
        &self.base
    }

    fn base_mut(&mut self) -> &mut ModuleOptimizer {
        &mut self.base
    }

    /// Saved at epoch ends: α for the next epoch (`NaN` when still unresolved).
    fn saved_scalars(&self) -> Vec<(&'static str, f64)> {
        vec![("alpha", self.next_alpha().unwrap_or(f64::NAN))]
    }

    fn restore_scalars(&mut self, values: &[f64]) {
        self.alpha = values.first().copied().filter(|a| !a.is_nan());
        self.covariance = None;
        self.snapshot = None;
    }
}

/// Configuration of [`Svrg`].
///
/// ```
/// use burn::nn::Linear;
/// use burn::optim::SgdConfig;
/// use ember_optim::SvrgConfig;
///
/// // The snapshot gradient over the first 10 full-data batches:
/// let svrg = SvrgConfig::new()
///     .with_snapshot_batches(Some(10))
///     .init::<Linear>(SgdConfig::new().init());
/// let err = SvrgConfig::new().with_snapshot_batches(Some(0)).validate().unwrap_err();
/// assert_eq!(err.field, "snapshot_batches");
/// ```
#[derive(Config, Debug)]
pub struct SvrgConfig {
    /// Full-data batches the snapshot gradient averages over; `None`: all of them.
    pub snapshot_batches: Option<usize>,
}

impl SvrgConfig {
    /// Checks `snapshot_batches`.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] when `snapshot_batches` is 0.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        match self.snapshot_batches {
            Some(n) => FieldCheck::new("SvrgConfig").at_least_one("snapshot_batches", n),
            None => Ok(()),
        }
    }

    /// Builds SVRG around `base` (classically plain SGD).
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] when `snapshot_batches` is 0.
    pub fn try_init<M: Module>(&self, base: ModuleOptimizer) -> Result<Svrg<M>, OptimConfigError> {
        self.validate()?;
        Ok(Svrg {
            snapshot_batches: self.snapshot_batches,
            base,
            snapshot: None,
        })
    }

    /// [`try_init`](Self::try_init), panicking with its message on an invalid config.
    pub fn init<M: Module>(&self, base: ModuleOptimizer) -> Svrg<M> {
        or_fail(self.try_init(base))
    }
}

/// SVRG (Johnson & Zhang, NeurIPS 2013), the first-order baseline of VAMO:
///
/// ```text
/// at the start of each epoch:  x̂ ← x;  μ̂ = ∇f(x̂) over the full-data batches
/// each step on batch I:        v = ∇f_I(x) − ∇f_I(x̂) + μ̂
/// ```
///
/// Two forward+backward passes a step, one per full-data batch per snapshot. The snapshot model
/// keeps its own BatchNorm statistics.
#[derive(Clone)]
pub struct Svrg<M> {
    snapshot_batches: Option<usize>,
    base: ModuleOptimizer,
    snapshot: Option<(M, ParamVec)>,
}

impl<M: Module + 'static> ClosureOptimizer<M> for Svrg<M> {
    fn begin_epoch(&mut self, _epoch: usize, model: &M, objective: &mut dyn Objective<M>) {
        let center = isolated_copy(model, true);
        let batches = snapshot_batches(self.snapshot_batches, objective.full_batches());
        let count = batches.len() as f64;
        let mut sum: Option<ParamVec> = None;
        for batch in batches {
            let (_, grads) = objective.gradient(&center, batch);
            let g = ParamVec::from_grads(model, &grads);
            sum = Some(match sum {
                None => g,
                Some(s) => s.lincomb(1.0, &g, 1.0),
            });
        }
        if let Some(sum) = sum {
            self.snapshot = Some((center, sum.mul_scalar(1.0 / count)));
        }
    }

    fn step(
        &mut self,
        lr: ModuleLearningRate,
        model: M,
        objective: &mut dyn Objective<M>,
    ) -> ClosureStep<M> {
        if self.snapshot.is_none() {
            // Stepped without `begin_epoch` (or right after a load): snapshot here.
            self.begin_epoch(0, &model, objective);
        }
        let Some((center, mean)) = self.snapshot.as_ref() else {
            unreachable!("begin_epoch always takes a snapshot")
        };
        let (loss, g) = objective.gradient(&model, Batch::Current);
        let g = ParamVec::from_grads(&model, &g);
        let (_, at_snapshot) = objective.gradient(center, Batch::Current);
        let at_snapshot = ParamVec::from_grads(&model, &at_snapshot);
        let v = g.lincomb(1.0, &at_snapshot, -1.0).lincomb(1.0, mean, 1.0);
        let grads = v.to_grads(&model);
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
}
