use burn::config::Config;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::LearningRate;

use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// Record key of the number of [`WarmupDecay::step`] calls made so far.
const STEP_KEY: &str = "step";

/// How the learning rate falls from its peak to its floor after the warm-up.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Decay {
    /// Half a cosine period: slow at both ends (Loshchilov & Hutter's SGDR, one cycle).
    Cosine,
    /// A straight line.
    Linear,
}

/// Configuration of a [linear warm-up followed by a decay](WarmupDecay) over a run of
/// `total_steps` optimizer steps.
#[derive(Config, Debug)]
pub struct WarmupDecayConfig {
    /// The peak learning rate, reached at the last warm-up step. Must be finite and `> 0`.
    pub lr: f64,
    /// The run's length `T` in optimizer steps: the decay ends at step `T` (just after the run's
    /// last step, as in burn's cosine and Hugging Face's schedules). Must be `≥ 1`.
    pub total_steps: usize,
    /// Linear warm-up steps `N`: step `t < N` uses `lr · t / N` (`0`: no warm-up). At most
    /// `total_steps`.
    #[config(default = 0)]
    pub warmup_steps: usize,
    /// The floor the decay ends at. Must be finite, `≥ 0` and `≤ lr`.
    #[config(default = 0.0)]
    pub min_lr: f64,
    /// The shape of the decay.
    #[config(default = "Decay::Cosine")]
    pub decay: Decay,
}

impl WarmupDecayConfig {
    /// Checks every field, naming the first one out of range; [`build`](Self::build) and the
    /// `init` methods run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("WarmupDecayConfig");
        check.positive("lr", self.lr)?;
        check.non_negative("min_lr", self.min_lr)?;
        if self.min_lr > self.lr {
            return Err(check.fail("min_lr", self.min_lr, "a number <= lr"));
        }
        check.at_least_one("total_steps", self.total_steps)?;
        if self.warmup_steps > self.total_steps {
            return Err(check.fail("warmup_steps", self.warmup_steps, "at most total_steps"));
        }
        Ok(())
    }

    /// Validate the config and build the bare scheduler.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the field when a rate is not finite, `lr ≤ 0`,
    /// `min_lr` is outside `[0, lr]`, `total_steps` is 0 or `warmup_steps > total_steps`.
    pub fn build(&self) -> Result<WarmupDecay, OptimConfigError> {
        self.validate()?;
        Ok(WarmupDecay {
            config: self.clone(),
            step: 0,
        })
    }

    /// The [`ModuleLrScheduler`] burn's `Learner` takes, with the signature of burn's own
    /// scheduler configs.
    ///
    /// # Errors
    ///
    /// [`try_init`](Self::try_init)'s error as text, naming the field.
    pub fn init(&self) -> Result<ModuleLrScheduler, String> {
        self.try_init().map_err(|err| err.to_string())
    }

    /// [`init`](Self::init) with the typed error.
    ///
    /// # Errors
    ///
    /// See [`build`](Self::build).
    pub fn try_init(&self) -> Result<ModuleLrScheduler, OptimConfigError> {
        Ok(ModuleLrScheduler::new(self.build()?))
    }
}

/// A linear warm-up from 0 to `lr` over `warmup_steps`, then a cosine (or linear) decay
/// towards `min_lr`, which step `total_steps` reaches (`min_lr` from then on).
///
/// Step `t < N` uses `peak·t/N`; with `p = (t − N)/(T − N)` the decay's progress at step `t ≥ N`
/// (`T` the total steps, `N` the warm-up steps), the rate is `final + (peak − final)·(1 + cos πp)/2`
/// (cosine) or `final + (peak − final)·(1 − p)` (linear): Hugging Face's
/// `get_cosine_schedule_with_warmup` / `get_linear_schedule_with_warmup` with a floor. Without a
/// warm-up the cosine is burn's `CosineAnnealingLrScheduler` over `T` iterations, step for step.
/// The schedule depends on `T`, so a resumed run must keep its length; the state is the step count
/// alone.
#[derive(Clone, Debug)]
pub struct WarmupDecay {
    config: WarmupDecayConfig,
    step: u64,
}

impl WarmupDecay {
    /// The learning rate of step `t` (0-based).
    pub fn lr_at(&self, t: u64) -> LearningRate {
        let c = &self.config;
        let warmup = c.warmup_steps as u64;
        if t < warmup {
            return c.lr * t as f64 / warmup as f64;
        }
        let decay_steps = (c.total_steps as u64 - warmup).max(1);
        let progress = ((t - warmup) as f64 / decay_steps as f64).min(1.0);
        let fraction = match c.decay {
            Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            Decay::Linear => 1.0 - progress,
        };
        c.min_lr + (c.lr - c.min_lr) * fraction
    }
}

impl LrScheduler for WarmupDecay {
    fn step(&mut self) -> LearningRate {
        let lr = self.lr_at(self.step);
        self.step += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar(STEP_KEY, self.step)
    }

    /// Restores the step counter; a record without one leaves the scheduler as it was (burn's
    /// schedulers do the same).
    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(step) = record.scalar::<u64>(STEP_KEY) {
            self.step = step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;

    fn take(scheduler: &mut impl LrScheduler, n: usize) -> Vec<f64> {
        (0..n).map(|_| scheduler.step()).collect()
    }

    #[test]
    fn without_warm_up_the_cosine_is_burns_cosine() {
        let mut ours = WarmupDecayConfig::new(0.1, 10)
            .with_min_lr(0.001)
            .build()
            .unwrap();
        let mut burns = CosineAnnealingLrSchedulerConfig::new(0.1, 10)
            .with_min_lr(0.001)
            .init()
            .unwrap();
        let ours = take(&mut ours, 11);
        let burns: Vec<f64> = (0..11).map(|_| burns.step().base()).collect();
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() < 1e-12, "{ours:?} vs {burns:?}");
        }
        assert_eq!(ours[0], 0.1, "starts at the peak");
        assert!((ours[10] - 0.001).abs() < 1e-12, "step T is at the floor");
    }

    #[test]
    fn hand_computed_warm_up_then_linear_and_cosine_decay() {
        // Peak 1, floor 0, 2 warm-up steps of 6: 0, 1/2, then p = 0, 1/4, 2/4, 3/4, 1, 1.
        let linear = WarmupDecayConfig::new(1.0, 6)
            .with_warmup_steps(2)
            .with_decay(Decay::Linear);
        let lrs = take(&mut linear.build().unwrap(), 8);
        assert_eq!(lrs, [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]);
        let cosine = WarmupDecayConfig::new(1.0, 6).with_warmup_steps(2);
        let lrs = take(&mut cosine.build().unwrap(), 7);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let expected = [0.0, 0.5, 1.0, 0.5 + 0.5 * s, 0.5, 0.5 - 0.5 * s, 0.0];
        for (a, b) in lrs.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{lrs:?}");
        }
    }

    #[test]
    fn a_restored_scheduler_continues_where_it_stopped() {
        let config = WarmupDecayConfig::new(0.2, 20)
            .with_warmup_steps(5)
            .with_min_lr(0.01);
        let full = take(&mut config.build().unwrap(), 20);
        let mut first = config.build().unwrap();
        let head = take(&mut first, 7);
        let mut resumed = config.build().unwrap();
        resumed.load_record(first.to_record());
        let tail = take(&mut resumed, 13);
        assert_eq!([head, tail].concat(), full);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let field = |c: WarmupDecayConfig| c.build().unwrap_err().field;
        assert_eq!(field(WarmupDecayConfig::new(0.0, 10)), "lr");
        assert_eq!(field(WarmupDecayConfig::new(0.1, 0)), "total_steps");
        assert_eq!(
            field(WarmupDecayConfig::new(0.1, 10).with_warmup_steps(11)),
            "warmup_steps"
        );
        assert_eq!(
            field(WarmupDecayConfig::new(0.1, 10).with_min_lr(0.2)),
            "min_lr"
        );
        assert_eq!(
            field(WarmupDecayConfig::new(0.1, 10).with_min_lr(f64::NAN)),
            "min_lr"
        );
    }
}
