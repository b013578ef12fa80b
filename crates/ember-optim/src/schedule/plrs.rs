use burn::config::Config;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::LearningRate;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::field_check::FieldCheck;
use crate::OptimConfigError;

/// Record key of the number of [`Plrs::step`] calls made so far.
const STEP_KEY: &str = "step";
/// Record key of the seed of the random stream.
const SEED_KEY: &str = "seed";

/// Configuration of the [probabilistic learning-rate scheduler](Plrs).
#[derive(Config, Debug)]
pub struct PlrsConfig {
    /// Lower bound `L_min` of the uniform law `η_t ~ U[L_min, L_max]`; also where the warm-up
    /// starts. Must be finite and `> 0`.
    pub min_lr: f64,
    /// Upper bound `L_max` of the uniform law; the paper puts it just below the learning rate at
    /// which an LR range test's loss starts to rise. Must be finite and `≥ min_lr` (`> 1` is fine).
    pub max_lr: f64,
    /// `None`: a fresh `η_t` at every step (the paper). `Some(n)`: one draw per epoch of `n` steps,
    /// epochs counted from step 0. Must be `≥ 1` when set.
    pub steps_per_epoch: Option<usize>,
    /// Number `N` of linear warm-up steps before the random phase (`0`: no warm-up, the paper).
    #[config(default = 0)]
    pub warmup_steps: usize,
    /// Seed of the random stream; the same seed always gives the same learning-rate sequence.
    #[config(default = 0)]
    pub seed: u64,
}

impl PlrsConfig {
    /// Checks every field, naming the first one out of range; [`build`](Self::build) and the
    /// `init` methods run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("PlrsConfig");
        check.positive("min_lr", self.min_lr)?;
        check.positive("max_lr", self.max_lr)?;
        if self.max_lr < self.min_lr {
            return Err(check.fail("max_lr", self.max_lr, "a number >= min_lr"));
        }
        if let Some(steps_per_epoch) = self.steps_per_epoch {
            check.at_least_one("steps_per_epoch", steps_per_epoch)?;
        }
        Ok(())
    }

    /// Validate the config and build the bare scheduler (for a hand-written loop, or a parameter
    /// group of a `ModuleLrScheduler`).
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the field when `min_lr` or `max_lr` is not a finite positive
    /// number, `max_lr < min_lr`, or `steps_per_epoch` is `Some(0)`.
    pub fn build(&self) -> Result<Plrs, OptimConfigError> {
        self.validate()?;
        Ok(Plrs {
            min_lr: self.min_lr,
            max_lr: self.max_lr,
            steps_per_epoch: self.steps_per_epoch.map(|n| n as u64),
            warmup_steps: self.warmup_steps as u64,
            seed: self.seed,
            step: 0,
            stream: Pcg64::seed_from_u64(self.seed),
            stream_position: 0,
            last_draw: None,
        })
    }

    /// The [`ModuleLrScheduler`] burn's `Learner` takes, with the same signature as burn's own
    /// scheduler configs (`CosineAnnealingLrSchedulerConfig::init`), so swapping one for the other
    /// is one line.
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
    /// As [`build`](Self::build).
    pub fn try_init(&self) -> Result<ModuleLrScheduler, OptimConfigError> {
        self.build().map(ModuleLrScheduler::from)
    }
}

/// PLRS, the probabilistic learning-rate scheduler: every step draws its learning rate
/// `η_t ~ Uniform[L_min, L_max]`, i.i.d. and independent of the gradient, with fixed bounds (no
/// decay, no cycle).
///
/// From Devapriya, Tholeti, Suresh, Kalyani, *Randomness Helps Rigor: A Probabilistic Learning
/// Rate Scheduler Bridging Theory and Deep Learning Practice* (v1: *Probabilistic learning rate
/// scheduler with provable convergence*), [arXiv:2407.07613](https://arxiv.org/abs/2407.07613).
/// The paper pairs it with plain SGD, e.g. `[0.07, 0.1]` for VGG-16 on CIFAR-10.
///
/// # The sequence, exactly
///
/// Let `t = 0, 1, 2, …` count the calls to [`step`](LrScheduler::step) and `N = warmup_steps`.
/// - Warm-up, `t < N`: `η_t = L_min + (L_max − L_min) · t / N` — deterministic and linear,
///   `η_0 = L_min`, rising by `(L_max − L_min) / N` per step (the ramp would reach `L_max` at
///   `t = N`, where the random phase begins). This is burn's `LinearLrScheduler` convention.
/// - Random phase, `t ≥ N`: `η_t = L_min + (L_max − L_min) · u_k`, where `k = t` per step or
///   `k = ⌊t / steps_per_epoch⌋` per epoch, and `u_k ∈ [0, 1)` is the `k`-th output of a PCG-64
///   stream (`rand_pcg::Pcg64::seed_from_u64(seed)`), its top 53 bits scaled by `2⁻⁵³`. Per epoch,
///   the epochs are counted from step 0, so an epoch that the warm-up cuts short keeps its own
///   draw for its remaining steps.
///
/// So `η_t` is a pure function of `(seed, t)`: a warm-up does not shift the draws that follow it,
/// and the [record](LrScheduler::to_record) only needs the step counter `t` (plus the seed, so a
/// record carries the whole stream). On [`load_record`](LrScheduler::load_record) the PCG stream is
/// re-seeded and jumped ahead in `O(log k)` (`Pcg64::advance`), so a resumed run draws exactly the
/// values an uninterrupted one would.
///
/// Unlike burn's cosine/linear/exponential schedulers, any positive bounds are accepted, including
/// `L_max > 1`. Use it through [`PlrsConfig::init`] with burn's `Learner` or a hand-written loop:
///
/// ```
/// use burn::lr_scheduler::LrScheduler;
/// use ember_optim::PlrsConfig;
///
/// // Where `CosineAnnealingLrSchedulerConfig::new(0.1, steps).init().unwrap()` went:
/// let scheduler = PlrsConfig::new(0.07, 0.1).with_seed(7).init().unwrap();
///
/// let mut bare = PlrsConfig::new(0.07, 0.1).with_seed(7).build()?;
/// let lr = bare.step();
/// assert!((0.07..=0.1).contains(&lr));
/// assert_eq!(PlrsConfig::new(0.1, 0.07).try_init().err().unwrap().field, "max_lr");
/// # Ok::<(), ember_optim::OptimConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Plrs {
    min_lr: f64,
    max_lr: f64,
    steps_per_epoch: Option<u64>,
    warmup_steps: u64,
    seed: u64,
    /// Number of `step()` calls so far: the only state a record needs.
    step: u64,
    /// The PCG stream, positioned before its `stream_position`-th output.
    stream: Pcg64,
    stream_position: u64,
    /// The last draw `(k, η)`, reused while the epoch index stays `k`.
    last_draw: Option<(u64, f64)>,
}

impl Plrs {
    /// The number of [`step`](LrScheduler::step) calls made so far (the `t` of the next call).
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// The seed of the random stream (the config's, or the one a loaded record carried).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// `L_min + (L_max − L_min) · u_k` for the `k`-th output `u_k` of the stream.
    fn draw(&mut self, k: u64) -> f64 {
        if let Some((last_k, lr)) = self.last_draw {
            if last_k == k {
                return lr;
            }
        }
        if self.stream_position != k {
            // Jump instead of replaying: after a load, or when per-epoch draws skip indices.
            self.stream = Pcg64::seed_from_u64(self.seed);
            self.stream.advance(u128::from(k));
        }
        let bits = self.stream.next_u64() >> 11;
        self.stream_position = k + 1;
        let unit = bits as f64 * (1.0 / (1u64 << 53) as f64);
        // `unit < 1`, but the product can still round up to `max_lr`; never past it.
        let lr = (self.min_lr + (self.max_lr - self.min_lr) * unit).min(self.max_lr);
        self.last_draw = Some((k, lr));
        lr
    }
}

impl LrScheduler for Plrs {
    fn step(&mut self) -> LearningRate {
        let t = self.step;
        self.step += 1;
        if t < self.warmup_steps {
            return self.min_lr
                + (self.max_lr - self.min_lr) * (t as f64 / self.warmup_steps as f64);
        }
        let k = match self.steps_per_epoch {
            None => t,
            Some(steps_per_epoch) => t / steps_per_epoch,
        };
        self.draw(k)
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
            .with_scalar(STEP_KEY, self.step)
            .with_scalar(SEED_KEY, self.seed)
    }

    /// Restores the step counter and the seed; a record without them leaves the scheduler as it
    /// was (burn's schedulers do the same).
    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(seed) = record.scalar::<u64>(SEED_KEY) {
            self.seed = seed;
        }
        if let Some(step) = record.scalar::<u64>(STEP_KEY) {
            self.step = step;
        }
        // Force the next draw to re-seed and jump to its index.
        self.stream = Pcg64::seed_from_u64(self.seed);
        self.stream_position = 0;
        self.last_draw = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plrs(min_lr: f64, max_lr: f64) -> PlrsConfig {
        PlrsConfig::new(min_lr, max_lr)
    }

    fn take(scheduler: &mut impl LrScheduler, n: usize) -> Vec<f64> {
        (0..n).map(|_| scheduler.step()).collect()
    }

    #[test]
    fn draws_stay_in_bounds_and_cover_them() {
        let (a, b) = (0.07, 0.1);
        let draws = take(&mut plrs(a, b).with_seed(3).build().unwrap(), 20_000);
        assert!(draws.iter().all(|&lr| (a..=b).contains(&lr)));
        // P(min > a + 1e-3·(b − a)) = (1 − 1e-3)^20000 ≈ 2e-9 for a uniform law: the draws must
        // reach both ends, which a wrong scaling (e.g. into [a, (a + b) / 2]) would not.
        let lo = draws.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = draws.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(lo < a + 1e-3 * (b - a), "min draw {lo}");
        assert!(hi > b - 1e-3 * (b - a), "max draw {hi}");
    }

    #[test]
    fn draws_follow_the_uniform_law() {
        // Bounds above 1, which burn's own schedulers reject.
        let (a, b) = (2.0_f64, 5.0_f64);
        let n = 20_000;
        let mut draws = take(&mut plrs(a, b).with_seed(11).build().unwrap(), n);
        let nf = n as f64;
        let mean = draws.iter().sum::<f64>() / nf;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0);

        // U[a, b]: mean (a + b)/2, variance (b − a)²/12, fourth central moment (b − a)⁴/80.
        // Standard error of the mean: (b − a)/√(12n) = 0.0061; of the sample variance:
        // √((μ₄ − σ⁴)/n) = (b − a)²/√(180n) = 0.0047. Five standard errors leave a correct sampler
        // a ~1e-6 chance of failing (for an unlucky seed) while catching any wrong scale or shift.
        let se_mean = (b - a) / (12.0 * nf).sqrt();
        let se_var = (b - a).powi(2) / (180.0 * nf).sqrt();
        assert!((mean - (a + b) / 2.0).abs() < 5.0 * se_mean, "mean {mean}");
        assert!(
            (var - (b - a).powi(2) / 12.0).abs() < 5.0 * se_var,
            "variance {var}"
        );

        // Kolmogorov–Smirnov: sup |F_n − F| < 1.95/√n is the 0.1 % critical value; this catches a
        // non-uniform shape with the right first two moments.
        draws.sort_by(f64::total_cmp);
        let ks = draws
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let f = (x - a) / (b - a);
                (f - i as f64 / nf)
                    .abs()
                    .max(((i + 1) as f64 / nf - f).abs())
            })
            .fold(0.0, f64::max);
        assert!(ks < 1.95 / nf.sqrt(), "KS statistic {ks}");
    }

    #[test]
    fn consecutive_draws_are_uncorrelated() {
        let (a, b) = (0.1, 0.2);
        let n = 20_000;
        let draws = take(&mut plrs(a, b).with_seed(5).build().unwrap(), n);
        let mean = (a + b) / 2.0;
        let var = (b - a) * (b - a) / 12.0;
        let lag1 = draws
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / ((n - 1) as f64 * var);
        // The lag-1 autocorrelation of an i.i.d. sequence has standard error ≈ 1/√n = 0.007.
        assert!(
            lag1.abs() < 5.0 / (n as f64).sqrt(),
            "lag-1 correlation {lag1}"
        );
    }

    #[test]
    fn same_seed_same_sequence_different_seed_different() {
        let first = take(&mut plrs(0.1, 0.2).with_seed(42).build().unwrap(), 100);
        let again = take(&mut plrs(0.1, 0.2).with_seed(42).build().unwrap(), 100);
        let other = take(&mut plrs(0.1, 0.2).with_seed(43).build().unwrap(), 100);
        assert_eq!(first, again);
        assert!(first.iter().zip(&other).all(|(x, y)| x != y));
    }

    #[test]
    fn record_mid_run_continues_the_same_sequence() {
        let config = plrs(0.35, 0.4).with_seed(7);
        let mut uninterrupted = config.build().unwrap();
        let expected = take(&mut uninterrupted, 200);

        let mut first_half = config.build().unwrap();
        assert_eq!(take(&mut first_half, 73), expected[..73]);
        // Through burnpack bytes, as a checkpoint would store it.
        let bytes = first_half.to_record().into_bytes().unwrap();
        let record = LrSchedulerRecord::from_bytes(bytes).unwrap();

        // The record carries the seed: a scheduler built with another one still resumes.
        let mut resumed = config.clone().with_seed(999).build().unwrap();
        resumed.load_record(record);
        assert_eq!(resumed.steps_taken(), 73);
        assert_eq!(resumed.seed(), 7);
        assert_eq!(take(&mut resumed, 127), expected[73..]);
    }

    #[test]
    fn record_round_trips_through_module_lr_scheduler() {
        let config = plrs(2.0, 5.0).with_seed(21).with_steps_per_epoch(Some(4));
        let mut uninterrupted = config.try_init().unwrap();
        let expected: Vec<f64> = (0..60).map(|_| uninterrupted.step().base()).collect();

        let mut first_half = ModuleLrScheduler::from(config.build().unwrap());
        let head: Vec<f64> = (0..23).map(|_| first_half.step().base()).collect();
        assert_eq!(head, expected[..23]);
        let bytes = first_half.to_record().into_bytes().unwrap();
        let record = LrSchedulerRecord::from_bytes(bytes).unwrap();

        let mut resumed = config.try_init().unwrap().load_record(record);
        let tail: Vec<f64> = (23..60).map(|_| resumed.step().base()).collect();
        assert_eq!(tail, expected[23..]);
    }

    #[test]
    fn per_epoch_mode_is_constant_inside_an_epoch() {
        let steps_per_epoch = 5;
        let mut scheduler = plrs(0.1, 0.2)
            .with_steps_per_epoch(Some(steps_per_epoch))
            .with_seed(1)
            .build()
            .unwrap();
        let lrs = take(&mut scheduler, 8 * steps_per_epoch);
        let epochs: Vec<&[f64]> = lrs.chunks(steps_per_epoch).collect();
        for epoch in &epochs {
            assert!(epoch.iter().all(|&lr| lr == epoch[0]), "{epoch:?}");
        }
        for pair in epochs.windows(2) {
            assert_ne!(pair[0][0], pair[1][0]);
        }
        // Epoch e uses the stream's e-th draw: the per-step scheduler's η_e.
        let per_step = take(&mut plrs(0.1, 0.2).with_seed(1).build().unwrap(), 8);
        let firsts: Vec<f64> = epochs.iter().map(|epoch| epoch[0]).collect();
        assert_eq!(firsts, per_step);
    }

    #[test]
    fn warmup_is_linear_then_random() {
        let (a, b) = (0.1, 0.5);
        let mut scheduler = plrs(a, b)
            .with_warmup_steps(4)
            .with_seed(9)
            .build()
            .unwrap();
        let lrs = take(&mut scheduler, 50);
        // η_t = a + (b − a)·t/4 for t < 4.
        for (lr, expected) in lrs.iter().zip([0.1, 0.2, 0.3, 0.4]) {
            assert!((lr - expected).abs() < 1e-12, "{lr} vs {expected}");
        }
        // Afterwards the draws are the ones the seed gives without a warm-up, at the same t.
        let no_warmup = take(&mut plrs(a, b).with_seed(9).build().unwrap(), 50);
        assert_eq!(lrs[4..], no_warmup[4..]);
        assert!(lrs[4..].iter().all(|&lr| (a..=b).contains(&lr)));
    }

    #[test]
    fn warmup_with_per_epoch_keeps_epochs_aligned_to_step_zero() {
        let mut scheduler = plrs(1.0, 3.0)
            .with_warmup_steps(7)
            .with_steps_per_epoch(Some(5))
            .with_seed(2)
            .build()
            .unwrap();
        let lrs = take(&mut scheduler, 20);
        for (t, lr) in lrs.iter().enumerate().take(7) {
            assert!((lr - (1.0 + 2.0 * t as f64 / 7.0)).abs() < 1e-12);
        }
        // Steps 7..10 finish epoch 1, 10..15 are epoch 2, 15..20 epoch 3.
        assert!(lrs[7..10].iter().all(|&lr| lr == lrs[7]));
        assert!(lrs[10..15].iter().all(|&lr| lr == lrs[10]));
        assert!(lrs[15..20].iter().all(|&lr| lr == lrs[15]));
        assert_ne!(lrs[7], lrs[10]);
        assert_ne!(lrs[10], lrs[15]);
    }

    #[test]
    fn equal_bounds_give_a_constant() {
        let lrs = take(&mut plrs(0.3, 0.3).build().unwrap(), 10);
        assert!(lrs.iter().all(|&lr| lr == 0.3));
    }

    #[test]
    fn bad_configs_are_rejected_naming_the_field() {
        let field = |config: PlrsConfig| config.build().unwrap_err().field;
        assert_eq!(field(plrs(0.0, 0.1)), "min_lr");
        assert_eq!(field(plrs(-0.1, 0.1)), "min_lr");
        assert_eq!(field(plrs(f64::NAN, 0.1)), "min_lr");
        assert_eq!(field(plrs(0.1, f64::INFINITY)), "max_lr");
        assert_eq!(field(plrs(0.2, 0.1)), "max_lr");
        assert_eq!(
            field(plrs(0.1, 0.2).with_steps_per_epoch(Some(0))),
            "steps_per_epoch"
        );
        let message = plrs(0.2, 0.1).build().unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid optimizer config field `max_lr`: PlrsConfig.max_lr = 0.1: expected a number >= min_lr"
        );
        assert!(plrs(2.0, 5.0).build().is_ok());
    }
}
