//! Sign-based descent: [`SignGd`] and [`Signum`]. Both end in the same [`SignDescent`] step
//! (decoupled weight decay, then a step of `η` along `−sign(direction)`); Signum puts an
//! [`ExponentialMovingAverage`](crate::transform::ExponentialMovingAverage) of the gradients in
//! front of it.
//!
//! References: Bernstein, Wang, Azizzadenesheli, Anandkumar, *signSGD: Compressed Optimisation
//! for Non-Convex Problems*, ICML 2018, [arXiv:1802.04434](https://arxiv.org/abs/1802.04434)
//! (signSGD and Signum); Li, Huang, Han, Zhou, Suzuki, Zhu, Chen, *On the Optimization and
//! Generalization of Two-layer Transformers with Sign Gradient Descent*, ICLR 2025
//! ([arXiv:2410.04870](https://arxiv.org/abs/2410.04870)), which studies SignGD as a proxy for Adam.

mod sign_gd;
mod signum;

pub use sign_gd::{SignGd, SignGdConfig};
pub use signum::{Signum, SignumConfig, SignumState};

use burn::optim::LearningRate;
use burn::tensor::Tensor;

use crate::transform::DecoupledWeightDecay;

/// The shared step of every sign method: decoupled weight decay, then a step of size `η` along
/// `−sign(direction)`:
///
/// ```text
/// θ ← θ · (1 − η·λ)            (decoupled weight decay, skipped when λ = 0)
/// θ ← θ − η · sign(direction)  (element-wise; sign(0) = 0, so a zero entry does not move)
/// ```
///
/// The decay comes first and acts on the parameter as it was before this step (as in AdamW and
/// burn's Lion), so `θ_{t+1} = (1 − ηλ)·θ_t − η·sign(d_t)`. burn's `sign` also maps NaN to 0.
#[derive(Clone, Debug)]
pub struct SignDescent {
    /// λ, the decoupled weight decay.
    pub weight_decay: DecoupledWeightDecay,
}

impl SignDescent {
    /// `(1 − η·λ)·param − η·sign(direction)`.
    pub fn apply<const D: usize>(
        &self,
        lr: LearningRate,
        param: Tensor<D>,
        direction: Tensor<D>,
    ) -> Tensor<D> {
        self.weight_decay.transform(param, lr) - direction.sign().mul_scalar(lr)
    }
}

/// Save/load check for the sign methods. burn-style resume checks feed a same-signed third
/// gradient, which a sign method maps to the same step whether or not its momentum survived; this
/// one feeds a small *opposed* gradient, so a lost momentum would flip the step, and checks that it
/// would (a fresh optimizer steps differently) whenever the method keeps state.
#[cfg(test)]
pub(crate) fn assert_resume_against_opposed_gradient(
    create: impl Fn() -> burn::optim::ModuleOptimizer,
    keeps_state: bool,
) {
    use crate::test_util::device;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::Tolerance;

    let lr = 0.05;
    let device = device().autodiff();
    let mut model = LinearConfig::new(3, 2).init(&device);
    let input = Tensor::<2>::from_floats([[1.0, -0.5, 2.0], [0.25, 1.5, -1.0]], &device);
    // The loss is linear in the output, so the gradient's sign follows `scale`'s.
    let grads = |model: &Linear, scale: f32| {
        GradientsParams::from_grads(
            model
                .forward(input.clone())
                .mul_scalar(scale)
                .sum()
                .backward(),
            model,
        )
    };

    let mut original = create();
    for scale in [1.0, 0.5] {
        let g = grads(&model, scale);
        model = original.step(lr, model, g);
    }
    assert_eq!(!original.to_record().is_empty(), keeps_state);
    let mut restored = create().from_bytes(original.into_bytes().unwrap()).unwrap();
    let mut fresh = create();

    let expected = original.step(lr, model.clone(), grads(&model, -0.01));
    let actual = restored.step(lr, model.clone(), grads(&model, -0.01));
    let forgetful = fresh.step(lr, model.clone(), grads(&model, -0.01));
    for (e, a) in [
        (expected.weight.to_data(), actual.weight.to_data()),
        (
            expected.bias.clone().unwrap().to_data(),
            actual.bias.unwrap().to_data(),
        ),
    ] {
        e.assert_approx_eq::<f32>(&a, Tolerance::absolute(1e-7));
    }
    let gap = (expected.weight.val() - forgetful.weight.val())
        .abs()
        .max()
        .into_scalar::<f32>();
    if keeps_state {
        assert!(gap > 0.5 * lr as f32, "state made no difference: {gap}");
    } else {
        assert_eq!(gap, 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, tensor, values};

    #[test]
    fn sign_step_ignores_magnitude_and_leaves_zeros() {
        let step = SignDescent {
            weight_decay: DecoupledWeightDecay { weight_decay: 0.0 },
        };
        let param = tensor::<1>(&[1.0, -2.0, 3.0, 0.5], [4]);
        let direction = tensor::<1>(&[0.3, -4.0, 0.0, -1e-8], [4]);
        let out = step.apply(0.1, param, direction);
        assert_close(&values(out), &[0.9, -1.9, 3.0, 0.6], 1e-6);
    }

    #[test]
    fn decay_comes_before_the_sign_step() {
        let step = SignDescent {
            weight_decay: DecoupledWeightDecay { weight_decay: 0.5 },
        };
        let param = tensor::<1>(&[1.0, -2.0, 3.0], [3]);
        let direction = tensor::<1>(&[1.0, 1.0, 0.0], [3]);
        let out = step.apply(0.1, param, direction);
        // θ·(1 − 0.1·0.5) − 0.1·sign(d) = [0.95 − 0.1, −1.9 − 0.1, 2.85 − 0]. Decaying after the
        // sign step would give [0.855, −1.995, 2.85].
        assert_close(&values(out), &[0.85, -2.0, 2.85], 1e-6);
    }
}
