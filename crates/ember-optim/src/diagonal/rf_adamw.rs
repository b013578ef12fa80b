//! RF-AdamW: root-free AdamW (Lin et al., ICML 2024).

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::rf_rmsprop::RootFreeDiagonalState;
use crate::field_check::FieldCheck;
use crate::transform::{
    BatchSizeHandle, CurvatureAccumulation, DecoupledWeightDecay, ExponentialMovingAverage,
    RootFreeCurvature,
};
use crate::OptimConfigError;

/// Configuration of [`RfAdamW`]. The learning rate is not here: burn passes it to each step
/// (unvalidated).
///
/// ```
/// use ember_optim::RfAdamWConfig;
///
/// // Where `AdamWConfig::new().init()` went; B = 64 examples per batch.
/// let optim = RfAdamWConfig::new(64).with_weight_decay(0.05).init();
/// let err = RfAdamWConfig::new(64).with_beta1(1.0).try_init().err().unwrap();
/// assert_eq!(err.field, "beta1");
/// ```
#[derive(Config, Debug)]
pub struct RfAdamWConfig {
    /// b1, the decay of the first moment `m ← b1·m + (1 − b1)·g` (AdamW's `beta_1`; not the
    /// paper's β1, which is the learning rate). Must lie in [0, 1).
    #[config(default = 0.9)]
    pub beta1: f64,
    /// β2, the preconditioner step `s ← (1 − β2)·s + β2·B·g⊙g`: AdamW's `beta_2 = 0.999`
    /// corresponds to β2 = 1e-3. Must lie in (0, 1].
    #[config(default = 1e-3)]
    pub beta2: f64,
    /// λ, the damping added to the curvature outside any root: `m / (s + λ)`. Must be ≥ 0.
    #[config(default = 1e-5)]
    pub damping: f64,
    /// κ, decoupled weight decay `θ ← θ·(1 − lr·κ)` (PyTorch's AdamW default 1e-2). Must be ≥ 0.
    #[config(default = 1e-2)]
    pub weight_decay: f64,
    /// s0, the curvature before the first step. Must be > 0.
    #[config(default = 1.0)]
    pub init_curvature: f64,
    /// Divide `m` by `1 − b1^t` and `s` by `1 − (1 − β2)^t`, as the authors' prototype does when
    /// asked; off by default, as in the paper.
    #[config(default = false)]
    pub bias_correction: bool,
    /// B, the number of examples the loss averages over (see
    /// [`RfRmsPropConfig::batch_size`](crate::RfRmsPropConfig)). Must be ≥ 1.
    pub batch_size: usize,
    /// Per-parameter gradient clipping, applied by the `init` methods only.
    pub grad_clipping: Option<GradientClippingConfig>,
}

/// Root-free AdamW, per parameter tensor:
///
/// ```text
/// m ← b1·m + (1 − b1)·g                  m starts at 0
/// s ← (1 − β2)·s + β2·B·(g ⊙ g)          s starts at s0 = init_curvature
/// θ ← θ·(1 − lr·κ) − lr·m / (s + λ)      no square root
/// ```
///
/// From Lin, Dangel, Eschenhagen, Bae, Turner, Makhzani, *Can We Remove the Square-Root in
/// Adaptive Gradient Methods? A Second-Order Perspective*, ICML 2024, where it is the root-free
/// counterpart of AdamW used on transformers.
///
/// With `bias_correction` on, the step uses `m / (1 − b1^t)` and `s / (1 − (1 − β2)^t)`, exactly
/// as the authors' prototype (`myoptim/rfadamw.py`) does: note that this also divides the initial
/// `s0` term, so early steps are smaller than without it. Like [`RfRmsProp`](crate::RfRmsProp), the
/// stored `s` is batch-scaled as it accumulates (the prototype multiplies the whole average by the
/// current B; the two agree for constant B). Built from [`ExponentialMovingAverage`],
/// [`RootFreeCurvature`] and [`DecoupledWeightDecay`]; shares [`RootFreeDiagonalState`] (the first
/// moment is its `momentum`).
#[derive(Clone, Debug)]
pub struct RfAdamW {
    first_moment: ExponentialMovingAverage,
    curvature: RootFreeCurvature,
    weight_decay: DecoupledWeightDecay,
    bias_correction: bool,
    batch_size: BatchSizeHandle,
}

impl RfAdamW {
    /// The handle B is read from at every step; set it before stepping when B varies.
    pub fn batch_size(&self) -> &BatchSizeHandle {
        &self.batch_size
    }
}

impl Optimizer for RfAdamW {
    type State<const D: usize> = RootFreeDiagonalState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let batch_size = self.batch_size.get();
        let (time, curvature, first_moment) = match state {
            Some(state) => {
                let state = state.in_dtype(tensor.dtype());
                (state.time, Some(state.curvature), state.momentum)
            }
            None => (0, None, None),
        };
        let time = time + 1;

        let tensor = self.weight_decay.transform(tensor, lr);
        let curvature = self.curvature.update(&grad, batch_size, curvature);
        let first_moment = self.first_moment.update(grad, first_moment);

        let direction = if self.bias_correction {
            let keep_m = self.first_moment.decay.powi(time as i32);
            let keep_s = (1.0 - self.curvature.beta2).powi(time as i32);
            self.curvature.precondition(
                first_moment.clone().div_scalar(1.0 - keep_m),
                curvature.clone().div_scalar(1.0 - keep_s),
            )
        } else {
            self.curvature
                .precondition(first_moment.clone(), curvature.clone())
        };

        let state = RootFreeDiagonalState {
            time,
            curvature,
            momentum: Some(first_moment),
        };
        (tensor - direction.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

impl RfAdamWConfig {
    /// Checks every field, naming the first one out of range; [`build`](Self::build) and the
    /// `init` methods run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("RfAdamWConfig");
        check.decay("beta1", self.beta1)?;
        check.step_fraction("beta2", self.beta2)?;
        check.non_negative("damping", self.damping)?;
        check.non_negative("weight_decay", self.weight_decay)?;
        check.positive("init_curvature", self.init_curvature)?;
        check.at_least_one("batch_size", self.batch_size)
    }

    /// The bare optimizer, for
    /// [`ModuleOptimizer::with_group`](burn::optim::ModuleOptimizer::with_group); it reads B from
    /// its [`batch_size`](RfAdamW::batch_size) handle, which starts at the config's `batch_size`.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range (see
    /// [`validate`](Self::validate)).
    pub fn build(&self) -> Result<RfAdamW, OptimConfigError> {
        self.validate()?;
        let batch_size = BatchSizeHandle::starting_at(self.batch_size);
        Ok(RfAdamW {
            first_moment: ExponentialMovingAverage { decay: self.beta1 },
            curvature: RootFreeCurvature {
                beta2: self.beta2,
                damping: self.damping,
                init_curvature: self.init_curvature,
                accumulation: CurvatureAccumulation::MovingAverage,
            },
            weight_decay: DecoupledWeightDecay {
                weight_decay: self.weight_decay,
            },
            bias_correction: self.bias_correction,
            batch_size,
        })
    }

    crate::assemble::module_optimizer_init!(batch_size);
}

#[cfg(test)]
mod tests {
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

    struct Knobs {
        b1: f64,
        beta2: f64,
        damping: f64,
        kappa: f64,
        s0: f64,
        bias_correction: bool,
    }

    fn reference(k: &Knobs, lrs: &[f64], batch_sizes: &[usize], steps: usize) -> Vec<f64> {
        let mut theta: Vec<f64> = THETA.iter().map(|&x| x as f64).collect();
        let mut m = [0.0; 6];
        let mut s = [k.s0; 6];
        for t in 0..steps {
            let (bc1, bc2) = if k.bias_correction {
                let n = (t + 1) as i32;
                (1.0 - k.b1.powi(n), 1.0 - (1.0 - k.beta2).powi(n))
            } else {
                (1.0, 1.0)
            };
            for i in 0..6 {
                let g = GRADS[t][i] as f64;
                m[i] = k.b1 * m[i] + (1.0 - k.b1) * g;
                s[i] = (1.0 - k.beta2) * s[i] + k.beta2 * batch_sizes[t] as f64 * g * g;
                theta[i] = theta[i] * (1.0 - lrs[t] * k.kappa)
                    - lrs[t] * (m[i] / bc1) / (s[i] / bc2 + k.damping);
            }
        }
        theta
    }

    fn check(k: Knobs, lrs: &[f64], batch_sizes: &[usize], steps: usize) {
        let optim = RfAdamWConfig::new(1)
            .with_beta1(k.b1)
            .with_beta2(k.beta2)
            .with_damping(k.damping)
            .with_weight_decay(k.kappa)
            .with_init_curvature(k.s0)
            .with_bias_correction(k.bias_correction)
            .build()
            .unwrap();
        let handle = optim.batch_size().clone();
        let mut theta = tensor::<2>(&THETA, [2, 3]);
        let mut state = None;
        for t in 0..steps {
            handle.set(batch_sizes[t]).unwrap();
            let (next, next_state) =
                optim.step(lrs[t], theta, tensor::<2>(&GRADS[t], [2, 3]), state);
            theta = next;
            state = next_state;
        }
        assert_close(
            &values(theta),
            &reference(&k, lrs, batch_sizes, steps),
            1e-5,
        );
    }

    fn knobs(bias_correction: bool) -> Knobs {
        Knobs {
            b1: 0.8,
            beta2: 0.3,
            damping: 0.01,
            kappa: 0.1,
            s0: 0.5,
            bias_correction,
        }
    }

    #[test]
    fn one_step_matches_reference() {
        check(knobs(false), &[0.1], &[6], 1);
    }

    #[test]
    fn three_steps_match_reference() {
        check(knobs(false), &[0.1, 0.2, 0.05], &[6, 3, 12], 3);
    }

    #[test]
    fn three_steps_with_bias_correction_match_reference() {
        check(knobs(true), &[0.1, 0.2, 0.05], &[6, 3, 12], 3);
    }

    #[test]
    fn validation_names_the_field() {
        let field = |c: RfAdamWConfig| c.try_init().err().unwrap().field;
        let new = || RfAdamWConfig::new(8);
        assert_eq!(field(new().with_beta1(1.0)), "beta1");
        assert_eq!(field(new().with_beta2(0.0)), "beta2");
        assert_eq!(field(new().with_damping(-1e-3)), "damping");
        assert_eq!(field(new().with_weight_decay(-1.0)), "weight_decay");
        assert_eq!(
            field(new().with_init_curvature(f64::INFINITY)),
            "init_curvature"
        );
        assert_eq!(field(RfAdamWConfig::new(0)), "batch_size");
    }

    #[test]
    fn save_load_resumes_identically() {
        assert_resume(|| RfAdamWConfig::new(2).with_bias_correction(true).init());
    }

    #[test]
    fn half_precision_parameters_keep_their_dtype() {
        let optim = RfAdamWConfig::new(8)
            .with_bias_correction(true)
            .build()
            .unwrap();
        assert_half_precision_tracks_f32(&optim, FloatDType::F16, 1e-2);
        assert_half_precision_tracks_f32(&optim, FloatDType::BF16, 3e-2);
    }

    #[test]
    fn decreases_least_squares_loss() {
        assert_decreases_least_squares(
            || RfAdamWConfig::new(16).with_weight_decay(0.0).init(),
            0.5,
        );
    }
}
