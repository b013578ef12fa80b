use burn::module::Module;
use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdafactorConfig, AdamConfig, AdamWConfig, AdjustLrFn, LionConfig, ModuleOptimizer, MuonConfig,
    SgdConfig,
};
use ember_optim::{
    DirectionRule, GamConfig, IfShampooConfig, RfAdaGradConfig, RfAdamWConfig, RfRmsPropConfig,
    SamConfig, ShampooConfig, SignGdConfig, SignumConfig, SvrgConfig, VamoConfig, ZoSgdConfig,
};
use ember_train::StepRule;
use serde::{Deserialize, Serialize};

use super::{check_non_negative, check_positive, check_unit, SpecError};

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
        /// Momentum coefficient in [0, 1); 0 is plain SGD (default 0.9).
        momentum: f64,
        /// Nesterov momentum instead of heavy-ball (needs momentum > 0).
        nesterov: bool,
        /// L2 penalty added to the gradient, as in PyTorch's SGD (default 5e-4).
        weight_decay: f64,
    },
    /// Adam with L2 weight decay added to the gradient — PyTorch's `torch.optim.Adam`.
    Adam {
        /// Decay rate of the first-moment (mean) estimate, in [0, 1) (default 0.9).
        beta_1: f64,
        /// Decay rate of the second-moment estimate, in [0, 1) (default 0.999).
        beta_2: f64,
        /// Added to the denominator's square root for stability, > 0 (default 1e-8).
        epsilon: f64,
        /// L2 penalty added to the gradient, as in PyTorch's Adam (default 0).
        weight_decay: f64,
    },
    /// AdamW: decoupled weight decay `w ← w(1 − lr·λ)` — PyTorch's `torch.optim.AdamW`.
    #[serde(rename = "adamw")]
    AdamW {
        /// Decay rate of the first-moment (mean) estimate, in [0, 1) (default 0.9).
        beta_1: f64,
        /// Decay rate of the second-moment estimate, in [0, 1) (default 0.999).
        beta_2: f64,
        /// Added to the denominator's square root for stability, > 0 (default 1e-8).
        epsilon: f64,
        /// Decoupled weight decay λ (default 0.01).
        weight_decay: f64,
    },
    /// Lion (Chen et al., 2023): the sign of an interpolation of the gradient and its momentum,
    /// decoupled weight decay — burn's `Lion`. Its steps have size lr per coordinate, so its lr
    /// is typically 3–10× smaller than AdamW's.
    Lion {
        /// Interpolation between momentum and gradient whose sign is the update, in [0, 1)
        /// (default 0.9).
        beta_1: f64,
        /// Decay rate of the momentum, in [0, 1) (default 0.99).
        beta_2: f64,
        /// Decoupled weight decay (default 0).
        weight_decay: f64,
    },
    /// Adafactor (Shazeer & Stern, 2018): factored second moments (row and column means for a
    /// matrix), no first moment, update clipping — burn's `Adafactor`. With `relative_step` the
    /// lr is capped by 1/√step; with `scale_parameter` the step scales with the parameter's RMS.
    Adafactor {
        /// Cap the lr by 1/√step (default true).
        relative_step: bool,
        /// Scale the step by the parameter's RMS (default true).
        scale_parameter: bool,
        /// Update clipping: the normalised update's RMS is capped at this, > 0 (default 1.0).
        clip_threshold: f64,
        /// Exponent of the second-moment decay β2 = 1 − step^decay_rate; negative (default −0.8).
        decay_rate: f64,
        /// Added to the squared gradient, > 0 (default 1e-30).
        epsilon_1: f64,
        /// Floor of the parameter RMS used by `scale_parameter`, > 0 (default 1e-3).
        epsilon_2: f64,
        /// Decoupled weight decay, multiplied by the lr (default 0).
        weight_decay: f64,
    },
    /// Muon (Jordan et al., 2024) on the weight matrices of the transformer blocks (attention's
    /// four projections, the MLP's two linears): momentum (Nesterov by default) orthogonalised by
    /// `ns_steps` Newton–Schulz iterations; every other parameter (embeddings, positions, the
    /// head, norms, biases) steps with AdamW (β 0.9/0.999, ε 1e-8) — burn's `Muon` and `AdamW`
    /// through its parameter groups, the reference recipe. Both groups share the lr schedule and
    /// the decoupled `weight_decay`; with `match_adamw_rms` (the default, Moonshot's scaling
    /// 0.2·√max(rows, cols)) Muon's update has AdamW's RMS, so one lr suits both, else Keller
    /// Jordan's √max(1, rows/cols).
    Muon {
        /// Momentum coefficient in [0, 1) (default 0.95).
        momentum: f64,
        /// Nesterov momentum instead of heavy-ball (default true).
        nesterov: bool,
        /// Newton–Schulz iterations orthogonalising the momentum, at least 1 (default 5).
        ns_steps: usize,
        /// Scale Muon's update to AdamW's RMS (Moonshot's 0.2·√max(rows, cols)) rather than Keller
        /// Jordan's √max(1, rows/cols) (default true).
        match_adamw_rms: bool,
        /// Decoupled weight decay, shared by the Muon and AdamW groups (default 0).
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
        /// The per-parameter optimizer that steps GAM's direction.
        base: Box<OptimizerSpec>,
        /// GAM's own knobs.
        gam: GamConfig,
    },
    /// SAM (two gradient passes a step) around `base`.
    Sam {
        /// The per-parameter optimizer that steps SAM's direction.
        base: Box<OptimizerSpec>,
        /// SAM's own knobs.
        sam: SamConfig,
    },
    /// VAMO: mini-batch gradient with a zeroth-order SVRG-style correction, stepped by `base`.
    Vamo {
        /// The per-parameter optimizer that steps the corrected gradient.
        base: Box<OptimizerSpec>,
        /// VAMO's own knobs (its random directions are seeded by the run's seed).
        vamo: VamoConfig,
    },
    /// ZO-SGD: steps on a two-point zeroth-order estimate (forward passes only), through `base`.
    ZoSgd {
        /// The per-parameter optimizer that steps the zeroth-order estimate.
        base: Box<OptimizerSpec>,
        /// ZO-SGD's own knobs (its random directions are seeded by the run's seed).
        zo: ZoSgdConfig,
    },
    /// SVRG: mini-batch gradient with a first-order snapshot correction, stepped by `base`.
    Svrg {
        /// The per-parameter optimizer that steps the corrected gradient.
        base: Box<OptimizerSpec>,
        /// SVRG's own knobs.
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
            OptimizerSpec::Lion {
                beta_1,
                beta_2,
                weight_decay,
            } => {
                check_unit("beta_1", beta_1)?;
                check_unit("beta_2", beta_2)?;
                check_non_negative("weight_decay", weight_decay)
            }
            OptimizerSpec::Muon {
                momentum,
                ns_steps,
                weight_decay,
                ..
            } => {
                check_unit("momentum", momentum)?;
                if ns_steps == 0 {
                    return Err(SpecError::new("ns_steps", "must be at least 1"));
                }
                check_non_negative("weight_decay", weight_decay)
            }
            OptimizerSpec::Adafactor {
                clip_threshold,
                decay_rate,
                epsilon_1,
                epsilon_2,
                weight_decay,
                ..
            } => {
                check_positive("clip_threshold", clip_threshold)?;
                if !(decay_rate.is_finite() && decay_rate < 0.0) {
                    return Err(SpecError::new(
                        "decay_rate",
                        format!("must be negative (β2 = 1 − step^decay_rate), got {decay_rate}"),
                    ));
                }
                check_positive("epsilon_1", epsilon_1)?;
                check_positive("epsilon_2", epsilon_2)?;
                check_non_negative("weight_decay", weight_decay)
            }
            OptimizerSpec::Gam { ref gam, .. } => {
                self.base_checked()?;
                Ok(gam.validate()?)
            }
            OptimizerSpec::Sam { ref sam, .. } => {
                self.base_checked()?;
                Ok(sam.validate()?)
            }
            OptimizerSpec::Vamo { ref vamo, .. } => {
                self.base_checked()?;
                Ok(vamo.validate()?)
            }
            OptimizerSpec::ZoSgd { ref zo, .. } => {
                self.base_checked()?;
                Ok(zo.validate()?)
            }
            OptimizerSpec::Svrg { ref svrg, .. } => {
                self.base_checked()?;
                Ok(svrg.validate()?)
            }
            // ember-optim's configs; B is the run's, written in by `build`, so it is checked
            // there (the spec's own B is a placeholder).
            OptimizerSpec::RfRmsprop(ref c) => Ok(RfRmsPropConfig {
                batch_size: 1,
                ..c.clone()
            }
            .validate()?),
            OptimizerSpec::RfAdagrad(ref c) => Ok(RfAdaGradConfig {
                batch_size: 1,
                ..c.clone()
            }
            .validate()?),
            OptimizerSpec::RfAdamw(ref c) => Ok(RfAdamWConfig {
                batch_size: 1,
                ..c.clone()
            }
            .validate()?),
            OptimizerSpec::IfShampoo(ref c) => Ok(IfShampooConfig {
                batch_size: 1,
                ..c.clone()
            }
            .validate()?),
            OptimizerSpec::Shampoo(ref c) => Ok(c.validate()?),
            OptimizerSpec::SignGd(ref c) => Ok(c.validate()?),
            OptimizerSpec::Signum(ref c) => Ok(c.validate()?),
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

    /// burn's optimizers beyond the PyTorch baselines (Lion, Adafactor, Muon) with their
    /// defaults: selectable by name, not part of the benchmark's optimizer list.
    fn extra_defaults() -> Vec<OptimizerSpec> {
        vec![
            OptimizerSpec::Lion {
                beta_1: 0.9,
                beta_2: 0.99,
                weight_decay: 0.0,
            },
            OptimizerSpec::adafactor(0.0),
            OptimizerSpec::muon(0.0),
        ]
    }

    /// Muon with burn's defaults (momentum 0.95, Nesterov, 5 Newton–Schulz steps), AdamW's RMS
    /// matched, and `weight_decay`.
    pub fn muon(weight_decay: f64) -> Self {
        OptimizerSpec::Muon {
            momentum: 0.95,
            nesterov: true,
            ns_steps: 5,
            match_adamw_rms: true,
            weight_decay,
        }
    }

    /// Whether it steps only models with transformer blocks (Muon's group is their matrices).
    pub fn needs_transformer_blocks(&self) -> bool {
        matches!(self, OptimizerSpec::Muon { .. })
    }

    /// Adafactor with burn's (and the paper's) defaults and `weight_decay`.
    pub fn adafactor(weight_decay: f64) -> Self {
        OptimizerSpec::Adafactor {
            relative_step: true,
            scale_parameter: true,
            clip_threshold: 1.0,
            decay_rate: -0.8,
            epsilon_1: 1e-30,
            epsilon_2: 1e-3,
            weight_decay,
        }
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

    /// The optimizer called `name` ([`OptimizerSpec::name`]) with its default knobs, closure
    /// methods around the default SGD, for a run of `batch_size` images a step.
    pub fn named(name: &str, batch_size: usize) -> Option<OptimizerSpec> {
        let sgd = Self::defaults().swap_remove(1);
        Self::defaults()
            .into_iter()
            .chain(Self::extra_defaults())
            .chain(Self::closure_defaults(&sgd))
            .find(|spec| spec.name() == name)
            .map(|spec| spec.with_batch_size(batch_size))
    }

    /// The same optimizer for a run of `batch_size` images a step: the root-free methods scale
    /// their curvature by it (a closure method's base included).
    pub fn with_batch_size(self, batch_size: usize) -> Self {
        let rebase = |base: Box<OptimizerSpec>| Box::new(base.with_batch_size(batch_size));
        match self {
            OptimizerSpec::RfRmsprop(c) => {
                OptimizerSpec::RfRmsprop(RfRmsPropConfig { batch_size, ..c })
            }
            OptimizerSpec::RfAdagrad(c) => {
                OptimizerSpec::RfAdagrad(RfAdaGradConfig { batch_size, ..c })
            }
            OptimizerSpec::RfAdamw(c) => OptimizerSpec::RfAdamw(RfAdamWConfig { batch_size, ..c }),
            OptimizerSpec::IfShampoo(c) => {
                OptimizerSpec::IfShampoo(IfShampooConfig { batch_size, ..c })
            }
            OptimizerSpec::Gam { base, gam } => OptimizerSpec::Gam {
                base: rebase(base),
                gam,
            },
            OptimizerSpec::Sam { base, sam } => OptimizerSpec::Sam {
                base: rebase(base),
                sam,
            },
            OptimizerSpec::Vamo { base, vamo } => OptimizerSpec::Vamo {
                base: rebase(base),
                vamo,
            },
            OptimizerSpec::ZoSgd { base, zo } => OptimizerSpec::ZoSgd {
                base: rebase(base),
                zo,
            },
            OptimizerSpec::Svrg { base, svrg } => OptimizerSpec::Svrg {
                base: rebase(base),
                svrg,
            },
            other => other,
        }
    }

    /// The same optimizer with its random directions (VAMO, ZO-SGD) seeded by the run's `seed`.
    pub fn with_seed(self, seed: u64) -> Self {
        match self {
            OptimizerSpec::Vamo { base, vamo } => OptimizerSpec::Vamo {
                base,
                vamo: vamo.with_seed(seed),
            },
            OptimizerSpec::ZoSgd { base, zo } => OptimizerSpec::ZoSgd {
                base,
                zo: zo.with_seed(seed),
            },
            other => other,
        }
    }

    /// The short name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerSpec::Sgd { .. } => "sgd",
            OptimizerSpec::Adam { .. } => "adam",
            OptimizerSpec::AdamW { .. } => "adamw",
            OptimizerSpec::Lion { .. } => "lion",
            OptimizerSpec::Muon { .. } => "muon",
            OptimizerSpec::Adafactor { .. } => "adafactor",
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
        match self.clone().with_batch_size(batch_size) {
            // The root-free methods scale their curvature by the run's batch size.
            OptimizerSpec::RfRmsprop(c) => return Ok(c.try_init()?),
            OptimizerSpec::RfAdagrad(c) => return Ok(c.try_init()?),
            OptimizerSpec::RfAdamw(c) => return Ok(c.try_init()?),
            OptimizerSpec::IfShampoo(c) => return Ok(c.try_init()?),
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
            OptimizerSpec::Muon {
                momentum,
                nesterov,
                ns_steps,
                match_adamw_rms,
                weight_decay,
            } => {
                let muon = MuonConfig::new()
                    .with_momentum(MomentumConfig {
                        momentum,
                        dampening: 0.0,
                        nesterov,
                    })
                    .with_ns_steps(ns_steps)
                    .with_adjust_lr_fn(if match_adamw_rms {
                        AdjustLrFn::MatchRmsAdamW
                    } else {
                        AdjustLrFn::Original
                    })
                    .with_weight_decay(
                        (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
                    )
                    .build();
                // AdamW is the fallback for every parameter; the blocks' matrices go to Muon.
                AdamWConfig::new()
                    .with_weight_decay(weight_decay as f32)
                    .init()
                    .with_group(muon_group(), muon, None)
            }
            OptimizerSpec::Lion {
                beta_1,
                beta_2,
                weight_decay,
            } => LionConfig::new()
                .with_beta_1(beta_1 as f32)
                .with_beta_2(beta_2 as f32)
                .with_weight_decay(weight_decay as f32)
                .init(),
            OptimizerSpec::Adafactor {
                relative_step,
                scale_parameter,
                clip_threshold,
                decay_rate,
                epsilon_1,
                epsilon_2,
                weight_decay,
            } => AdafactorConfig::new()
                .with_relative_step(relative_step)
                .with_scale_parameter(scale_parameter)
                .with_clip_threshold(clip_threshold as f32)
                .with_decay_rate(decay_rate)
                .with_epsilon_1(epsilon_1 as f32)
                .with_epsilon_2(epsilon_2 as f32)
                .with_weight_decay(weight_decay as f32)
                .init(),
            _ => unreachable!("handled above"),
        })
    }
}
/// The parameters Muon steps: the weight matrices of `EncoderBlock`s (shared by
/// `TwoLayerTransformer` and `CausalDecoder`), found by the end of their module path
/// (`blocks.<i>.attention.query.weight`, `blocks.<i>.mlp_in.weight`, …; no other Ember model
/// has these names). Every one is 2-D, as Newton–Schulz needs; embeddings, the head, norms and
/// biases are not in it.
pub fn muon_group() -> ParamGroup {
    const MATRICES: [&str; 6] = [
        "attention.query.weight",
        "attention.key.weight",
        "attention.value.weight",
        "attention.output.weight",
        "mlp_in.weight",
        "mlp_out.weight",
    ];
    ParamGroup::from_any_predicates(MATRICES.iter().map(|m| format!(".{m}")).collect())
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
    fn lion_adafactor_and_muon_are_named_built_and_checked() {
        for name in ["lion", "adafactor", "muon"] {
            let spec = OptimizerSpec::named(name, 32).unwrap();
            assert_eq!(spec.name(), name);
            spec.validate().unwrap();
            assert!(spec.build(32).is_ok());
        }
        let lion = OptimizerSpec::Lion {
            beta_1: 1.0,
            beta_2: 0.99,
            weight_decay: 0.0,
        };
        assert_eq!(lion.validate().unwrap_err().field, "beta_1");
        let Some(OptimizerSpec::Adafactor { .. }) = OptimizerSpec::named("adafactor", 1) else {
            panic!("adafactor");
        };
        let bad = OptimizerSpec::Adafactor {
            relative_step: true,
            scale_parameter: true,
            clip_threshold: 1.0,
            decay_rate: 0.8,
            epsilon_1: 1e-30,
            epsilon_2: 1e-3,
            weight_decay: 0.0,
        };
        assert_eq!(bad.validate().unwrap_err().field, "decay_rate");
    }

    /// Every float parameter of `model` by module path, as host values.
    fn parameters<M: Module>(model: &M) -> std::collections::BTreeMap<String, Vec<f32>> {
        let mut values = std::collections::BTreeMap::new();
        ember_train::for_each_float_parameter(model, |path, _, tensor| {
            let host = tensor
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            values.insert(path.to_string(), host);
        });
        values
    }

    /// One step of Muon from a fresh state on a small decoder: AdamW's first step moves every
    /// parameter with a gradient by lr in each coordinate (m̂/√v̂ = ±1), Muon's orthogonalised
    /// momentum does not, so the size of each parameter's step shows which optimizer took it.
    #[test]
    fn muon_steps_the_blocks_matrices_and_adamw_everything_else() {
        use burn::optim::GradientsParams;
        use burn::prelude::{Int, Tensor};
        let device = ember_train::DeviceChoice::Flex.device().unwrap();
        device.seed(3);
        let model = ember_models::CausalDecoderConfig::new(7)
            .with_context(6)
            .with_dim(8)
            .with_heads(2)
            .with_mlp_dim(16)
            .with_blocks(2)
            .init(&device)
            .unwrap();
        let before = parameters(&model);
        let tokens: Vec<i64> = (0..12).map(|i| (i * 5 % 7) as i64).collect();
        let tokens =
            Tensor::<2, Int>::from_data(burn::tensor::TensorData::new(tokens, [2, 6]), &device);
        let loss = model.forward(tokens).powf_scalar(2.0).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = 0.01;
        let mut muon = OptimizerSpec::muon(0.0).build(1).unwrap();
        let after = parameters(&muon.step(lr, model, grads));
        let mut matrices = 0;
        for (path, old) in &before {
            let steps: Vec<f64> = old
                .iter()
                .zip(&after[path])
                .map(|(a, b)| f64::from((b - a).abs()))
                .collect();
            // Within 5 %: a tiny gradient's first Adam step is g/(|g| + ε), a little under lr.
            let adam_like = steps.iter().filter(|d| (*d - lr).abs() < 0.05 * lr).count();
            let is_matrix = path.starts_with("blocks.")
                && (path.contains(".attention.") || path.contains(".mlp_"))
                && path.ends_with(".weight");
            if is_matrix {
                matrices += 1;
                let rms = (steps.iter().map(|d| d * d).sum::<f64>() / steps.len() as f64).sqrt();
                // Moonshot's scaling gives about 0.2·lr RMS; AdamW would give exactly lr.
                assert!(
                    adam_like < steps.len() / 4 && (0.05 * lr..0.6 * lr).contains(&rms),
                    "{path}: rms {rms}, {adam_like} of {} steps of size lr",
                    steps.len()
                );
            } else if !path.starts_with("embedding") && !path.ends_with("key.bias") {
                // Positions, norms, biases and the head: every coordinate has a gradient (not
                // the unused embedding rows, nor the key bias, to which softmax is blind).
                assert_eq!(adam_like, steps.len(), "{path}: {steps:?}");
            }
        }
        assert_eq!(matrices, 2 * 6, "{:?}", before.keys().collect::<Vec<_>>());
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
}
