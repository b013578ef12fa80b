use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use ember_optim::{Decay, PlrsConfig, WarmupDecayConfig};
use serde::{Deserialize, Serialize};

use super::{check_non_negative, check_positive, SpecError};

/// How the learning rate evolves over the run's optimizer steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum SchedulerSpec {
    /// The same learning rate at every step.
    Constant {
        /// The learning rate, > 0.
        lr: f64,
    },
    /// A linear warm-up to `lr` over `warmup_steps`, then cosine annealing to `min_lr` at the
    /// run's last step (`ember_optim::WarmupDecay`; without a warm-up, burn's cosine step for step).
    Cosine {
        /// The peak learning rate, reached at the end of the warm-up, > 0.
        lr: f64,
        /// The learning rate at the run's last step, in [0, lr].
        min_lr: f64,
        /// Absent from `config.json` when 0, as runs recorded before warm-ups existed.
        #[serde(default, skip_serializing_if = "is_zero")]
        warmup_steps: usize,
    },
    /// A linear warm-up to `lr` over `warmup_steps`, then a straight line down to `min_lr` at the
    /// run's last step.
    Linear {
        /// The peak learning rate, reached at the end of the warm-up, > 0.
        lr: f64,
        /// The learning rate at the run's last step, in [0, lr].
        min_lr: f64,
        /// Optimizer steps of the linear warm-up from 0 (at most the run's steps; 0 for none).
        warmup_steps: usize,
    },
    /// `lr · gammaᵏ` after k periods of `step_epochs` epochs (burn's step scheduler).
    Step {
        /// The learning rate of the first period, > 0.
        lr: f64,
        /// Epochs per period, at least 1.
        step_epochs: usize,
        /// Factor applied after each period, in (0, 1] (default 0.1).
        gamma: f64,
    },
    /// PLRS: a learning rate drawn uniformly from [min_lr, max_lr] every step (or every epoch),
    /// after an optional linear warm-up (Devapriya et al., arXiv 2407.07613).
    Plrs {
        /// Lower end of the uniform range, > 0; also where the warm-up starts.
        min_lr: f64,
        /// Upper end of the uniform range (at least `min_lr`); the schedule's peak.
        max_lr: f64,
        /// Optimizer steps of the linear warm-up from `min_lr` to `max_lr` (0 for none).
        warmup_steps: usize,
        /// Draw a new learning rate once an epoch rather than every step.
        per_epoch: bool,
        /// Seed of the draws (a run's seed replaces it: [`SchedulerSpec::with_seed`]).
        seed: u64,
    },
}

impl SchedulerSpec {
    /// The peak learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            SchedulerSpec::Constant { lr }
            | SchedulerSpec::Cosine { lr, .. }
            | SchedulerSpec::Linear { lr, .. }
            | SchedulerSpec::Step { lr, .. } => lr,
            SchedulerSpec::Plrs { max_lr, .. } => max_lr,
        }
    }

    /// The short name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            SchedulerSpec::Constant { .. } => "constant",
            SchedulerSpec::Cosine { .. } => "cosine",
            SchedulerSpec::Linear { .. } => "linear",
            SchedulerSpec::Step { .. } => "step",
            SchedulerSpec::Plrs { .. } => "plrs",
        }
    }

    /// The schedule called `name` ([`SchedulerSpec::name`]) with its default knobs; its learning
    /// rates are 0 (they have no sensible default: whoever asks must set them).
    pub fn named(name: &str) -> Option<SchedulerSpec> {
        let all = [
            SchedulerSpec::Constant { lr: 0.0 },
            SchedulerSpec::Cosine {
                lr: 0.0,
                min_lr: 0.0,
                warmup_steps: 0,
            },
            SchedulerSpec::Linear {
                lr: 0.0,
                min_lr: 0.0,
                warmup_steps: 0,
            },
            SchedulerSpec::Step {
                lr: 0.0,
                step_epochs: 1,
                gamma: 0.1,
            },
            SchedulerSpec::Plrs {
                min_lr: 0.0,
                max_lr: 0.0,
                warmup_steps: 0,
                per_epoch: false,
                seed: 0,
            },
        ];
        all.into_iter().find(|s| s.name() == name)
    }

    /// The same schedule with its random draws (PLRS) seeded by the run's `seed`.
    pub fn with_seed(self, seed: u64) -> Self {
        match self {
            SchedulerSpec::Plrs {
                min_lr,
                max_lr,
                warmup_steps,
                per_epoch,
                ..
            } => SchedulerSpec::Plrs {
                min_lr,
                max_lr,
                warmup_steps,
                per_epoch,
                seed,
            },
            other => other,
        }
    }

    /// Whether the learning rates depend on the total number of steps of the run, so that a resume
    /// with another epoch count would bend the curve mid-run (what [`ember_train::TrainParts`]'s
    /// `schedule_spans_run` tells the loop). No wildcard: a new schedule must decide.
    pub fn spans_run(&self) -> bool {
        match self {
            SchedulerSpec::Cosine { .. } | SchedulerSpec::Linear { .. } => true,
            SchedulerSpec::Constant { .. }
            | SchedulerSpec::Step { .. }
            | SchedulerSpec::Plrs { .. } => false,
        }
    }

    /// Checks the bounds, naming the bad field.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_positive("lr", self.lr())?;
        if let SchedulerSpec::Cosine { lr, min_lr, .. } | SchedulerSpec::Linear { lr, min_lr, .. } =
            *self
        {
            check_non_negative("min_lr", min_lr)?;
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
            SchedulerSpec::Cosine {
                lr,
                min_lr,
                warmup_steps,
            }
            | SchedulerSpec::Linear {
                lr,
                min_lr,
                warmup_steps,
            } => {
                if warmup_steps > total_steps {
                    return Err(SpecError::new(
                        "warmup_steps",
                        format!(
                            "must not exceed the run's {total_steps} steps, got {warmup_steps}"
                        ),
                    ));
                }
                let decay = if self.name() == "cosine" {
                    Decay::Cosine
                } else {
                    Decay::Linear
                };
                Ok(WarmupDecayConfig::new(lr, total_steps.max(1))
                    .with_warmup_steps(warmup_steps)
                    .with_min_lr(min_lr)
                    .with_decay(decay)
                    .try_init()?)
            }
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
#[cfg(test)]
mod tests {
    use super::*;

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
            lr: 0.1,
            min_lr: 0.2,
            warmup_steps: 0,
        };
        assert_eq!(cosine.validate().unwrap_err().field, "min_lr");
        // Peaks above 1 are fine since the cosine is ours, not burn's (which refuses them).
        let steep = SchedulerSpec::Linear {
            lr: 2.0,
            min_lr: 0.0,
            warmup_steps: 4,
        };
        assert!(steep.build(8, 2).is_ok());
        assert_eq!(steep.build(3, 1).err().unwrap().field, "warmup_steps");
        // A constant lr above 1 is legitimate (e.g. large-batch SGD) and must be accepted.
        let mut constant = SchedulerSpec::Constant { lr: 3.0 }.build(10, 5).unwrap();
        assert_eq!(constant.step().base(), 3.0);
        let mut cosine = SchedulerSpec::Cosine {
            lr: 0.1,
            min_lr: 0.0,
            warmup_steps: 0,
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
        // A cosine spec's config.json entry is what it was before warm-ups existed.
        let plain = SchedulerSpec::Cosine {
            lr: 0.1,
            min_lr: 0.0,
            warmup_steps: 0,
        };
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!({"name": "cosine", "lr": 0.1, "min_lr": 0.0})
        );
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

    /// The schedules flagged as spanning the run are exactly those whose learning rates change
    /// with the run's length: built for 8 and for 16 steps, their first 8 rates must agree
    /// unless flagged.
    #[test]
    fn a_schedule_is_flagged_exactly_when_its_rates_depend_on_the_run_length() {
        let schedules = [
            SchedulerSpec::Constant { lr: 0.1 },
            SchedulerSpec::Cosine {
                lr: 0.1,
                min_lr: 0.001,
                warmup_steps: 0,
            },
            SchedulerSpec::Linear {
                lr: 0.1,
                min_lr: 0.001,
                warmup_steps: 3,
            },
            SchedulerSpec::Step {
                lr: 0.1,
                step_epochs: 1,
                gamma: 0.5,
            },
            SchedulerSpec::Plrs {
                min_lr: 0.01,
                max_lr: 0.1,
                warmup_steps: 2,
                per_epoch: false,
                seed: 3,
            },
            SchedulerSpec::Plrs {
                min_lr: 0.01,
                max_lr: 0.1,
                warmup_steps: 0,
                per_epoch: true,
                seed: 3,
            },
        ];
        for spec in schedules {
            let rates = |total: usize| -> Vec<f64> {
                let mut scheduler = spec.build(total, 4).unwrap();
                (0..8).map(|_| scheduler.step().base()).collect()
            };
            let depends = rates(8) != rates(16);
            assert_eq!(depends, spec.spans_run(), "{spec:?}");
        }
    }
}
