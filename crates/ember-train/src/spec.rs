//! Declarative descriptions of a run's optimizer, learning-rate schedule and data, shared by the
//! command line and (later) experiment files. Each spec validates itself and names the bad field.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};
use ember_data::{CifarKind, DataError, GeneratedConfig, Split};
use serde::{Deserialize, Serialize};

/// A hyper-parameter that cannot be used, naming its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
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

/// The baseline optimizers, taken from burn with PyTorch's defaults made explicit (burn's own
/// defaults differ: Adam's ε is 1e-5 and momentum's dampening 0.1 there).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    AdamW {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        weight_decay: f64,
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
        }
    }

    /// The short name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerSpec::Sgd { .. } => "sgd",
            OptimizerSpec::Adam { .. } => "adam",
            OptimizerSpec::AdamW { .. } => "adamw",
        }
    }

    /// Builds the burn optimizer for a whole module.
    pub fn build(&self) -> Result<ModuleOptimizer, SpecError> {
        self.validate()?;
        let l2 = |wd: f64| (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
        Ok(match *self {
            OptimizerSpec::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => SgdConfig::new()
                .with_momentum((momentum > 0.0).then(|| MomentumConfig {
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
}

impl SchedulerSpec {
    /// The peak learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            SchedulerSpec::Constant { lr } | SchedulerSpec::Cosine { lr, .. } => lr,
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
        Ok(())
    }

    /// Builds the scheduler for a run of `total_steps` optimizer steps.
    pub fn build(&self, total_steps: usize) -> Result<ModuleLrScheduler, SpecError> {
        self.validate()?;
        match *self {
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
        assert_eq!(adam.build().err().map(|e| e.field), Some("epsilon"));
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
        let mut constant = SchedulerSpec::Constant { lr: 3.0 }.build(10).unwrap();
        assert_eq!(constant.step().base(), 3.0);
        let mut cosine = SchedulerSpec::Cosine {
            lr: 0.1,
            min_lr: 0.0,
        }
        .build(4)
        .unwrap();
        let first = cosine.step().base();
        let second = cosine.step().base();
        assert!(
            (first - 0.1).abs() < 1e-12 && second < first,
            "{first} {second}"
        );
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
