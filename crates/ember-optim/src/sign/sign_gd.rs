//! SignGD: `θ ← θ − η·sign(g)`.

use burn::config::Config;
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

use super::SignDescent;
use crate::assemble::{into_module_optimizer, or_fail};
use crate::field_check::FieldCheck;
use crate::transform::DecoupledWeightDecay;
use crate::OptimConfigError;

/// Configuration of [`SignGd`]. The learning rate η is not here: burn passes it to each step.
///
/// There is no gradient clipping option: value clipping and per-tensor norm clipping never change
/// the sign of a gradient entry, so they cannot change a SignGD step.
///
/// ```
/// use ember_optim::SignGdConfig;
///
/// let optim = SignGdConfig::new().with_weight_decay(1e-4).init();
/// let err = SignGdConfig::new().with_weight_decay(-1.0).try_init().err().unwrap();
/// assert_eq!(err.field, "weight_decay");
/// ```
#[derive(Config, Debug)]
pub struct SignGdConfig {
    /// λ, decoupled weight decay `θ ← θ·(1 − η·λ)` applied before the sign step (`0`: none, the
    /// papers' SignGD). Must be ≥ 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
}

/// Sign gradient descent, per parameter tensor:
///
/// ```text
/// θ ← θ·(1 − η·λ)      decoupled weight decay, first (skipped when λ = 0)
/// θ ← θ − η·sign(g)    element-wise, sign(0) = 0: an entry with a zero gradient does not move
/// ```
///
/// signSGD is from Bernstein, Wang, Azizzadenesheli, Anandkumar, *signSGD: Compressed
/// Optimisation for Non-Convex Problems*, ICML 2018
/// ([arXiv:1802.04434](https://arxiv.org/abs/1802.04434)). Li, Huang, Han, Zhou, Suzuki, Zhu,
/// Chen, *On the Optimization and Generalization of Two-layer Transformers with Sign Gradient
/// Descent*, ICLR 2025 ([arXiv:2410.04870](https://arxiv.org/abs/2410.04870)) use full-batch
/// SignGD as a tractable surrogate for Adam: the training loss falls at a linear rate, but the
/// attention memorises the noise and generalises poorly on noisy data.
///
/// Built from [`SignDescent`] alone. SignGD keeps no state (`State = ()`), so the record of its
/// [`ModuleOptimizer`] is empty.
#[derive(Clone, Debug)]
pub struct SignGd {
    descent: SignDescent,
}

impl SignGdConfig {
    /// Checks every field, naming the first one out of range; [`build`](Self::build) and
    /// [`init`](Self::init) run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        FieldCheck::new("SignGdConfig").non_negative("weight_decay", self.weight_decay)
    }

    /// Build the bare [`SignGd`], which
    /// [`ModuleOptimizer::with_group`](burn::optim::ModuleOptimizer::with_group) takes to optimize
    /// one parameter group; [`init`](Self::init) is the whole-module counterpart.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] on `weight_decay` when it is negative or not finite (see
    /// [`validate`](Self::validate)).
    pub fn build(&self) -> Result<SignGd, OptimConfigError> {
        self.validate()?;
        Ok(SignGd {
            descent: SignDescent {
                weight_decay: DecoupledWeightDecay {
                    weight_decay: self.weight_decay,
                },
            },
        })
    }

    // Written out rather than `module_optimizer_init!()`: the config has no `grad_clipping` field
    // (clipping cannot change a sign step), so the pair is the macro's without the clipping.

    /// The whole-module optimizer (without gradient clipping, which cannot change a sign step):
    /// the drop-in for `AdamConfig::new().init()`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with [`try_init`](Self::try_init)'s message naming the field.
    pub fn init(&self) -> ModuleOptimizer {
        or_fail(self.try_init())
    }

    /// [`init`](Self::init), returning the error naming the bad field instead of panicking.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn try_init(&self) -> Result<ModuleOptimizer, OptimConfigError> {
        Ok(into_module_optimizer(self.build()?, None))
    }
}

impl Optimizer for SignGd {
    type State<const D: usize> = ();

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        _state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        (self.descent.apply(lr, tensor, grad), None)
    }

    fn to_device<const D: usize>(state: Self::State<D>, _device: &Device) -> Self::State<D> {
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::assert_resume_against_opposed_gradient;
    use crate::test_util::{assert_close, assert_decreases_least_squares, tensor, values};

    #[test]
    fn one_step_moves_by_lr_along_minus_sign_and_zero_gradient_stays() {
        let optim = SignGdConfig::new().build().unwrap();
        let param = tensor::<1>(&[1.0, -2.0, 3.0, 0.5], [4]);
        // A tiny gradient moves as far as a large one; a zero gradient does not move.
        let grad = tensor::<1>(&[0.3, -4.0, 0.0, -1e-8], [4]);
        let (param, state) = optim.step(0.1, param, grad, None);
        assert_close(&values(param), &[0.9, -1.9, 3.0, 0.6], 1e-6);
        assert!(state.is_none());
    }

    #[test]
    fn three_steps_match_hand_computation() {
        let optim = SignGdConfig::new().build().unwrap();
        let mut param = tensor::<2>(&[0.0, 1.0, -1.0, 2.0], [2, 2]);
        let grads: [[f32; 4]; 3] = [
            [1.0, -1.0, 0.0, 5.0],
            [-2.0, -0.5, 0.0, 0.1],
            [3.0, 0.0, -7.0, 0.2],
        ];
        for (grad, lr) in grads.iter().zip([0.5, 0.25, 0.125]) {
            param = optim.step(lr, param, tensor::<2>(grad, [2, 2]), None).0;
        }
        // [0,0]: 0 − 0.5 + 0.25 − 0.125    [0,1]: 1 + 0.5 + 0.25 + 0
        // [1,0]: −1 + 0 + 0 + 0.125         [1,1]: 2 − 0.5 − 0.25 − 0.125
        assert_close(&values(param), &[-0.375, 1.75, -0.875, 1.125], 1e-6);
    }

    #[test]
    fn weight_decay_is_decoupled_and_applied_first() {
        let optim = SignGdConfig::new().with_weight_decay(0.5).build().unwrap();
        let param = tensor::<1>(&[1.0, -2.0, 3.0], [3]);
        let grad = tensor::<1>(&[1.0, 1.0, 0.0], [3]);
        let (param, _) = optim.step(0.1, param, grad, None);
        // θ·0.95 − 0.1·sign(g); the zero-gradient entry still decays. Decaying after the sign
        // step would give [0.855, −1.995, 2.85].
        assert_close(&values(param), &[0.85, -2.0, 2.85], 1e-6);
    }

    #[test]
    fn bad_weight_decay_is_rejected_naming_the_field() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let error = SignGdConfig::new()
                .with_weight_decay(bad)
                .try_init()
                .err()
                .unwrap();
            assert_eq!(error.field, "weight_decay");
        }
        let message = SignGdConfig::new()
            .with_weight_decay(-1.0)
            .build()
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "invalid optimizer config field `weight_decay`: SignGdConfig.weight_decay = -1: expected a finite number >= 0"
        );
    }

    #[test]
    fn stateless_record_round_trips_through_bytes() {
        assert_resume_against_opposed_gradient(
            || SignGdConfig::new().with_weight_decay(0.01).init(),
            false,
        );
    }

    #[test]
    fn least_squares_loss_decreases() {
        assert_decreases_least_squares(|| SignGdConfig::new().init(), 0.05);
    }
}
