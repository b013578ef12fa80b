//! Weight decay: added to the preconditioned direction, or decoupled (shrinking the parameter).

use burn::optim::LearningRate;
use burn::tensor::Tensor;

/// `d ← d + κ·θ`, applied *after* preconditioning, so the decay itself is not preconditioned.
///
/// This is the weight decay of RF-RMSProp and IF-Shampoo (Lin et al., ICML 2024); unlike burn's
/// `WeightDecay` (which adds `κ·θ` to the raw gradient) it does not pass through `1/(s + λ)`, and
/// unlike decoupled decay it does pass through the momentum buffer.
#[derive(Clone, Debug)]
pub struct AddedWeightDecay {
    /// κ.
    pub weight_decay: f64,
}

impl AddedWeightDecay {
    /// `direction + κ·param`.
    pub fn transform<const D: usize>(&self, direction: Tensor<D>, param: Tensor<D>) -> Tensor<D> {
        if self.weight_decay == 0.0 {
            return direction;
        }
        direction.add(param.mul_scalar(self.weight_decay))
    }
}

/// `θ ← θ·(1 − lr·κ)` before the step (Loshchilov & Hutter's decoupled weight decay, as in AdamW).
#[derive(Clone, Debug)]
pub struct DecoupledWeightDecay {
    /// κ.
    pub weight_decay: f64,
}

impl DecoupledWeightDecay {
    /// The parameter shrunk by `1 − lr·κ`.
    pub fn transform<const D: usize>(&self, param: Tensor<D>, lr: LearningRate) -> Tensor<D> {
        if self.weight_decay == 0.0 {
            return param;
        }
        param.mul_scalar(1.0 - lr * self.weight_decay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, tensor, values};

    #[test]
    fn added_decay() {
        let decay = AddedWeightDecay { weight_decay: 0.1 };
        let d = decay.transform(tensor::<1>(&[1.0], [1]), tensor::<1>(&[5.0], [1]));
        assert_close(&values(d), &[1.5], 1e-7);
    }

    #[test]
    fn decoupled_decay() {
        let decay = DecoupledWeightDecay { weight_decay: 0.1 };
        let p = decay.transform(tensor::<1>(&[5.0], [1]), 0.5);
        assert_close(&values(p), &[5.0 * 0.95], 1e-7);
    }
}
