//! Momentum buffers: heavy-ball (no `(1 − α)` factor) and the exponential moving average of Adam.

use burn::tensor::Tensor;

/// Heavy-ball momentum on an already preconditioned direction: `buf ← α·buf + d`.
///
/// There is no `(1 − α)` factor (unlike Adam's first moment and unlike burn's `Momentum` with its
/// default dampening 0.1), as in the root-free methods of Lin et al. (ICML 2024). The buffer starts
/// at 0, so the first step returns `d`. With `α = 0` no buffer is kept.
#[derive(Clone, Debug)]
pub struct HeavyBallMomentum {
    /// α1: how much of the previous buffer survives a step.
    pub momentum: f64,
}

impl HeavyBallMomentum {
    /// Returns the buffer after adding `direction` (the direction to step along) and the state to
    /// keep (`None` when momentum is off).
    pub fn transform<const D: usize>(
        &self,
        direction: Tensor<D>,
        buffer: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<Tensor<D>>) {
        if self.momentum == 0.0 {
            return (direction, None);
        }
        let buffer = match buffer {
            Some(buffer) => buffer.mul_scalar(self.momentum).add(direction),
            None => direction,
        };
        (buffer.clone(), Some(buffer))
    }
}

/// Exponential moving average `m ← β·m + (1 − β)·g` starting at `m = 0` (Adam's first moment).
#[derive(Clone, Debug)]
pub struct ExponentialMovingAverage {
    /// β: how much of the previous average survives a step.
    pub decay: f64,
}

impl ExponentialMovingAverage {
    /// The average after seeing `value`; `None` stands for the initial 0.
    pub fn update<const D: usize>(
        &self,
        value: Tensor<D>,
        average: Option<Tensor<D>>,
    ) -> Tensor<D> {
        let fresh = value.mul_scalar(1.0 - self.decay);
        match average {
            Some(average) => average.mul_scalar(self.decay).add(fresh),
            None => fresh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, tensor, values};

    #[test]
    fn heavy_ball_has_no_dampening() {
        let momentum = HeavyBallMomentum { momentum: 0.5 };
        let (d1, buf) = momentum.transform(tensor::<1>(&[2.0, -1.0], [2]), None);
        assert_close(&values(d1), &[2.0, -1.0], 1e-7);
        let (d2, buf) = momentum.transform(tensor::<1>(&[1.0, 1.0], [2]), buf);
        assert_close(&values(d2), &[2.0, 0.5], 1e-7);
        assert_close(&values(buf.unwrap()), &[2.0, 0.5], 1e-7);
    }

    #[test]
    fn heavy_ball_off_keeps_no_buffer() {
        let momentum = HeavyBallMomentum { momentum: 0.0 };
        let (d, buf) = momentum.transform(tensor::<1>(&[3.0], [1]), None);
        assert_close(&values(d), &[3.0], 1e-7);
        assert!(buf.is_none());
    }

    #[test]
    fn moving_average_starts_at_zero() {
        let ema = ExponentialMovingAverage { decay: 0.75 };
        let m = ema.update(tensor::<1>(&[4.0], [1]), None);
        assert_close(&values(m.clone()), &[1.0], 1e-7);
        let m = ema.update(tensor::<1>(&[8.0], [1]), Some(m));
        assert_close(&values(m), &[0.75 + 2.0], 1e-7);
    }
}
