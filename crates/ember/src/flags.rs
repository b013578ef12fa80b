//! `ember train`'s flags (also taken by `ember lr-find`) and their one mapping onto the typed
//! specs of [`ember_lab::spec`], so that a command line and an experiment arm mean the same run.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};
use ember_optim::{
    FactorStructure, GamConfig, IfShampooConfig, RfAdaGradConfig, RfAdamWConfig, RfRmsPropConfig,
    SamConfig, ShampooConfig, SignGdConfig, SignumConfig, SvrgConfig, VamoConfig, ZoSgdConfig,
};
use ember_train::{Budget, EvalSplit, NonFinitePolicy, TrainSettings};
use serde::Serialize;

use ember_data::Tokenization;

use ember_lab::spec::{
    DataSpec, DecoderSpec, Holdout, ModelSpec, OptimizerSpec, RunSpec, SchedulerSpec, TextDataSpec,
    TextRunSpec, TokenPoolSpec, TransformerSpec,
};

/// A flag's value as the library type of that name, read by the name `config.json` and spec
/// files use (`class-token`, `small-cnn`): the library's enums stay free of clap, and a wrong name
/// is answered with the names that exist.
pub fn by_name<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|e| e.to_string())
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerName {
    /// SGD with heavy-ball momentum (PyTorch semantics: no dampening), L2 weight decay.
    Sgd,
    /// Adam (L2 weight decay added to the gradient).
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
    /// Lion: sign of an interpolation of gradient and momentum (β1 = --beta-1; β2 0.99, the
    /// paper's, settable in spec tables), decoupled --weight-decay; lr 3–10× below AdamW's.
    Lion,
    /// Adafactor: factored second moments, no first moment, update clipping; lr capped by
    /// 1/√step and scaled by the parameter's RMS (burn's defaults).
    Adafactor,
    /// Muon on the transformer blocks' weight matrices (momentum 0.95, Nesterov, 5 Newton–Schulz
    /// steps, AdamW's RMS matched), AdamW on every other parameter, one lr for both, decoupled
    /// --weight-decay; transformer and decoder models only.
    Muon,
    /// Root-free RMSProp: g/(s + λ), no square root (knobs: --beta2, --damping,
    /// --init-curvature, --momentum, --weight-decay).
    RfRmsprop,
    /// Root-free AdaGrad: the curvature is a running sum.
    RfAdagrad,
    /// Root-free AdamW: Adam's first moment over a root-free curvature, decoupled weight decay.
    RfAdamw,
    /// Inverse-free Kronecker preconditioner (knobs: --beta2, --damping,
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
    /// (knobs: --vamo-alpha, --vamo-adaptive-alpha, --zo-mu, --zo-directions, --snapshot-batches).
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

    /// The name `--optimizer` takes (`rf-rmsprop`).
    fn flag_value(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }

    /// Whether this optimizer reads --beta2, the root-free curvature step.
    fn reads_curvature_step(self) -> bool {
        matches!(
            self,
            Self::RfRmsprop | Self::RfAdagrad | Self::RfAdamw | Self::IfShampoo
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerName {
    /// The same learning rate at every step.
    Constant,
    /// Linear warm-up over --warmup-steps, then cosine annealing from --lr to --min-lr over the run.
    Cosine,
    /// Linear warm-up over --warmup-steps, then a straight line from --lr to --min-lr over the run.
    Linear,
    /// Multiply the lr by --gamma every --step-epochs epochs.
    Step,
    /// PLRS: lr drawn uniformly from [--min-lr, --max-lr] every step (or epoch, --resample epoch).
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

/// The flags of `ember train` (and `ember lr-find`) that describe the run; every default is what
/// the quick start uses.
#[derive(Args, Debug, Clone, Serialize)]
pub struct TrainFlags {
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
    /// Transformer: what the head classifies: class-token (a learned class token, as ViT) or mean
    /// (the mean of the final token states).
    #[arg(long, value_parser = by_name::<TokenPoolSpec>, default_value = "class-token")]
    pub pool: TokenPoolSpec,

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
    /// Hold out N training images (class-balanced, after --train-subset and --pixel-noise) as a
    /// validation split; the run trains on the rest.
    #[arg(long)]
    pub validation: Option<usize>,
    /// Seeds which images the validation split holds.
    #[arg(long, default_value_t = 0)]
    pub validation_seed: u64,
    /// Evaluate each epoch on the test set or on the validation split (--validation)
    /// [default: test for images, validation for --text].
    #[arg(long, value_enum)]
    pub evaluate_on: Option<EvaluateOn>,

    /// Optimizer (baselines from burn, with PyTorch's defaults set explicitly).
    #[arg(long, value_enum, default_value_t = OptimizerName::Sgd)]
    pub optimizer: OptimizerName,
    /// Peak learning rate [default: 0.05 for sgd, 0.001 for adam/adamw/if-shampoo/shampoo/signum/
    /// sign-gd, 0.02 for the diagonal root-free methods, 3e-4 for lion, 0.01 for adafactor — untuned
    /// starting points].
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
    /// Adam/AdamW/Lion/RF-AdamW β1, the first moment's decay [default: 0.9].
    #[arg(long, alias = "beta1", allow_negative_numbers = true)]
    pub beta_1: Option<f64>,
    /// Adam/AdamW β2, the second moment's decay (not --beta2, the root-free curvature step)
    /// [default: 0.999].
    #[arg(long, allow_negative_numbers = true)]
    pub beta_2: Option<f64>,
    /// Adam/AdamW ε [default: 1e-8, PyTorch's; burn's own default is 1e-5].
    #[arg(long, alias = "eps", allow_negative_numbers = true)]
    pub epsilon: Option<f64>,
    /// Root-free methods and IF-Shampoo: β2, the curvature (factor) step size, their configs'
    /// `beta2` — a step, not Adam's decay (that is --beta-2) [default: 0.01, 0.001 for rf-adamw].
    #[arg(long, alias = "curvature-beta", allow_negative_numbers = true)]
    pub beta2: Option<f64>,
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
    /// GAM: ρ, radius of the ascent on the gradient norm (GamConfig's `grad_norm_rho`).
    #[arg(
        long,
        alias = "gam-rho",
        allow_negative_numbers = true,
        default_value_t = 0.2
    )]
    pub gam_grad_norm_rho: f64,
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
    #[arg(long, alias = "vamo-adaptive")]
    pub vamo_adaptive_alpha: bool,
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
    /// Lower lr bound: the floor of the cosine and linear schedules, PLRS's L_min.
    #[arg(
        long,
        alias = "lr-min",
        allow_negative_numbers = true,
        default_value_t = 0.0
    )]
    pub min_lr: f64,
    /// PLRS's L_max [default: --lr].
    #[arg(long, alias = "lr-max", allow_negative_numbers = true)]
    pub max_lr: Option<f64>,
    /// Linear warm-up steps: PLRS from --min-lr to --max-lr; cosine and linear from 0 to --lr.
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

/// `--tokenization`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenizationName {
    /// Unicode characters of the text (it must be UTF-8); bits per character.
    Chars,
    /// Bytes; bits per byte.
    Bytes,
}

/// `--evaluate-on`: the split each epoch is evaluated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvaluateOn {
    /// The data set's test half.
    Test,
    /// The validation split held out of the training half (--validation).
    Validation,
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

impl TrainFlags {
    fn optimizer_spec(&self) -> anyhow::Result<OptimizerSpec> {
        let stepper = if self.optimizer.is_closure() {
            self.base_optimizer
        } else {
            self.optimizer
        };
        // `--beta2` and `--beta-2` differ by a hyphen: a value the optimizer would not read is
        // refused, naming the flag that was probably meant, rather than ignored.
        use OptimizerName::{Adam, Adamw, Lion, RfAdamw};
        if self.beta2.is_some() && !stepper.reads_curvature_step() {
            bail!(
                "--beta2 is the root-free curvature step of rf-rmsprop, rf-adagrad, rf-adamw and \
                 if-shampoo; {} does not read it (Adam's second-moment decay is --beta-2)",
                stepper.flag_value()
            );
        }
        for (flag, given, readers) in [
            ("--beta-2", self.beta_2.is_some(), &[Adam, Adamw][..]),
            ("--epsilon", self.epsilon.is_some(), &[Adam, Adamw][..]),
            (
                "--beta-1",
                self.beta_1.is_some(),
                &[Adam, Adamw, Lion, RfAdamw][..],
            ),
        ] {
            if given && !readers.contains(&stepper) {
                let readers: Vec<String> = readers.iter().map(|r| r.flag_value()).collect();
                bail!(
                    "{flag} is read by {} only; {} does not read it (the root-free curvature step \
                     is --beta2)",
                    readers.join(", "),
                    stepper.flag_value()
                );
            }
        }
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
                    .with_grad_norm_rho(self.gam_grad_norm_rho)
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
                    .with_adaptive_alpha(self.vamo_adaptive_alpha)
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
        let (beta_1, beta_2, epsilon) = (
            self.beta_1.unwrap_or(0.9),
            self.beta_2.unwrap_or(0.999),
            self.epsilon.unwrap_or(1e-8),
        );
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
            OptimizerName::Lion => OptimizerSpec::Lion {
                beta_1,
                beta_2: 0.99,
                weight_decay: self.weight_decay.unwrap_or(0.0),
            },
            OptimizerName::Adafactor => OptimizerSpec::adafactor(self.weight_decay.unwrap_or(0.0)),
            OptimizerName::Muon => OptimizerSpec::muon(self.weight_decay.unwrap_or(0.0)),
            OptimizerName::RfRmsprop | OptimizerName::RfAdagrad => {
                let config = RfRmsPropConfig::new(self.batch_size)
                    .with_beta2(self.beta2.unwrap_or(1e-2))
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
                    .with_beta2(self.beta2.unwrap_or(1e-3))
                    .with_damping(self.damping.unwrap_or(1e-5))
                    .with_weight_decay(self.weight_decay.unwrap_or(0.01))
                    .with_init_curvature(self.init_curvature)
                    .with_bias_correction(self.bias_correction),
            ),
            OptimizerName::IfShampoo => OptimizerSpec::IfShampoo(
                IfShampooConfig::new(self.batch_size)
                    .with_beta2(self.beta2.unwrap_or(1e-2))
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
            OptimizerName::Lion => 3e-4,
            OptimizerName::Adafactor => 1e-2,
            _ => 1e-3,
        });
        match self.scheduler {
            SchedulerName::Constant => SchedulerSpec::Constant { lr },
            SchedulerName::Cosine => SchedulerSpec::Cosine {
                lr,
                min_lr: self.min_lr,
                warmup_steps: self.warmup_steps,
            },
            SchedulerName::Linear => SchedulerSpec::Linear {
                lr,
                min_lr: self.min_lr,
                warmup_steps: self.warmup_steps,
            },
            SchedulerName::Step => SchedulerSpec::Step {
                lr,
                step_epochs: self.step_epochs,
                gamma: self.gamma,
            },
            SchedulerName::Plrs => SchedulerSpec::Plrs {
                min_lr: self.min_lr,
                max_lr: self.max_lr.unwrap_or(lr),
                warmup_steps: self.warmup_steps,
                per_epoch: self.resample == Resample::Epoch,
                seed: self.seed,
            },
        }
    }

    /// The model the flags describe.
    fn model_spec(&self) -> ModelSpec {
        match self.model {
            ModelName::Cnn => ModelSpec::Cnn {
                widths: self.widths.clone(),
                convs_per_stage: self.convs_per_stage,
            },
            ModelName::Mlp => ModelSpec::Mlp {
                hidden: self.hidden.clone(),
            },
            ModelName::Transformer => ModelSpec::Transformer(TransformerSpec {
                patch_size: self.patch_size,
                dim: self.dim,
                heads: self.heads,
                mlp_dim: self.mlp_dim,
                blocks: self.blocks,
                pool: self.pool,
            }),
        }
    }

    /// The run these flags describe: the one mapping from `ember train`'s flags to the typed
    /// specs an experiment's arms are written in.
    pub fn run_spec(&self) -> anyhow::Result<RunSpec> {
        let spec = RunSpec {
            model: self.model_spec(),
            data: DataSpec {
                dataset: self.dataset.parse()?,
                data_dir: self.data_dir.clone(),
                download: self.download,
                train_subset: self.train_subset,
                test_subset: self.test_subset,
                augment: self.augment,
                pixel_noise: self.pixel_noise,
                validation: self.validation.map(|size| Holdout {
                    size,
                    seed: self.validation_seed,
                }),
                evaluate: match self.evaluate_on.unwrap_or(EvaluateOn::Test) {
                    EvaluateOn::Test => EvalSplit::Test,
                    EvaluateOn::Validation => EvalSplit::Validation,
                },
            },
            optimizer: self.optimizer_spec()?,
            scheduler: self.scheduler_spec(),
            train: TrainSettings {
                budget: Budget::Epochs {
                    epochs: self.epochs,
                },
                batch_size: self.batch_size,
                eval_batch_size: self.eval_batch_size,
                seed: self.seed,
                log_every: self.log_every,
                progress: !self.quiet,
                on_nonfinite: match self.on_nonfinite {
                    OnNonFinite::Stop => NonFinitePolicy::Stop,
                    OnNonFinite::Skip => NonFinitePolicy::Skip,
                },
            },
            device: self.device.clone(),
        };
        Ok(spec.with_seed(self.seed))
    }
}

/// The flags of `ember train` that make it train a language model (`--text`); the optimizer,
/// schedule, batch, device and seed come from [`TrainFlags`], the decoder's width from its
/// transformer flags (--dim, --heads, --mlp-dim, --blocks).
#[derive(Args, Debug, Clone, Serialize)]
pub struct TextFlags {
    /// Language modelling: train a causal decoder (shaped by --dim, --heads, --mlp-dim, --blocks
    /// and --context) on this text, a UTF-8 file (split by position) or a folder of documents
    /// (split by document), for --steps steps instead of --epochs; --batch-size counts windows.
    #[arg(long, value_name = "PATH")]
    pub text: Option<PathBuf>,
    /// --text: tokens are the text's characters (the vocabulary is stored in the run folder) or
    /// its bytes (256 tokens, any file).
    #[arg(long, value_enum, default_value_t = TokenizationName::Chars)]
    pub tokenization: TokenizationName,
    /// --text: tokens per window (the decoder's context).
    #[arg(long, default_value_t = 128)]
    pub context: usize,
    /// --text: optimizer steps in the run.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// --text: evaluate and checkpoint every N steps (must divide --steps).
    #[arg(long, default_value_t = 100)]
    pub eval_every: usize,
    /// --text: windows of the evaluation split each evaluation reads.
    #[arg(long, default_value_t = 64)]
    pub eval_windows: usize,
    /// --text: validation and test get one part in N of the text each.
    #[arg(long, default_value_t = 20)]
    pub holdout_every: usize,
    /// --text: the head reuses the token embedding's weights.
    #[arg(long)]
    pub tie_embeddings: bool,
}

impl TextFlags {
    /// The language-modelling run these flags describe with `train`'s optimizer, schedule and
    /// loop settings (the image flags are unused).
    pub fn run_spec(&self, train: &TrainFlags) -> anyhow::Result<TextRunSpec> {
        let Some(path) = &self.text else {
            anyhow::bail!("--text PATH names the text a language model trains on");
        };
        let spec = TextRunSpec {
            data: TextDataSpec {
                path: path.clone(),
                tokenization: match self.tokenization {
                    TokenizationName::Chars => Tokenization::Chars,
                    TokenizationName::Bytes => Tokenization::Bytes,
                },
                holdout_every: self.holdout_every,
                evaluate: match train.evaluate_on.unwrap_or(EvaluateOn::Validation) {
                    EvaluateOn::Test => EvalSplit::Test,
                    EvaluateOn::Validation => EvalSplit::Validation,
                },
                eval_windows: self.eval_windows,
            },
            model: DecoderSpec {
                context: self.context,
                dim: train.dim,
                heads: train.heads,
                mlp_dim: train.mlp_dim,
                blocks: train.blocks,
                tie_embeddings: self.tie_embeddings,
            },
            optimizer: train.optimizer_spec()?,
            scheduler: train.scheduler_spec(),
            train: TrainSettings {
                budget: Budget::Steps {
                    steps: self.steps,
                    eval_every: self.eval_every,
                },
                batch_size: train.batch_size,
                eval_batch_size: train.eval_batch_size,
                seed: train.seed,
                log_every: train.log_every,
                progress: !train.quiet,
                on_nonfinite: match train.on_nonfinite {
                    OnNonFinite::Stop => NonFinitePolicy::Stop,
                    OnNonFinite::Skip => NonFinitePolicy::Skip,
                },
            },
            device: train.device.clone(),
        }
        .with_seed(train.seed);
        spec.validate()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use ember_lab::compare::sweep::Setting;
    use ember_lab::CompareSpec;

    use super::*;

    const SPEC: &str = r#"
name = "demo"
seeds = [0, 1]
[model]
kind = "cnn"
widths = [8, 16]
[data]
dataset = "generated"
train_subset = 128
[train]
epochs = 2
batch_size = 32
[[arm]]
name = "sgd"
optimizer = { name = "sgd", momentum = 0.9 }
scheduler = { name = "constant", lr = 0.05 }
[[arm]]
name = "vamo"
optimizer = { name = "vamo", base = { name = "rf-rmsprop" }, vamo = { directions = 2 } }
scheduler = { name = "plrs", min_lr = 0.01, max_lr = 0.05 }
[[arm]]
name = "later"
pending = "needs a model that does not exist yet"
"#;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("spec.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_arm_becomes_the_run_the_same_flags_describe() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            flags: TrainFlags,
        }
        let dir = tempfile::tempdir().unwrap();
        let spec = CompareSpec::load(&write(dir.path(), SPEC)).unwrap();
        assert_eq!(spec.runnable_arms().count(), 2);
        let cases = [
            (
                0,
                "--optimizer sgd --momentum 0.9 --weight-decay 5e-4 --lr 0.05",
            ),
            (
                1,
                "--optimizer vamo --base-optimizer rf-rmsprop --zo-directions 2 --momentum 0.9 \
                 --damping 1e-5 --beta2 0.01 --scheduler plrs --min-lr 0.01 --max-lr 0.05",
            ),
        ];
        for (arm, flags) in cases {
            let shared = "--model cnn --widths 8,16 --dataset generated --train-subset 128 \
                          --epochs 2 --batch-size 32 --device flex --seed 1 --quiet";
            let argv = format!("ember {shared} {flags}");
            let cli = Cli::try_parse_from(argv.split_whitespace()).unwrap();
            let from_flags = cli.flags.run_spec().unwrap();
            let from_arm = spec.run_spec(&spec.arms[arm], 1, &Setting::new()).unwrap();
            assert_eq!(
                from_arm.config_json(),
                from_flags.config_json(),
                "arm {arm}"
            );
        }
        let pending = spec
            .run_spec(&spec.arms[2], 0, &Setting::new())
            .unwrap_err();
        assert!(pending.to_string().contains("is pending"), "{pending}");
    }

    #[test]
    fn one_name_per_knob_and_the_old_spellings_still_parse() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            flags: TrainFlags,
        }
        let parse = |flags: &str| {
            Cli::try_parse_from(format!("ember {flags}").split_whitespace())
                .unwrap()
                .flags
        };
        let canonical = parse(
            "--optimizer vamo --base-optimizer rf-adamw --beta-1 0.8 --beta2 0.02 \
             --vamo-adaptive-alpha --scheduler plrs --min-lr 0.01 --max-lr 0.05",
        );
        let old = parse(
            "--optimizer vamo --base-optimizer rf-adamw --beta1 0.8 --curvature-beta 0.02 \
             --vamo-adaptive --scheduler plrs --lr-min 0.01 --lr-max 0.05",
        );
        let json = |f: &TrainFlags| f.run_spec().unwrap().config_json();
        assert_eq!(json(&canonical), json(&old));
        let spec = canonical.run_spec().unwrap();
        let optimizer = serde_json::to_value(&spec.optimizer).unwrap();
        assert_eq!(optimizer["base"]["beta1"], 0.8);
        assert_eq!(optimizer["base"]["beta2"], 0.02);
        assert_eq!(optimizer["vamo"]["adaptive_alpha"], true);
        let adam = parse("--optimizer adam --beta-2 0.95 --epsilon 1e-6")
            .run_spec()
            .unwrap();
        let adam = serde_json::to_value(&adam.optimizer).unwrap();
        assert_eq!(
            (adam["beta_2"].as_f64(), adam["epsilon"].as_f64()),
            (Some(0.95), Some(1e-6))
        );
        let gam = parse("--optimizer gam --gam-rho 0.3").run_spec().unwrap();
        let gam = serde_json::to_value(&gam.optimizer).unwrap();
        assert_eq!(gam["gam"]["grad_norm_rho"], 0.3);
    }

    #[test]
    fn a_beta_the_optimizer_does_not_read_is_refused_naming_the_other_spelling() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            flags: TrainFlags,
        }
        let cases = [
            ("--optimizer adam --beta2 0.999", "--beta-2"),
            (
                "--optimizer sam --base-optimizer sgd --beta2 0.1",
                "--beta-2",
            ),
            ("--optimizer rf-rmsprop --beta-2 0.1", "--beta2"),
            ("--optimizer if-shampoo --epsilon 1e-6", "--beta2"),
            ("--optimizer sgd --beta-1 0.8", "--beta2"),
        ];
        for (flags, other) in cases {
            let cli = Cli::try_parse_from(format!("ember {flags}").split_whitespace()).unwrap();
            let err = cli.flags.run_spec().unwrap_err().to_string();
            assert!(
                err.contains(other) && err.contains("does not read it"),
                "{flags}: {err}"
            );
        }
        // Where they are read, both spellings work.
        for flags in [
            "--optimizer rf-adamw --beta-1 0.8 --beta2 0.01",
            "--optimizer lion --beta-1 0.95",
            "--optimizer sam --base-optimizer adamw --beta-2 0.99 --epsilon 1e-6",
        ] {
            let cli = Cli::try_parse_from(format!("ember {flags}").split_whitespace()).unwrap();
            assert!(cli.flags.run_spec().is_ok(), "{flags}");
        }
    }

    /// The flags keep their own fallbacks (`--beta2` unset means 0.01, or 0.001 for rf-adamw);
    /// they must be the spec tables' defaults, or `--optimizer X` and `{ name = "X" }` would train
    /// different runs.
    #[test]
    fn every_optimizer_defaults_as_its_spec_table_does() {
        use clap::{Parser, ValueEnum};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            flags: TrainFlags,
        }
        for name in OptimizerName::value_variants() {
            let name = name.to_possible_value().unwrap();
            let name = name.get_name();
            let cli =
                Cli::try_parse_from(["ember", "--optimizer", name, "--batch-size", "32"]).unwrap();
            let from_flags = serde_json::to_value(cli.flags.run_spec().unwrap().optimizer).unwrap();
            let from_table =
                OptimizerSpec::named(name, 32).map(|s| serde_json::to_value(s).unwrap());
            assert_eq!(Some(from_flags), from_table, "{name}");
        }
    }

    #[test]
    fn library_enums_are_read_by_their_config_names() {
        assert_eq!(
            by_name::<TokenPoolSpec>("class-token"),
            Ok(TokenPoolSpec::ClassToken)
        );
        let err = by_name::<TokenPoolSpec>("max").unwrap_err();
        assert!(err.contains("class-token") && err.contains("mean"), "{err}");
    }
}
