//! Declarative descriptions of a run's optimizer, learning-rate schedule and data, shared by the
//! command line and (later) experiment files. Each spec validates itself and names the bad field.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};
use ember_data::{CifarKind, DataError, GeneratedConfig, Split};
use ember_optim::{
    DirectionRule, GamConfig, IfShampooConfig, OptimConfigError, PlrsConfig, RfAdaGradConfig,
    RfAdamWConfig, RfRmsPropConfig, SamConfig, ShampooConfig, SignGdConfig, SignumConfig,
    SvrgConfig, VamoConfig, ZoSgdConfig,
};

use crate::StepRule;
use serde::{Deserialize, Serialize};

/// A hyper-parameter that cannot be used, naming its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

impl From<OptimConfigError> for SpecError {
    fn from(e: OptimConfigError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}

impl SpecError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

fn check_positive(field: &'static str, value: f64) -> Result<(), SpecError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            format!("must be finite and > 0, got {value}"),
        ))
    }
}

fn check_non_negative(field: &'static str, value: f64) -> Result<(), SpecError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            format!("must be finite and >= 0, got {value}"),
        ))
    }
}

fn check_unit(field: &'static str, value: f64) -> Result<(), SpecError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            format!("must be in [0, 1), got {value}"),
        ))
    }
}

/// Every optimizer a run can use. The baselines come from burn with PyTorch's defaults made explicit
/// (burn's own defaults differ: Adam's ε is 1e-5 and momentum's dampening 0.1 there); the others
/// carry `ember-optim`'s own configs unchanged, so a spec file uses the same field names as the
/// Rust API.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum OptimizerSpec {
    /// SGD with optional heavy-ball (or Nesterov) momentum, no dampening, and L2 weight decay
    /// added to the gradient — PyTorch's `torch.optim.SGD`.
    Sgd {
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    },
    /// Adam with L2 weight decay added to the gradient — PyTorch's `torch.optim.Adam`.
    Adam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        weight_decay: f64,
    },
    /// AdamW: decoupled weight decay `w ← w(1 − lr·λ)` — PyTorch's `torch.optim.AdamW`.
    #[serde(rename = "adamw")]
    AdamW {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        weight_decay: f64,
    },
    /// Root-free RMSProp (Lin et al., ICML 2024).
    RfRmsprop(RfRmsPropConfig),
    /// Root-free AdaGrad (Lin et al., ICML 2024).
    RfAdagrad(RfAdaGradConfig),
    /// Root-free AdamW (Lin et al., ICML 2024).
    RfAdamw(RfAdamWConfig),
    /// Inverse-free, root-free Kronecker preconditioner (Lin et al., ICML 2024).
    IfShampoo(IfShampooConfig),
    /// Root-based Shampoo, the comparison for IF-Shampoo.
    Shampoo(ShampooConfig),
    /// θ ← θ − η·sign(g).
    SignGd(SignGdConfig),
    /// Sign of an exponential moving average of the gradient.
    Signum(SignumConfig),
    /// GAM (four gradient passes a step) around a per-parameter `base` optimizer.
    Gam {
        base: Box<OptimizerSpec>,
        gam: GamConfig,
    },
    /// SAM (two gradient passes a step) around `base`.
    Sam {
        base: Box<OptimizerSpec>,
        sam: SamConfig,
    },
    /// VAMO: mini-batch gradient with a zeroth-order SVRG-style correction, stepped by `base`.
    Vamo {
        base: Box<OptimizerSpec>,
        vamo: VamoConfig,
    },
    /// ZO-SGD: steps on a two-point zeroth-order estimate (forward passes only), through `base`.
    ZoSgd {
        base: Box<OptimizerSpec>,
        zo: ZoSgdConfig,
    },
    /// SVRG: mini-batch gradient with a first-order snapshot correction, stepped by `base`.
    Svrg {
        base: Box<OptimizerSpec>,
        svrg: SvrgConfig,
    },
}

impl OptimizerSpec {
    /// Checks every hyper-parameter, naming the first bad one.
    pub fn validate(&self) -> Result<(), SpecError> {
        match *self {
            OptimizerSpec::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                check_unit("momentum", momentum)?;
                if nesterov && momentum == 0.0 {
                    return Err(SpecError::new("nesterov", "needs momentum > 0"));
                }
                check_non_negative("weight_decay", weight_decay)
            }
            OptimizerSpec::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            }
            | OptimizerSpec::AdamW {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => {
                check_unit("beta_1", beta_1)?;
                check_unit("beta_2", beta_2)?;
                check_positive("epsilon", epsilon)?;
                check_non_negative("weight_decay", weight_decay)
            }
            OptimizerSpec::Gam { ref gam, .. } => {
                self.base_checked()?;
                gam.build()?;
                Ok(())
            }
            OptimizerSpec::Sam { ref sam, .. } => {
                self.base_checked()?;
                sam.build()?;
                Ok(())
            }
            OptimizerSpec::Vamo { ref vamo, .. } => {
                self.base_checked()?;
                Ok(vamo.validate()?)
            }
            OptimizerSpec::ZoSgd { ref zo, .. } => {
                self.base_checked()?;
                zo.try_init(SgdConfig::new().init())?;
                Ok(())
            }
            OptimizerSpec::Svrg { ref svrg, .. } => {
                self.base_checked()?;
                Ok(svrg.validate()?)
            }
            // ember-optim's configs validate themselves when built.
            _ => self.build(1).map(|_| ()),
        }
    }

    /// Every optimizer with its default hyper-parameters (PyTorch's for the burn baselines),
    /// Adam first: benchmarks report ratios to it.
    pub fn defaults() -> Vec<OptimizerSpec> {
        vec![
            OptimizerSpec::Adam {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
                weight_decay: 0.0,
            },
            OptimizerSpec::Sgd {
                momentum: 0.9,
                nesterov: false,
                weight_decay: 5e-4,
            },
            OptimizerSpec::AdamW {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
                weight_decay: 0.01,
            },
            // B is the run's batch size, written in by `build`.
            OptimizerSpec::RfRmsprop(RfRmsPropConfig::new(1)),
            OptimizerSpec::RfAdagrad(RfAdaGradConfig::new(1)),
            OptimizerSpec::RfAdamw(RfAdamWConfig::new(1)),
            OptimizerSpec::IfShampoo(IfShampooConfig::new(1)),
            OptimizerSpec::Shampoo(ShampooConfig::new()),
            OptimizerSpec::SignGd(SignGdConfig::new()),
            OptimizerSpec::Signum(SignumConfig::new()),
        ]
    }

    /// Every closure optimizer (GAM, SAM, VAMO, ZO-SGD, SVRG) with its default knobs around `base`,
    /// in that order: benchmarks time them against a per-parameter optimizer's whole step.
    pub fn closure_defaults(base: &OptimizerSpec) -> Vec<OptimizerSpec> {
        let base = || Box::new(base.clone());
        vec![
            OptimizerSpec::Gam {
                base: base(),
                gam: GamConfig::new(),
            },
            OptimizerSpec::Sam {
                base: base(),
                sam: SamConfig::new(),
            },
            OptimizerSpec::Vamo {
                base: base(),
                vamo: VamoConfig::new(),
            },
            OptimizerSpec::ZoSgd {
                base: base(),
                zo: ZoSgdConfig::new(),
            },
            OptimizerSpec::Svrg {
                base: base(),
                svrg: SvrgConfig::new(),
            },
        ]
    }

    /// The short name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerSpec::Sgd { .. } => "sgd",
            OptimizerSpec::Adam { .. } => "adam",
            OptimizerSpec::AdamW { .. } => "adamw",
            OptimizerSpec::RfRmsprop(_) => "rf-rmsprop",
            OptimizerSpec::RfAdagrad(_) => "rf-adagrad",
            OptimizerSpec::RfAdamw(_) => "rf-adamw",
            OptimizerSpec::IfShampoo(_) => "if-shampoo",
            OptimizerSpec::Shampoo(_) => "shampoo",
            OptimizerSpec::SignGd(_) => "sign-gd",
            OptimizerSpec::Signum(_) => "signum",
            OptimizerSpec::Gam { .. } => "gam",
            OptimizerSpec::Sam { .. } => "sam",
            OptimizerSpec::Vamo { .. } => "vamo",
            OptimizerSpec::ZoSgd { .. } => "zo-sgd",
            OptimizerSpec::Svrg { .. } => "svrg",
        }
    }

    /// The per-parameter optimizer a closure optimizer hands its direction to (`None` for a
    /// per-parameter optimizer).
    pub fn base(&self) -> Option<&OptimizerSpec> {
        match self {
            OptimizerSpec::Gam { base, .. }
            | OptimizerSpec::Sam { base, .. }
            | OptimizerSpec::Vamo { base, .. }
            | OptimizerSpec::ZoSgd { base, .. }
            | OptimizerSpec::Svrg { base, .. } => Some(base),
            _ => None,
        }
    }

    /// The base optimizer, checked to be a valid per-parameter one.
    fn base_checked(&self) -> Result<&OptimizerSpec, SpecError> {
        let base = self.base().expect("only called on closure optimizers");
        if base.base().is_some() {
            return Err(SpecError::new(
                "base",
                format!(
                    "the base optimizer of {} must be a per-parameter optimizer (sgd, adamw, rf-rmsprop, …), got {}",
                    self.name(),
                    base.name()
                ),
            ));
        }
        base.validate()?;
        Ok(base)
    }

    /// Builds the optimizer of either kind for a model `M` trained with `batch_size` images per
    /// step: closure optimizers wrap their base optimizer, the others are [`build`](Self::build).
    pub fn build_rule<M: Module + 'static>(
        &self,
        batch_size: usize,
    ) -> Result<StepRule<M>, SpecError> {
        let Some(base) = self.base() else {
            return Ok(StepRule::Gradient(self.build(batch_size)?));
        };
        self.base_checked()?;
        let base = base.build(batch_size)?;
        Ok(StepRule::Closure(match self {
            OptimizerSpec::Gam { gam, .. } => Box::new(gam.build()?.with_base(base)),
            OptimizerSpec::Sam { sam, .. } => Box::new(sam.build()?.with_base(base)),
            OptimizerSpec::Vamo { vamo, .. } => Box::new(vamo.try_init::<M>(base)?),
            OptimizerSpec::ZoSgd { zo, .. } => Box::new(zo.try_init(base)?),
            OptimizerSpec::Svrg { svrg, .. } => Box::new(svrg.try_init::<M>(base)?),
            _ => unreachable!("per-parameter optimizers returned above"),
        }))
    }

    /// Builds the burn optimizer for a whole module trained with `batch_size` images per step (the
    /// root-free methods scale their curvature by it).
    pub fn build(&self, batch_size: usize) -> Result<ModuleOptimizer, SpecError> {
        macro_rules! with_run_batch_size {
            ($config:ident, $c:expr) => {
                $config {
                    batch_size,
                    ..$c.clone()
                }
            };
        }
        match self {
            // The root-free methods scale their curvature by the run's batch size.
            OptimizerSpec::RfRmsprop(c) => {
                return Ok(with_run_batch_size!(RfRmsPropConfig, c).try_init()?)
            }
            OptimizerSpec::RfAdagrad(c) => {
                return Ok(with_run_batch_size!(RfAdaGradConfig, c).try_init()?)
            }
            OptimizerSpec::RfAdamw(c) => {
                return Ok(with_run_batch_size!(RfAdamWConfig, c).try_init()?)
            }
            OptimizerSpec::IfShampoo(c) => {
                return Ok(with_run_batch_size!(IfShampooConfig, c).try_init()?)
            }
            OptimizerSpec::Shampoo(c) => return Ok(c.try_init()?),
            OptimizerSpec::SignGd(c) => return Ok(c.try_init()?),
            OptimizerSpec::Signum(c) => return Ok(c.try_init()?),
            closure if closure.base().is_some() => {
                return Err(SpecError::new(
                    "name",
                    format!(
                        "{} evaluates the loss several times a step: build it with build_rule",
                        closure.name()
                    ),
                ))
            }
            _ => self.validate()?,
        }
        let l2 = |wd: f64| (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
        Ok(match *self {
            OptimizerSpec::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => SgdConfig::new()
                .with_momentum((momentum > 0.0).then_some(MomentumConfig {
                    momentum,
                    dampening: 0.0,
                    nesterov,
                }))
                .with_weight_decay(l2(weight_decay))
                .init(),
            OptimizerSpec::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => AdamConfig::new()
                .with_beta_1(beta_1 as f32)
                .with_beta_2(beta_2 as f32)
                .with_epsilon(epsilon as f32)
                .with_weight_decay(l2(weight_decay))
                .init(),
            OptimizerSpec::AdamW {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => AdamWConfig::new()
                .with_beta_1(beta_1 as f32)
                .with_beta_2(beta_2 as f32)
                .with_epsilon(epsilon as f32)
                .with_weight_decay(weight_decay as f32)
                .init(),
            _ => unreachable!("handled above"),
        })
    }
}

/// How the learning rate evolves over the run's optimizer steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum SchedulerSpec {
    /// The same learning rate at every step.
    Constant { lr: f64 },
    /// Cosine annealing from `lr` to `min_lr` over the whole run (burn's scheduler, which only
    /// accepts a peak lr in (0, 1]).
    Cosine { lr: f64, min_lr: f64 },
    /// `lr · gammaᵏ` after k periods of `step_epochs` epochs (burn's step scheduler).
    Step {
        lr: f64,
        step_epochs: usize,
        gamma: f64,
    },
    /// PLRS: a learning rate drawn uniformly from [min_lr, max_lr] every step (or every epoch),
    /// after an optional linear warm-up (Devapriya et al., arXiv 2407.07613).
    Plrs {
        min_lr: f64,
        max_lr: f64,
        warmup_steps: usize,
        per_epoch: bool,
        seed: u64,
    },
}

impl SchedulerSpec {
    /// The peak learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            SchedulerSpec::Constant { lr }
            | SchedulerSpec::Cosine { lr, .. }
            | SchedulerSpec::Step { lr, .. } => lr,
            SchedulerSpec::Plrs { max_lr, .. } => max_lr,
        }
    }

    /// The short name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            SchedulerSpec::Constant { .. } => "constant",
            SchedulerSpec::Cosine { .. } => "cosine",
            SchedulerSpec::Step { .. } => "step",
            SchedulerSpec::Plrs { .. } => "plrs",
        }
    }

    /// Checks the bounds, naming the bad field.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_positive("lr", self.lr())?;
        if let SchedulerSpec::Cosine { lr, min_lr } = *self {
            check_non_negative("min_lr", min_lr)?;
            if lr > 1.0 {
                return Err(SpecError::new(
                    "lr",
                    format!("the cosine schedule accepts a peak lr in (0, 1], got {lr}"),
                ));
            }
            if min_lr > lr {
                return Err(SpecError::new(
                    "min_lr",
                    format!("must not exceed lr ({lr})"),
                ));
            }
        }
        if let SchedulerSpec::Step {
            step_epochs, gamma, ..
        } = *self
        {
            if step_epochs == 0 {
                return Err(SpecError::new("step_epochs", "must be at least 1"));
            }
            if !(gamma > 0.0 && gamma <= 1.0) {
                return Err(SpecError::new(
                    "gamma",
                    format!("must be in (0, 1], got {gamma}"),
                ));
            }
        }
        if let SchedulerSpec::Plrs { .. } = self {
            self.plrs_config(1)?.build()?;
        }
        Ok(())
    }

    fn plrs_config(&self, steps_per_epoch: usize) -> Result<PlrsConfig, SpecError> {
        match *self {
            SchedulerSpec::Plrs {
                min_lr,
                max_lr,
                warmup_steps,
                per_epoch,
                seed,
            } => Ok(PlrsConfig::new(min_lr, max_lr)
                .with_warmup_steps(warmup_steps)
                .with_seed(seed)
                .with_steps_per_epoch(per_epoch.then_some(steps_per_epoch))),
            _ => Err(SpecError::new("scheduler", "not a PLRS schedule")),
        }
    }

    /// Builds the scheduler for a run of `total_steps` optimizer steps, `steps_per_epoch` a epoch.
    pub fn build(
        &self,
        total_steps: usize,
        steps_per_epoch: usize,
    ) -> Result<ModuleLrScheduler, SpecError> {
        self.validate()?;
        match *self {
            SchedulerSpec::Step {
                lr,
                step_epochs,
                gamma,
            } => StepLrSchedulerConfig::new(lr, (step_epochs * steps_per_epoch).max(1))
                .with_gamma(gamma)
                .init()
                .map_err(|e| SpecError::new("lr", e)),
            SchedulerSpec::Plrs { .. } => {
                Ok(self.plrs_config(steps_per_epoch.max(1))?.try_init()?)
            }
            SchedulerSpec::Constant { lr } => Ok(ModuleLrScheduler::new(lr)),
            SchedulerSpec::Cosine { lr, min_lr } => {
                CosineAnnealingLrSchedulerConfig::new(lr, total_steps.max(1))
                    .with_min_lr(min_lr)
                    .init()
                    .map_err(|e| SpecError::new("lr", e))
            }
        }
    }
}

/// Where the images come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum DatasetSpec {
    /// Procedurally generated gratings: needs nothing on disk.
    Generated { seed: u64 },
    /// CIFAR-10, official binary layout (`cifar-10-batches-bin/` under the data dir).
    Cifar10,
    /// CIFAR-100, official binary layout (`cifar-100-binary/` under the data dir), fine labels.
    Cifar100,
    /// Fashion-MNIST IDX files (gzip or raw) in the data dir.
    FashionMnist,
    /// `PATH/train/<class>/*.{png,jpg}` and `PATH/test/<class>/*`.
    ImageFolder { path: PathBuf },
}

impl DatasetSpec {
    /// Loads both halves. `download` fetches CIFAR archives first if they are missing.
    pub fn load(&self, data_dir: &Path, download: bool) -> Result<Split, DataError> {
        match self {
            DatasetSpec::Generated { seed } => GeneratedConfig {
                seed: *seed,
                ..GeneratedConfig::default()
            }
            .generate(),
            DatasetSpec::Cifar10 | DatasetSpec::Cifar100 => {
                let kind = if *self == DatasetSpec::Cifar10 {
                    CifarKind::Cifar10
                } else {
                    CifarKind::Cifar100
                };
                if download {
                    ember_data::download_cifar(kind, data_dir)?;
                }
                ember_data::load_cifar(kind, data_dir)
            }
            DatasetSpec::FashionMnist => ember_data::load_fashion_mnist(data_dir),
            DatasetSpec::ImageFolder { path } => ember_data::load_image_folder_split(path),
        }
    }

    /// Whether training should use crop + flip augmentation. Mirroring a digit-like grey image or
    /// a generated grating changes its class meaning less than it helps on natural images, so only
    /// natural-image sets are augmented by default.
    pub fn augments_by_default(&self) -> bool {
        matches!(
            self,
            DatasetSpec::Cifar10 | DatasetSpec::Cifar100 | DatasetSpec::ImageFolder { .. }
        )
    }
}

impl FromStr for DatasetSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "generated" => Ok(DatasetSpec::Generated { seed: 0 }),
            "cifar10" => Ok(DatasetSpec::Cifar10),
            "cifar100" => Ok(DatasetSpec::Cifar100),
            "fashion-mnist" => Ok(DatasetSpec::FashionMnist),
            other => match other.strip_prefix("image-folder:") {
                Some(path) if !path.is_empty() => Ok(DatasetSpec::ImageFolder { path: path.into() }),
                _ => Err(SpecError::new(
                    "dataset",
                    format!("unknown data set `{other}`: expected generated, cifar10, cifar100, fashion-mnist or image-folder:PATH"),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizer_specs_reject_bad_values_by_field() {
        let sgd = OptimizerSpec::Sgd {
            momentum: 1.0,
            nesterov: false,
            weight_decay: 0.0,
        };
        assert_eq!(sgd.validate().unwrap_err().field, "momentum");
        let adam = OptimizerSpec::Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 0.0,
            weight_decay: 0.0,
        };
        assert_eq!(adam.build(32).err().map(|e| e.field), Some("epsilon"));
        let adamw = OptimizerSpec::AdamW {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: -1.0,
        };
        let err = adamw.validate().unwrap_err();
        assert_eq!(err.field, "weight_decay");
        assert!(err.to_string().contains("weight_decay"));
        let nesterov = OptimizerSpec::Sgd {
            momentum: 0.0,
            nesterov: true,
            weight_decay: 0.0,
        };
        assert_eq!(nesterov.validate().unwrap_err().field, "nesterov");
    }

    #[test]
    fn scheduler_specs_check_their_bounds() {
        assert_eq!(
            SchedulerSpec::Constant { lr: 0.0 }
                .validate()
                .unwrap_err()
                .field,
            "lr"
        );
        let cosine = SchedulerSpec::Cosine {
            lr: 2.0,
            min_lr: 0.0,
        };
        assert!(cosine.validate().unwrap_err().message.contains("(0, 1]"));
        // A constant lr above 1 is legitimate (e.g. large-batch SGD) and must be accepted.
        let mut constant = SchedulerSpec::Constant { lr: 3.0 }.build(10, 5).unwrap();
        assert_eq!(constant.step().base(), 3.0);
        let mut cosine = SchedulerSpec::Cosine {
            lr: 0.1,
            min_lr: 0.0,
        }
        .build(4, 2)
        .unwrap();
        let first = cosine.step().base();
        let second = cosine.step().base();
        assert!(
            (first - 0.1).abs() < 1e-12 && second < first,
            "{first} {second}"
        );
    }

    #[test]
    fn plrs_and_step_schedules_build_and_validate() {
        let plrs = SchedulerSpec::Plrs {
            min_lr: 2.0,
            max_lr: 5.0,
            warmup_steps: 0,
            per_epoch: true,
            seed: 1,
        };
        let mut scheduler = plrs.build(20, 4).unwrap();
        let lrs: Vec<f64> = (0..8).map(|_| scheduler.step().base()).collect();
        assert!(lrs.iter().all(|lr| (2.0..=5.0).contains(lr)), "{lrs:?}");
        assert!(
            lrs[..4].iter().all(|&lr| lr == lrs[0]),
            "constant within an epoch: {lrs:?}"
        );
        assert_ne!(lrs[0], lrs[4], "redrawn at the epoch boundary");
        let bad = SchedulerSpec::Plrs {
            min_lr: 0.5,
            max_lr: 0.1,
            warmup_steps: 0,
            per_epoch: false,
            seed: 0,
        };
        assert_eq!(bad.validate().unwrap_err().field, "max_lr");

        let mut step = SchedulerSpec::Step {
            lr: 0.1,
            step_epochs: 1,
            gamma: 0.5,
        }
        .build(6, 3)
        .unwrap();
        let lrs: Vec<f64> = (0..6).map(|_| step.step().base()).collect();
        assert_eq!(lrs, vec![0.1, 0.1, 0.1, 0.05, 0.05, 0.05]);
    }

    #[test]
    fn ember_optim_specs_build_and_report_bad_fields() {
        let rf = OptimizerSpec::RfRmsprop(RfRmsPropConfig::new(32).with_beta2(1.5));
        assert_eq!(rf.validate().unwrap_err().field, "beta2");
        assert!(OptimizerSpec::IfShampoo(IfShampooConfig::new(32))
            .build(32)
            .is_ok());
        let json = serde_json::to_value(OptimizerSpec::Signum(SignumConfig::new())).unwrap();
        assert_eq!(json["name"], "signum");
        assert_eq!(json["beta"], 0.9);
    }

    #[test]
    fn closure_defaults_wrap_the_base_and_validate() {
        let sgd = OptimizerSpec::defaults()[1].clone();
        let closures = OptimizerSpec::closure_defaults(&sgd);
        let names: Vec<&str> = closures.iter().map(OptimizerSpec::name).collect();
        assert_eq!(names, ["gam", "sam", "vamo", "zo-sgd", "svrg"]);
        for spec in &closures {
            spec.validate().unwrap();
            assert_eq!(spec.base().map(OptimizerSpec::name), Some("sgd"));
        }
    }

    #[test]
    fn dataset_names_parse() {
        assert_eq!(
            "cifar10".parse::<DatasetSpec>().unwrap(),
            DatasetSpec::Cifar10
        );
        assert_eq!(
            "image-folder:/data/x".parse::<DatasetSpec>().unwrap(),
            DatasetSpec::ImageFolder {
                path: "/data/x".into()
            }
        );
        let err = "imagenet".parse::<DatasetSpec>().unwrap_err();
        assert!(err.to_string().contains("unknown data set `imagenet`"));
    }
}
