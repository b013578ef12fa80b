//! RF-RMSProp: root-free RMSProp (Lin, Dangel, Eschenhagen, Bae, Turner, Makhzani, ICML 2024).

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::field_check::FieldCheck;
use crate::transform::{
    in_dtype, AddedWeightDecay, BatchSizeHandle, CurvatureAccumulation, HeavyBallMomentum,
    RootFreeCurvature,
};
use crate::OptimConfigError;
use crate::RecordState;

/// Configuration of [`RfRmsProp`]. The learning rate β1 is not here: burn passes it to each step
/// (unvalidated); start around 1e-2 with momentum 0.9 (see the crate README's table).
///
/// ```
/// use burn::optim::ModuleOptimizer;
/// use ember_optim::RfRmsPropConfig;
///
/// // Where `AdamConfig::new().init()` went, with the batch size B:
/// let optim: ModuleOptimizer = RfRmsPropConfig::new(128).init();
///
/// // The typed error instead of a panic:
/// let err = RfRmsPropConfig::new(128).with_beta2(1.5).try_init().err().unwrap();
/// assert_eq!(err.field, "beta2");
///
/// // A batch size the training loop sets before every step, starting at 128:
/// let (optim, batch_size) = RfRmsPropConfig::new(128).init_with_batch_size_handle();
/// batch_size.set(100)?; // e.g. the last, partial batch of an epoch
/// # Ok::<(), ember_optim::OptimConfigError>(())
/// ```
#[derive(Config, Debug)]
pub struct RfRmsPropConfig {
    /// β2, the preconditioner step: `s ← (1 − β2)·s + β2·B·g⊙g`. It plays the role of AdamW's
    /// `1 − beta_2`; the paper's tuned runs used 1e-3 to 3e-2. Must lie in (0, 1].
    #[config(default = 1e-2)]
    pub beta2: f64,
    /// λ, the damping added to the curvature outside any root: `d = g / (s + λ)`. The paper uses
    /// 1e-6 to 5e-4, much larger than Adam's epsilon. Must be ≥ 0.
    #[config(default = 1e-5)]
    pub damping: f64,
    /// α1, heavy-ball momentum on the preconditioned direction, `buf ← α1·buf + d` (no `1 − α1`
    /// factor). The paper's runs used 0 to 0.96. Must lie in [0, 1).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// κ, weight decay added after preconditioning: `d ← d + κ·θ` (not divided by `s + λ`).
    /// Must be ≥ 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// s0, the curvature before the first step (RMSProp would use 0). Must be > 0.
    #[config(default = 1.0)]
    pub init_curvature: f64,
    /// B, the number of examples the loss averages over; scales `g⊙g` to `B·g⊙g`. Fixed for every
    /// step, or the starting value of a [`BatchSizeHandle`] the training loop sets per batch
    /// (see [`init_with_batch_size_handle`](Self::init_with_batch_size_handle)). Must be ≥ 1.
    pub batch_size: usize,
    /// Per-parameter gradient clipping, applied by the `init` methods only.
    pub grad_clipping: Option<GradientClippingConfig>,
}

/// Root-free RMSProp, per parameter tensor:
///
/// ```text
/// s   ← (1 − β2)·s + β2·B·(g ⊙ g)        s starts at s0 = init_curvature
/// d   ← g / (s + λ)                      no square root
/// d   ← d + κ·θ
/// buf ← α1·buf + d                       no (1 − α1)
/// θ   ← θ − β1·buf                       β1 = the learning rate burn passes
/// ```
///
/// From Lin, Dangel, Eschenhagen, Bae, Turner, Makhzani, *Can We Remove the Square-Root in
/// Adaptive Gradient Methods? A Second-Order Perspective*, ICML 2024 (arXiv:2402.03496). Dropping
/// the root makes `1/(s + λ)` an inverse curvature (a Newton-like step) rather than a
/// normaliser; the paper reports that this closes the generalisation gap between adaptive methods
/// and SGD on CNNs while keeping parity with AdamW on transformers.
///
/// Choices where the authors' prototype (`myoptim/rfrmsprop.py`) and the paper differ:
/// * the stored `s` is batch-scaled as it accumulates (the prototype stores the unscaled average
///   and multiplies by the current B), so the two agree for a constant B; see
///   [`RootFreeCurvature`];
/// * no bias correction, as in the paper.
///
/// B comes from the config or a shared [`BatchSizeHandle`] ([`batch_size`](Self::batch_size)).
/// The learning rate is whatever burn passes; it is not validated. Built from
/// [`RootFreeCurvature`], [`AddedWeightDecay`] and [`HeavyBallMomentum`]; all state stays in the
/// parameter's dtype.
#[derive(Clone, Debug)]
pub struct RfRmsProp {
    curvature: RootFreeCurvature,
    weight_decay: AddedWeightDecay,
    momentum: HeavyBallMomentum,
    batch_size: BatchSizeHandle,
}

/// State of one parameter tensor for the diagonal root-free methods ([`RfRmsProp`],
/// [`RfAdaGrad`](crate::RfAdaGrad), [`RfAdamW`](crate::RfAdamW)): one layout for the family.
#[derive(RecordState, Clone)]
pub struct RootFreeDiagonalState<const D: usize> {
    /// Number of steps taken so far (RF-AdamW's bias correction uses it).
    pub time: usize,
    /// s, the diagonal curvature estimate (batch-scaled).
    pub curvature: Tensor<D>,
    /// The momentum buffer: heavy-ball `buf` for RF-RMSProp/RF-AdaGrad (absent when α1 = 0), the
    /// first moment `m` for RF-AdamW.
    pub momentum: Option<Tensor<D>>,
}

impl<const D: usize> RootFreeDiagonalState<D> {
    /// Move the state to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            time: self.time,
            curvature: self.curvature.to_device(device),
            momentum: self.momentum.map(|m| m.to_device(device)),
        }
    }

    /// The state's tensors in the parameter's dtype (a reloaded state comes back in f32).
    pub(crate) fn in_dtype(self, dtype: burn::tensor::DType) -> Self {
        Self {
            time: self.time,
            curvature: in_dtype(self.curvature, dtype),
            momentum: self.momentum.map(|m| in_dtype(m, dtype)),
        }
    }
}

impl RfRmsProp {
    /// The handle B is read from at every step; set it before stepping when B varies.
    pub fn batch_size(&self) -> &BatchSizeHandle {
        &self.batch_size
    }
}

impl Optimizer for RfRmsProp {
    type State<const D: usize> = RootFreeDiagonalState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let batch_size = self.batch_size.get();
        let (time, curvature, buffer) = match state {
            Some(state) => {
                let state = state.in_dtype(tensor.dtype());
                (state.time, Some(state.curvature), state.momentum)
            }
            None => (0, None, None),
        };

        let (direction, curvature) = self.curvature.transform(grad, batch_size, curvature);
        let direction = self.weight_decay.transform(direction, tensor.clone());
        let (direction, buffer) = self.momentum.transform(direction, buffer);

        let state = RootFreeDiagonalState {
            time: time + 1,
            curvature,
            momentum: buffer,
        };
        (tensor - direction.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

/// The knobs RF-RMSProp and RF-AdaGrad share, validated once for both.
pub(crate) struct RootFreeDiagonalKnobs {
    pub(crate) config: &'static str,
    pub(crate) accumulation: CurvatureAccumulation,
    pub(crate) beta2: f64,
    pub(crate) damping: f64,
    pub(crate) momentum: f64,
    pub(crate) weight_decay: f64,
    pub(crate) init_curvature: f64,
    pub(crate) batch_size: usize,
}

impl RootFreeDiagonalKnobs {
    /// Checks every knob, naming the first one out of range (and the config it came from).
    pub(crate) fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new(self.config);
        match self.accumulation {
            // A moving average needs β2 ≤ 1 to stay a convex combination of s and B·g⊙g.
            CurvatureAccumulation::MovingAverage => check.step_fraction("beta2", self.beta2)?,
            CurvatureAccumulation::Sum => check.positive("beta2", self.beta2)?,
        }
        check.non_negative("damping", self.damping)?;
        check.decay("momentum", self.momentum)?;
        check.non_negative("weight_decay", self.weight_decay)?;
        check.positive("init_curvature", self.init_curvature)?;
        check.at_least_one("batch_size", self.batch_size)
    }

    /// The optimizer from knobs that passed [`validate`](Self::validate) (the configs' `build` runs it
    /// first).
    pub(crate) fn build(self) -> RfRmsProp {
        RfRmsProp {
            curvature: RootFreeCurvature {
                beta2: self.beta2,
                damping: self.damping,
                init_curvature: self.init_curvature,
                accumulation: self.accumulation,
            },
            weight_decay: AddedWeightDecay {
                weight_decay: self.weight_decay,
            },
            momentum: HeavyBallMomentum {
                momentum: self.momentum,
            },
            batch_size: BatchSizeHandle::starting_at(self.batch_size),
        }
    }
}

impl RfRmsPropConfig {
    fn knobs(&self) -> RootFreeDiagonalKnobs {
        RootFreeDiagonalKnobs {
            config: "RfRmsPropConfig",
            accumulation: CurvatureAccumulation::MovingAverage,
            beta2: self.beta2,
            damping: self.damping,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            init_curvature: self.init_curvature,
            batch_size: self.batch_size,
        }
    }

    /// Checks every field, naming the first one out of range; [`build`](Self::build) and the
    /// `init` methods run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        self.knobs().validate()
    }

    /// The bare optimizer, for
    /// [`ModuleOptimizer::with_group`](burn::optim::ModuleOptimizer::with_group); it reads B from
    /// its [`batch_size`](RfRmsProp::batch_size) handle, which starts at the config's `batch_size`.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range (see
    /// [`validate`](Self::validate)).
    pub fn build(&self) -> Result<RfRmsProp, OptimConfigError> {
        self.validate()?;
        Ok(self.knobs().build())
    }

    crate::assemble::module_optimizer_init!(batch_size);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_util::{
        assert_close, assert_decreases_least_squares, assert_half_precision_tracks_f32,
        assert_resume, tensor, values,
    };
    use burn::tensor::FloatDType;

    const THETA: [f32; 6] = [0.5, -1.0, 2.0, 0.0, 1.5, -0.25];
    const GRADS: [[f32; 6]; 3] = [
        [0.1, -0.2, 0.3, 0.05, -0.4, 0.25],
        [0.3, 0.1, -0.2, 0.0, 0.2, -0.1],
        [-0.2, 0.4, 0.1, 0.3, -0.1, 0.2],
    ];

    /// RF-RMSProp (`sum = false`) or RF-AdaGrad (`sum = true`) with plain f64 loops.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reference(
        sum: bool,
        lrs: &[f64],
        batch_sizes: &[usize],
        beta2: f64,
        damping: f64,
        momentum: f64,
        weight_decay: f64,
        s0: f64,
        steps: usize,
    ) -> Vec<f64> {
        let mut theta: Vec<f64> = THETA.iter().map(|&x| x as f64).collect();
        let mut s = [s0; 6];
        let mut buf = [0.0; 6];
        for t in 0..steps {
            for i in 0..6 {
                let g = GRADS[t][i] as f64;
                let b = batch_sizes[t] as f64;
                s[i] = if sum {
                    s[i] + beta2 * b * g * g
                } else {
                    (1.0 - beta2) * s[i] + beta2 * b * g * g
                };
                let d = g / (s[i] + damping) + weight_decay * theta[i];
                buf[i] = momentum * buf[i] + d;
                theta[i] -= lrs[t] * buf[i];
            }
        }
        theta
    }

    /// Step `optim` through the first `steps` gradients, setting B from `batch_sizes`.
    pub(crate) fn run<O: Optimizer>(
        optim: &O,
        handle: &BatchSizeHandle,
        lrs: &[f64],
        batch_sizes: &[usize],
        steps: usize,
    ) -> Vec<f32> {
        let mut theta = tensor::<2>(&THETA, [2, 3]);
        let mut state = None;
        for t in 0..steps {
            handle.set(batch_sizes[t]).unwrap();
            let grad = tensor::<2>(&GRADS[t], [2, 3]);
            let (next, next_state) = optim.step(lrs[t], theta, grad, state);
            theta = next;
            state = next_state;
        }
        values(theta)
    }

    fn config() -> RfRmsPropConfig {
        RfRmsPropConfig::new(8)
            .with_beta2(0.2)
            .with_damping(0.05)
            .with_momentum(0.7)
            .with_weight_decay(0.03)
            .with_init_curvature(0.8)
    }

    #[test]
    fn one_step_matches_reference() {
        let optim = config().build().unwrap();
        let handle = optim.batch_size().clone();
        let actual = run(&optim, &handle, &[0.1], &[8], 1);
        let expected = reference(false, &[0.1], &[8], 0.2, 0.05, 0.7, 0.03, 0.8, 1);
        assert_close(&actual, &expected, 1e-5);
    }

    #[test]
    fn three_steps_with_changing_batch_size_match_reference() {
        let optim = config().build().unwrap();
        let handle = optim.batch_size().clone();
        let (lrs, bs) = ([0.1, 0.05, 0.2], [8, 4, 16]);
        let actual = run(&optim, &handle, &lrs, &bs, 3);
        let expected = reference(false, &lrs, &bs, 0.2, 0.05, 0.7, 0.03, 0.8, 3);
        assert_close(&actual, &expected, 1e-5);
    }

    #[test]
    fn three_steps_without_momentum_or_decay_match_reference() {
        let config = RfRmsPropConfig::new(32)
            .with_momentum(0.0)
            .with_damping(0.0);
        let optim = config.build().unwrap();
        let (lrs, bs) = ([0.01; 3], [32; 3]);
        let actual = run(&optim, optim.batch_size(), &lrs, &bs, 3);
        let expected = reference(false, &lrs, &bs, 1e-2, 0.0, 0.0, 0.0, 1.0, 3);
        assert_close(&actual, &expected, 1e-5);
    }

    #[test]
    fn config_batch_size_seeds_the_handle() {
        let optim = RfRmsPropConfig::new(64).build().unwrap();
        assert_eq!(optim.batch_size().get(), 64);
        let (_, handle) = RfRmsPropConfig::new(3).init_with_batch_size_handle();
        assert_eq!(handle.get(), 3);
    }

    #[test]
    fn a_fixed_batch_size_is_used_at_every_step() {
        // Built with B = 8 and never told otherwise: the reference with B = 8 at all three steps.
        let optim = config().build().unwrap();
        let mut theta = tensor::<2>(&THETA, [2, 3]);
        let mut state = None;
        for grad in &GRADS {
            let (next, next_state) = optim.step(0.1, theta, tensor::<2>(grad, [2, 3]), state);
            (theta, state) = (next, next_state);
        }
        let expected = reference(false, &[0.1; 3], &[8; 3], 0.2, 0.05, 0.7, 0.03, 0.8, 3);
        assert_close(&values(theta), &expected, 1e-5);
    }

    #[test]
    #[should_panic(expected = "RfRmsPropConfig.beta2 = 1.5: expected a number in (0, 1]")]
    fn init_on_an_invalid_config_panics_with_the_typed_message() {
        let _ = RfRmsPropConfig::new(8).with_beta2(1.5).init();
    }

    #[test]
    fn validation_names_the_field() {
        let field = |c: RfRmsPropConfig| c.try_init().err().unwrap().field;
        let new = || RfRmsPropConfig::new(16);
        assert_eq!(field(new().with_beta2(0.0)), "beta2");
        assert_eq!(field(new().with_beta2(1.5)), "beta2");
        assert_eq!(field(new().with_damping(-1.0)), "damping");
        assert_eq!(field(new().with_momentum(1.0)), "momentum");
        assert_eq!(field(new().with_weight_decay(f64::NAN)), "weight_decay");
        assert_eq!(field(new().with_init_curvature(0.0)), "init_curvature");
        let err = RfRmsPropConfig::new(0).try_init().err().unwrap();
        assert_eq!(err.field, "batch_size");
        assert!(err.to_string().contains("RfRmsPropConfig.batch_size = 0"));
        assert!(new().with_beta2(1.0).try_init().is_ok());
    }

    #[test]
    fn save_load_resumes_identically() {
        assert_resume(|| RfRmsPropConfig::new(2).with_weight_decay(0.01).init());
    }

    #[test]
    fn half_precision_parameters_keep_their_dtype() {
        let optim = config().build().unwrap();
        assert_half_precision_tracks_f32(&optim, FloatDType::F16, 1e-2);
        assert_half_precision_tracks_f32(&optim, FloatDType::BF16, 3e-2);
    }

    #[test]
    fn decreases_least_squares_loss() {
        assert_decreases_least_squares(|| RfRmsPropConfig::new(16).init(), 0.05);
    }
}
