use std::path::PathBuf;

use anyhow::{bail, Context};
use burn::prelude::{Device, Module};
use clap::{Args, ValueEnum};
use ember_data::{Augmentation, ImageBatcher, Normalization, Split};
use ember_models::{
    AnyClassifier, MlpConfig, SmallCnnConfig, TokenPool, TwoLayerTransformerConfig,
};
use ember_optim::{
    FactorStructure, GamConfig, IfShampooConfig, RfAdaGradConfig, RfAdamWConfig, RfRmsPropConfig,
    SamConfig, ShampooConfig, SignGdConfig, SignumConfig, SvrgConfig, VamoConfig, ZoSgdConfig,
};
use ember_train::{
    DatasetSpec, DeviceChoice, NonFinitePolicy, OptimizerSpec, RunDir, SchedulerSpec, TrainData,
    TrainParts, TrainSettings,
};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelName {
    /// SmallCnn: 3 stages of 2×[conv3×3 → BatchNorm → ReLU] + max-pool, global pool, linear head.
    Cnn,
    /// MLP on the flattened image: --hidden layers of Linear → ReLU, then a linear head.
    Mlp,
    /// ViT-style TwoLayerTransformer: --patch-size patches embedded to --dim, learned positions,
    /// --blocks pre-norm blocks (--heads attention heads, --mlp-dim MLP), --pool, linear head.
    Transformer,
}

impl ModelName {
    /// The model's type name, for the log.
    fn type_name(self) -> &'static str {
        match self {
            Self::Cnn => "SmallCnn",
            Self::Mlp => "Mlp",
            Self::Transformer => "TwoLayerTransformer",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pool {
    /// Classify the final state of a learned class token (ViT).
    ClassToken,
    /// Classify the mean of the final token states.
    Mean,
}

impl From<Pool> for TokenPool {
    fn from(p: Pool) -> Self {
        match p {
            Pool::ClassToken => TokenPool::ClassToken,
            Pool::Mean => TokenPool::Mean,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerName {
    /// SGD with heavy-ball momentum (PyTorch semantics: no dampening), L2 weight decay.
    Sgd,
    /// Adam (L2 weight decay added to the gradient).
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
    /// Root-free RMSProp: g/(s + λ), no square root (knobs: --curvature-beta, --damping,
    /// --init-curvature, --momentum, --weight-decay).
    RfRmsprop,
    /// Root-free AdaGrad: the curvature is a running sum.
    RfAdagrad,
    /// Root-free AdamW: Adam's first moment over a root-free curvature, decoupled weight decay.
    RfAdamw,
    /// Inverse-free Kronecker preconditioner (knobs: --curvature-beta, --damping,
    /// --factor-momentum, --update-every, --max-dim, --structure, --momentum).
    IfShampoo,
    /// Root-based Shampoo (inverse 4th roots by coupled Newton iterations).
    Shampoo,
    /// SignGD: θ ← θ − lr·sign(g).
    SignGd,
    /// Signum: sign of an EMA of the gradient (β = --momentum), decoupled weight decay.
    Signum,
    /// GAM: 4 gradient passes a step, direction applied by --base-optimizer (knobs: --gam-*).
    Gam,
    /// SAM: 2 gradient passes a step (--sam-rho), direction applied by --base-optimizer.
    Sam,
    /// VAMO: mini-batch gradient − α·(ZO estimate at the epoch snapshot − its full-data mean)
    /// (knobs: --vamo-alpha, --vamo-adaptive, --zo-mu, --zo-directions, --snapshot-batches).
    Vamo,
    /// ZO-SGD: steps on a two-point zeroth-order estimate, forward passes only.
    ZoSgd,
    /// SVRG: mini-batch gradient − gradient at the epoch snapshot + its full-data mean.
    Svrg,
}

impl OptimizerName {
    /// Whether this optimizer evaluates the loss itself and needs a --base-optimizer.
    fn is_closure(self) -> bool {
        matches!(
            self,
            Self::Gam | Self::Sam | Self::Vamo | Self::ZoSgd | Self::Svrg
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerName {
    /// The same learning rate at every step.
    Constant,
    /// Cosine annealing from --lr to --lr-min over the run (needs --lr <= 1).
    Cosine,
    /// Multiply the lr by --gamma every --step-epochs epochs.
    Step,
    /// PLRS: lr drawn uniformly from [--lr-min, --lr-max] every step (or epoch, --resample epoch).
    Plrs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resample {
    /// A fresh learning rate every optimizer step.
    Step,
    /// One learning rate per epoch.
    Epoch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Structure {
    /// Full d×d Kronecker factors (diagonal anyway above --max-dim).
    Dense,
    /// Diagonal factors on every axis.
    Diagonal,
}

impl From<Structure> for FactorStructure {
    fn from(s: Structure) -> Self {
        match s {
            Structure::Dense => FactorStructure::Dense,
            Structure::Diagonal => FactorStructure::Diagonal,
        }
    }
}

/// Options of `ember train`. Every default is what the quick start uses.
#[derive(Args, Debug, Clone, Serialize)]
pub struct TrainArgs {
    /// Model to train.
    #[arg(long, value_enum, default_value_t = ModelName::Cnn)]
    pub model: ModelName,
    /// Channels of SmallCnn's stages, comma separated (one 2×2 max-pool per stage).
    #[arg(long, value_delimiter = ',', default_value = "32,64,128")]
    pub widths: Vec<usize>,
    /// Conv blocks per SmallCnn stage.
    #[arg(long, default_value_t = 2)]
    pub convs_per_stage: usize,
    /// Widths of the MLP's hidden layers, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "256")]
    pub hidden: Vec<usize>,
    /// Transformer: side of the square patches that become tokens (must divide the image size).
    #[arg(long, default_value_t = 4)]
    pub patch_size: usize,
    /// Transformer: width of the token states.
    #[arg(long, default_value_t = 64)]
    pub dim: usize,
    /// Transformer: attention heads (must divide --dim).
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Transformer: hidden width of each block's MLP.
    #[arg(long, default_value_t = 128)]
    pub mlp_dim: usize,
    /// Transformer: number of encoder blocks.
    #[arg(long, default_value_t = 2)]
    pub blocks: usize,
    /// Transformer: what the head classifies.
    #[arg(long, value_enum, default_value_t = Pool::ClassToken)]
    pub pool: Pool,

    /// Data set: generated (needs no files), cifar10, cifar100, fashion-mnist, or image-folder:PATH
    /// (PATH/train/<class>/*.png|jpg and PATH/test/<class>/*).
    #[arg(long, default_value = "generated")]
    pub dataset: String,
    /// Folder holding the data files (cifar-10-batches-bin/, cifar-100-binary/, Fashion-MNIST IDX
    /// files).
    #[arg(long, default_value = "datasets/local")]
    pub data_dir: PathBuf,
    /// Download CIFAR-10/100 from the official site into --data-dir if missing (checksum checked).
    #[arg(long)]
    pub download: bool,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_subset: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_subset: Option<usize>,
    /// Random crop (pad 4) + horizontal flip; default: on for CIFAR and image folders, off otherwise.
    #[arg(long)]
    pub augment: Option<bool>,
    /// Add Gaussian noise of this standard deviation (0..1 intensity units) once to every train
    /// and test image, after subsetting (seeded by --seed); 0 = off.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub pixel_noise: f64,

    /// Optimizer (baselines from burn, with PyTorch's defaults set explicitly).
    #[arg(long, value_enum, default_value_t = OptimizerName::Sgd)]
    pub optimizer: OptimizerName,
    /// Peak learning rate [default: 0.05 for sgd, 0.001 for adam/adamw/if-shampoo/shampoo/signum/
    /// sign-gd, 0.02 for the diagonal root-free methods — untuned starting points].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// SGD momentum (heavy ball, no dampening); 0 disables it.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.9)]
    pub momentum: f64,
    /// Nesterov momentum for SGD.
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay: L2 added to the gradient for sgd/adam, decoupled for adamw/rf-adamw/signum/
    /// sign-gd, added after preconditioning for rf-rmsprop/rf-adagrad/if-shampoo
    /// [default: 5e-4 for sgd, 0.01 for adamw/rf-adamw, 0 otherwise].
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Adam/AdamW β1.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.9)]
    pub beta1: f64,
    /// Adam/AdamW β2.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.999)]
    pub beta2: f64,
    /// Adam/AdamW ε (PyTorch's 1e-8; burn's own default is 1e-5).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-8)]
    pub eps: f64,
    /// Root-free methods and IF-Shampoo: β2, the curvature (factor) step size
    /// [default: 0.01, 0.001 for rf-adamw].
    #[arg(long, allow_negative_numbers = true)]
    pub curvature_beta: Option<f64>,
    /// Root-free methods and IF-Shampoo: λ added to the curvature (no square root)
    /// [default: 1e-5 diagonal, 1e-3 if-shampoo].
    #[arg(long, allow_negative_numbers = true)]
    pub damping: Option<f64>,
    /// Diagonal root-free methods: s0, the initial curvature.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub init_curvature: f64,
    /// RF-AdamW: bias-correct the two moments.
    #[arg(long)]
    pub bias_correction: bool,
    /// IF-Shampoo: α2, momentum on the factor updates.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.5)]
    pub factor_momentum: f64,
    /// IF-Shampoo/Shampoo: T, update the Kronecker factors every T steps.
    #[arg(long, default_value_t = 1)]
    pub update_every: usize,
    /// IF-Shampoo/Shampoo: axes longer than this get a diagonal factor.
    #[arg(long, default_value_t = 4096)]
    pub max_dim: usize,
    /// IF-Shampoo/Shampoo: dense or diagonal factors.
    #[arg(long, value_enum, default_value_t = Structure::Dense)]
    pub structure: Structure,
    /// gam/sam/vamo/zo-sgd/svrg: the per-parameter optimizer that applies their direction (its
    /// knobs are the flags above).
    #[arg(long, value_enum, default_value_t = OptimizerName::Sgd)]
    pub base_optimizer: OptimizerName,
    /// GAM: ρ, radius of the ascent on the gradient norm.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.2)]
    pub gam_rho: f64,
    /// GAM: ρ', radius of the finite-difference probes.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.03)]
    pub gam_grad_rho: f64,
    /// GAM: α, weight of g1 in h+.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    pub gam_alpha: f64,
    /// GAM: β, weight of g0 in h−.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    pub gam_beta: f64,
    /// GAM: γ, weight of the orthogonal correction.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.05)]
    pub gam_gamma: f64,
    /// GAM: weight h− as the upstream code does (g0 + (1 − β)·g2) instead of the paper's.
    #[arg(long)]
    pub gam_upstream_h_minus: bool,
    /// SAM: ρ, radius of the ascent step.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.05)]
    pub sam_rho: f64,
    /// VAMO: α, weight of the zeroth-order correction [default: 1/d, d = parameters].
    #[arg(long, allow_negative_numbers = true)]
    pub vamo_alpha: Option<f64>,
    /// VAMO: re-estimate α after each epoch (variance-minimising, logged as `alpha`).
    #[arg(long)]
    pub vamo_adaptive: bool,
    /// VAMO/ZO-SGD: μ, the smoothing radius of the finite differences.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3)]
    pub zo_mu: f64,
    /// VAMO/ZO-SGD: q, random directions per estimate.
    #[arg(long, default_value_t = 1)]
    pub zo_directions: usize,
    /// VAMO/SVRG: batches the snapshot averages over [default: the whole training set].
    #[arg(long)]
    pub snapshot_batches: Option<usize>,

    /// Learning-rate schedule over the whole run.
    #[arg(long, value_enum, default_value_t = SchedulerName::Constant)]
    pub scheduler: SchedulerName,
    /// Lower lr bound: the end of the cosine schedule, PLRS's L_min.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub lr_min: f64,
    /// PLRS's L_max [default: --lr].
    #[arg(long, allow_negative_numbers = true)]
    pub lr_max: Option<f64>,
    /// PLRS: linear warm-up from --lr-min to --lr-max over this many steps.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: usize,
    /// PLRS: draw a new lr every step or every epoch.
    #[arg(long, value_enum, default_value_t = Resample::Step)]
    pub resample: Resample,
    /// Step schedule: epochs between lr decays.
    #[arg(long, default_value_t = 1)]
    pub step_epochs: usize,
    /// Step schedule: the decay factor.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    pub gamma: f64,

    /// Passes over the training set.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Images per evaluation batch.
    #[arg(long, default_value_t = 256)]
    pub eval_batch_size: usize,
    /// Device: flex (CPU), ndarray (CPU), wgpu (default GPU), wgpu:N (N-th discrete GPU),
    /// wgpu-cpu (software Vulkan adapter, e.g. lavapipe).
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Seeds model initialisation, data order, augmentation and the generated data set.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Name of the run folder under --runs-dir [default: <dataset>-<optimizer>-<unix time>].
    #[arg(long)]
    pub run_name: Option<String>,
    /// Where run folders are created.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Continue the run named --run-name from its newest good checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Write a metrics line every N optimizer steps.
    #[arg(long, default_value_t = 20)]
    pub log_every: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// When a loss or update is not finite: stop (naming the step and parameter) or skip the step.
    #[arg(long, value_enum, default_value_t = OnNonFinite::Stop)]
    pub on_nonfinite: OnNonFinite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnNonFinite {
    /// Stop with an error naming the step and the first non-finite parameter.
    Stop,
    /// Undo the step and continue with the next batch (gives up after 25 in a row); one extra
    /// host sync per step.
    Skip,
}

impl TrainArgs {
    fn optimizer_spec(&self) -> anyhow::Result<OptimizerSpec> {
        if !self.optimizer.is_closure() {
            return Ok(self.per_parameter_spec(self.optimizer));
        }
        if self.base_optimizer.is_closure() {
            bail!(
                "--base-optimizer must be a per-parameter optimizer (sgd, adam, adamw, rf-rmsprop, …), got {:?}",
                self.base_optimizer
            );
        }
        let base = Box::new(self.per_parameter_spec(self.base_optimizer));
        Ok(match self.optimizer {
            OptimizerName::Gam => OptimizerSpec::Gam {
                base,
                gam: GamConfig::new()
                    .with_grad_norm_rho(self.gam_rho)
                    .with_grad_rho(self.gam_grad_rho)
                    .with_alpha(self.gam_alpha)
                    .with_beta(self.gam_beta)
                    .with_gamma(self.gam_gamma)
                    .with_upstream_h_minus(self.gam_upstream_h_minus),
            },
            OptimizerName::Sam => OptimizerSpec::Sam {
                base,
                sam: SamConfig::new().with_rho(self.sam_rho),
            },
            OptimizerName::Vamo => OptimizerSpec::Vamo {
                base,
                vamo: VamoConfig::new()
                    .with_alpha(self.vamo_alpha)
                    .with_adaptive_alpha(self.vamo_adaptive)
                    .with_mu(self.zo_mu)
                    .with_directions(self.zo_directions)
                    .with_snapshot_batches(self.snapshot_batches)
                    .with_seed(self.seed),
            },
            OptimizerName::ZoSgd => OptimizerSpec::ZoSgd {
                base,
                zo: ZoSgdConfig::new()
                    .with_mu(self.zo_mu)
                    .with_directions(self.zo_directions)
                    .with_seed(self.seed),
            },
            OptimizerName::Svrg => OptimizerSpec::Svrg {
                base,
                svrg: SvrgConfig::new().with_snapshot_batches(self.snapshot_batches),
            },
            _ => unreachable!("per-parameter optimizers returned above"),
        })
    }

    /// The spec of per-parameter optimizer `name` from this invocation's knobs.
    fn per_parameter_spec(&self, name: OptimizerName) -> OptimizerSpec {
        let (beta_1, beta_2, epsilon) = (self.beta1, self.beta2, self.eps);
        match name {
            OptimizerName::Sgd => OptimizerSpec::Sgd {
                momentum: self.momentum,
                nesterov: self.nesterov,
                weight_decay: self.weight_decay.unwrap_or(5e-4),
            },
            OptimizerName::Adam => OptimizerSpec::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay: self.weight_decay.unwrap_or(0.0),
            },
            OptimizerName::Adamw => OptimizerSpec::AdamW {
                beta_1,
                beta_2,
                epsilon,
                weight_decay: self.weight_decay.unwrap_or(0.01),
            },
            OptimizerName::RfRmsprop | OptimizerName::RfAdagrad => {
                let config = RfRmsPropConfig::new(self.batch_size)
                    .with_beta2(self.curvature_beta.unwrap_or(1e-2))
                    .with_damping(self.damping.unwrap_or(1e-5))
                    .with_momentum(self.momentum)
                    .with_weight_decay(self.weight_decay.unwrap_or(0.0))
                    .with_init_curvature(self.init_curvature);
                if name == OptimizerName::RfRmsprop {
                    OptimizerSpec::RfRmsprop(config)
                } else {
                    OptimizerSpec::RfAdagrad(
                        RfAdaGradConfig::new(self.batch_size)
                            .with_beta2(config.beta2)
                            .with_damping(config.damping)
                            .with_momentum(config.momentum)
                            .with_weight_decay(config.weight_decay)
                            .with_init_curvature(config.init_curvature),
                    )
                }
            }
            OptimizerName::RfAdamw => OptimizerSpec::RfAdamw(
                RfAdamWConfig::new(self.batch_size)
                    .with_beta1(beta_1)
                    .with_beta2(self.curvature_beta.unwrap_or(1e-3))
                    .with_damping(self.damping.unwrap_or(1e-5))
                    .with_weight_decay(self.weight_decay.unwrap_or(0.01))
                    .with_init_curvature(self.init_curvature)
                    .with_bias_correction(self.bias_correction),
            ),
            OptimizerName::IfShampoo => OptimizerSpec::IfShampoo(
                IfShampooConfig::new(self.batch_size)
                    .with_beta2(self.curvature_beta.unwrap_or(1e-2))
                    .with_damping(self.damping.unwrap_or(1e-3))
                    .with_momentum(self.momentum)
                    .with_factor_momentum(self.factor_momentum)
                    .with_weight_decay(self.weight_decay.unwrap_or(0.0))
                    .with_update_every(self.update_every)
                    .with_max_dim(self.max_dim)
                    .with_structure(self.structure.into()),
            ),
            OptimizerName::Shampoo => OptimizerSpec::Shampoo(
                ShampooConfig::new()
                    .with_momentum(self.momentum)
                    .with_weight_decay(self.weight_decay.unwrap_or(0.0))
                    .with_update_every(self.update_every)
                    .with_max_dim(self.max_dim)
                    .with_structure(self.structure.into()),
            ),
            OptimizerName::SignGd => OptimizerSpec::SignGd(
                SignGdConfig::new().with_weight_decay(self.weight_decay.unwrap_or(0.0)),
            ),
            OptimizerName::Signum => OptimizerSpec::Signum(
                SignumConfig::new()
                    .with_beta(self.momentum)
                    .with_weight_decay(self.weight_decay.unwrap_or(0.0)),
            ),
            closure => unreachable!("{closure:?} is not a per-parameter optimizer"),
        }
    }

    fn scheduler_spec(&self) -> SchedulerSpec {
        let stepper = if self.optimizer.is_closure() {
            self.base_optimizer
        } else {
            self.optimizer
        };
        let lr = self.lr.unwrap_or(match stepper {
            OptimizerName::Sgd => 0.05,
            OptimizerName::RfRmsprop | OptimizerName::RfAdagrad | OptimizerName::RfAdamw => 0.02,
            _ => 1e-3,
        });
        match self.scheduler {
            SchedulerName::Constant => SchedulerSpec::Constant { lr },
            SchedulerName::Cosine => SchedulerSpec::Cosine {
                lr,
                min_lr: self.lr_min,
            },
            SchedulerName::Step => SchedulerSpec::Step {
                lr,
                step_epochs: self.step_epochs,
                gamma: self.gamma,
            },
            SchedulerName::Plrs => SchedulerSpec::Plrs {
                min_lr: self.lr_min,
                max_lr: self.lr_max.unwrap_or(lr),
                warmup_steps: self.warmup_steps,
                per_epoch: self.resample == Resample::Epoch,
                seed: self.seed,
            },
        }
    }

    fn dataset_spec(&self) -> anyhow::Result<DatasetSpec> {
        Ok(match self.dataset.parse::<DatasetSpec>()? {
            DatasetSpec::Generated { .. } => DatasetSpec::Generated { seed: self.seed },
            other => other,
        })
    }
}

/// The resolved configuration written to `config.json`: what a reader needs to rerun the run.
#[derive(Serialize)]
struct RunConfig<'a> {
    model: ModelName,
    /// SmallCnn's stage widths (cnn only).
    #[serde(skip_serializing_if = "Option::is_none")]
    widths: Option<&'a [usize]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    convs_per_stage: Option<usize>,
    /// The MLP's hidden widths (mlp only).
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden: Option<&'a [usize]>,
    /// The transformer's shape (transformer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    transformer: Option<TransformerSettings>,
    dataset: &'a DatasetSpec,
    train_subset: Option<usize>,
    test_subset: Option<usize>,
    /// Standard deviation of the fixed pixel noise; absent when off, so that runs from before the
    /// flag existed still resume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pixel_noise: Option<f64>,
    augment: bool,
    optimizer: &'a OptimizerSpec,
    scheduler: &'a SchedulerSpec,
    device: &'a str,
    train: &'a TrainSettings,
    ember_version: &'static str,
}

/// The `--model transformer` flags, as recorded in `config.json`.
#[derive(Serialize)]
struct TransformerSettings {
    patch_size: usize,
    dim: usize,
    heads: usize,
    mlp_dim: usize,
    blocks: usize,
    pool: Pool,
}

/// The `config.json` of a run with these flags and resolved specs.
fn run_config(
    args: &TrainArgs,
    dataset: &DatasetSpec,
    optimizer: &OptimizerSpec,
    scheduler: &SchedulerSpec,
    settings: &TrainSettings,
    augment: bool,
) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::to_value(RunConfig {
        model: args.model,
        widths: (args.model == ModelName::Cnn).then_some(&args.widths[..]),
        convs_per_stage: (args.model == ModelName::Cnn).then_some(args.convs_per_stage),
        hidden: (args.model == ModelName::Mlp).then_some(&args.hidden[..]),
        transformer: (args.model == ModelName::Transformer).then_some(TransformerSettings {
            patch_size: args.patch_size,
            dim: args.dim,
            heads: args.heads,
            mlp_dim: args.mlp_dim,
            blocks: args.blocks,
            pool: args.pool,
        }),
        dataset,
        train_subset: args.train_subset,
        test_subset: args.test_subset,
        pixel_noise: (args.pixel_noise > 0.0).then_some(args.pixel_noise),
        augment,
        optimizer,
        scheduler,
        device: &args.device,
        train: settings,
        ember_version: env!("CARGO_PKG_VERSION"),
    })?)
}

/// The `config.json` that `ember train` with these flags would write, resolved from the flags
/// alone (no data is loaded): what `ember compare` checks a finished run against.
pub fn planned_config(args: &TrainArgs) -> anyhow::Result<serde_json::Value> {
    let dataset = args.dataset_spec()?;
    let augment = args.augment.unwrap_or(dataset.augments_by_default());
    run_config(
        args,
        &dataset,
        &args.optimizer_spec()?,
        &args.scheduler_spec(),
        &train_settings(args),
        augment,
    )
}

/// The loop settings the flags ask for.
fn train_settings(args: &TrainArgs) -> TrainSettings {
    TrainSettings {
        epochs: args.epochs,
        batch_size: args.batch_size,
        eval_batch_size: args.eval_batch_size,
        seed: args.seed,
        log_every: args.log_every,
        progress: !args.quiet,
        on_nonfinite: match args.on_nonfinite {
            OnNonFinite::Stop => NonFinitePolicy::Stop,
            OnNonFinite::Skip => NonFinitePolicy::Skip,
        },
    }
}

/// Everything `ember train` builds from its flags before training: the checked specs, the loaded
/// (and subset) data with its batcher, the device and the freshly initialised model. `ember
/// lr-find` starts from the same, so a range test sees exactly the model, data and optimizer that a
/// training run with the same flags would.
pub struct Prepared {
    pub device_choice: DeviceChoice,
    pub device: Device,
    pub dataset: DatasetSpec,
    pub optimizer: OptimizerSpec,
    pub scheduler: SchedulerSpec,
    pub settings: TrainSettings,
    pub augment: bool,
    pub data: TrainData,
    pub model: AnyClassifier,
}

/// Checks the flags, loads the data and builds the model (seeded by `--seed`).
pub fn prepare(args: &TrainArgs) -> anyhow::Result<Prepared> {
    let device_choice: DeviceChoice = args.device.parse()?;
    device_choice.pin_as_default();
    let dataset = args.dataset_spec()?;
    let optimizer_spec = args.optimizer_spec()?;
    let scheduler_spec = args.scheduler_spec();
    optimizer_spec.validate()?;
    scheduler_spec.validate()?;
    if !(args.pixel_noise.is_finite() && args.pixel_noise >= 0.0) {
        bail!(
            "--pixel-noise must be a finite standard deviation of at least 0, got {}",
            args.pixel_noise
        );
    }

    let loading = std::time::Instant::now();
    let split = dataset
        .load(&args.data_dir, args.download)
        .with_context(|| format!("loading data set `{}`", args.dataset))?;
    let split = Split {
        train: match args.train_subset {
            Some(n) => split.train.subset(n),
            None => split.train,
        },
        test: match args.test_subset {
            Some(n) => split.test.subset(n),
            None => split.test,
        },
    };
    if split.train.is_empty() || split.test.is_empty() {
        bail!("the data set has an empty train or test half");
    }
    let Split {
        train: train_set,
        test: test_set,
    } = if args.pixel_noise > 0.0 {
        split.with_pixel_noise(args.pixel_noise, args.seed)?
    } else {
        split
    };
    let shape = train_set.shape().clone();
    tracing::info!(
        "data: {} train / {} test images of {}x{}x{}, {} classes (loaded in {:.1}s)",
        train_set.len(),
        test_set.len(),
        shape.channels,
        shape.height,
        shape.width,
        train_set.num_classes(),
        loading.elapsed().as_secs_f64()
    );

    let settings = train_settings(args);
    settings.validate(train_set.len())?;
    let augment = args.augment.unwrap_or(dataset.augments_by_default());
    let batcher = ImageBatcher::new(
        Normalization::fit(&train_set),
        augment.then(Augmentation::cifar),
    );

    let device = device_choice.device()?;
    device.seed(args.seed);
    let model: AnyClassifier = match args.model {
        ModelName::Cnn => {
            let config = SmallCnnConfig::new(shape.channels, train_set.num_classes())
                .with_stage_widths(args.widths.clone())
                .with_convs_per_stage(args.convs_per_stage);
            if shape.height.min(shape.width) < config.min_image_size() {
                bail!(
                    "images of {}x{} are too small for {} pooling stages (need at least {} pixels a side)",
                    shape.height,
                    shape.width,
                    args.widths.len(),
                    config.min_image_size()
                );
            }
            config.init(&device)?.into()
        }
        ModelName::Mlp => MlpConfig::new(
            shape.channels * shape.height * shape.width,
            train_set.num_classes(),
        )
        .with_hidden(args.hidden.clone())
        .init(&device)?
        .into(),
        ModelName::Transformer => TwoLayerTransformerConfig::new(
            shape.channels,
            shape.height,
            shape.width,
            train_set.num_classes(),
        )
        .with_patch_size(args.patch_size)
        .with_dim(args.dim)
        .with_heads(args.heads)
        .with_mlp_dim(args.mlp_dim)
        .with_blocks(args.blocks)
        .with_pool(args.pool.into())
        .init(&device)?
        .into(),
    };
    Ok(Prepared {
        device_choice,
        device,
        dataset,
        optimizer: optimizer_spec,
        scheduler: scheduler_spec,
        settings,
        augment,
        data: TrainData {
            train: train_set,
            test: test_set,
            batcher,
        },
        model,
    })
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if args.resume {
        // Before loading any data: a misspelt run name is named with the runs that do exist.
        let Some(name) = &args.run_name else {
            let runs = ember_train::existing_runs(&args.runs_dir);
            bail!(
                "--resume needs --run-name NAME (the run to continue); runs in {}: {}",
                args.runs_dir.display(),
                if runs.is_empty() {
                    "none".into()
                } else {
                    runs.join(", ")
                }
            );
        };
        RunDir::new(args.runs_dir.join(name)).ensure_resumable()?;
    }
    let Prepared {
        device_choice,
        device,
        dataset,
        optimizer: optimizer_spec,
        scheduler: scheduler_spec,
        settings,
        augment,
        data,
        model,
    } = prepare(&args)?;
    let steps_per_epoch = settings.steps_per_epoch(data.train.len());
    let parts = TrainParts {
        model,
        optimizer: optimizer_spec.build_rule(settings.batch_size)?,
        scheduler: scheduler_spec.build(steps_per_epoch * settings.epochs, steps_per_epoch)?,
    };

    let run_name = args.run_name.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let data = args.dataset.split(':').next().unwrap_or("data");
        format!("{data}-{}-{secs}", optimizer_spec.name())
    });
    let run = RunDir::new(args.runs_dir.join(&run_name));
    let config = run_config(
        &args,
        &dataset,
        &optimizer_spec,
        &scheduler_spec,
        &settings,
        augment,
    )?;
    tracing::info!(
        "training {} ({} parameters) with {} on {device_choice} for {} epochs, run folder {}",
        args.model.type_name(),
        parts.model.num_params(),
        optimizer_spec.name(),
        settings.epochs,
        run.root().display()
    );
    let summary = ember_train::train(&run, &config, &settings, &data, parts, &device, args.resume)?;
    println!(
        "test accuracy: {:.2}% (best {:.2}%), test loss {:.4}, {:.1} train images/s, {:.0}s, {:.2} forward + {:.2} backward passes/step; run folder {}",
        100.0 * summary.final_test_accuracy,
        100.0 * summary.best_test_accuracy,
        summary.final_test_loss,
        summary.train_images_per_s,
        summary.wall_time_s,
        summary.forward_passes_per_step,
        summary.backward_passes_per_step,
        run.root().display()
    );
    Ok(())
}
