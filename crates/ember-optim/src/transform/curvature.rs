//! Root-free diagonal curvature: `s ← (1 − β2)·s + β2·B·g⊙g`, direction `g / (s + λ)`.

use burn::tensor::Tensor;

/// How a step's curvature evidence `B·g⊙g` enters the estimate `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurvatureAccumulation {
    /// `s ← (1 − β2)·s + β2·B·g⊙g` (RF-RMSProp, RF-AdamW).
    MovingAverage,
    /// `s ← s + β2·B·g⊙g` (RF-AdaGrad).
    Sum,
}

/// The root-free diagonal preconditioner of Lin et al. (ICML 2024), section 3.
///
/// `s` is an estimate of the diagonal curvature (not of its square root): the direction is
/// `g / (s + λ)`, with the damping λ added outside, and no root anywhere. `s` starts at
/// `init_curvature` (s0 = 1 by default, where RMSProp would start at 0), which keeps the first
/// steps SGD-like instead of dividing by a tiny `B·g⊙g`.
///
/// The stored `s` is already in batch-scaled units (`B` multiplies each step's evidence as it
/// arrives). The authors' prototype stores the unscaled average and multiplies by the current B
/// when dividing; the two agree when B is constant, and ours keeps the history's scale when B
/// changes between steps.
#[derive(Clone, Debug)]
pub struct RootFreeCurvature {
    /// β2: the step toward each new curvature observation.
    pub beta2: f64,
    /// λ: added to `s` before dividing.
    pub damping: f64,
    /// s0: the value of `s` before the first step.
    pub init_curvature: f64,
    /// Moving average or running sum.
    pub accumulation: CurvatureAccumulation,
}

impl RootFreeCurvature {
    /// The curvature after seeing `grad` from a mean loss over `batch_size` examples; `None` stands
    /// for the initial `s0` everywhere.
    pub fn update<const D: usize>(
        &self,
        grad: &Tensor<D>,
        batch_size: usize,
        curvature: Option<Tensor<D>>,
    ) -> Tensor<D> {
        let previous = curvature.unwrap_or_else(|| grad.full_like(self.init_curvature));
        let evidence = grad
            .clone()
            .square()
            .mul_scalar(self.beta2 * batch_size as f64);
        match self.accumulation {
            CurvatureAccumulation::MovingAverage => {
                previous.mul_scalar(1.0 - self.beta2).add(evidence)
            }
            CurvatureAccumulation::Sum => previous.add(evidence),
        }
    }

    /// `direction / (curvature + λ)`: the inverse curvature applied without a square root.
    pub fn precondition<const D: usize>(
        &self,
        direction: Tensor<D>,
        curvature: Tensor<D>,
    ) -> Tensor<D> {
        direction.div(curvature.add_scalar(self.damping))
    }

    /// Update the curvature with `grad` and precondition `grad` by it.
    pub fn transform<const D: usize>(
        &self,
        grad: Tensor<D>,
        batch_size: usize,
        curvature: Option<Tensor<D>>,
    ) -> (Tensor<D>, Tensor<D>) {
        let curvature = self.update(&grad, batch_size, curvature);
        (self.precondition(grad, curvature.clone()), curvature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, tensor, values};

    fn curvature(accumulation: CurvatureAccumulation) -> RootFreeCurvature {
        RootFreeCurvature {
            beta2: 0.1,
            damping: 0.5,
            init_curvature: 2.0,
            accumulation,
        }
    }

    #[test]
    fn moving_average_starts_from_init_curvature() {
        let g = tensor::<1>(&[1.0, -2.0], [2]);
        let (d, s) = curvature(CurvatureAccumulation::MovingAverage).transform(g, 4, None);
        // s = 0.9·2 + 0.1·4·g²
        let s_expected = [1.8 + 0.4, 1.8 + 1.6];
        assert_close(&values(s), &s_expected, 1e-6);
        assert_close(
            &values(d),
            &[1.0 / (s_expected[0] + 0.5), -2.0 / (s_expected[1] + 0.5)],
            1e-6,
        );
    }

    #[test]
    fn sum_adds_evidence_to_previous() {
        let g = tensor::<1>(&[3.0], [1]);
        let previous = tensor::<1>(&[5.0], [1]);
        let s = curvature(CurvatureAccumulation::Sum).update(&g, 2, Some(previous));
        // 5 + 0.1·2·9
        assert_close(&values(s), &[6.8], 1e-6);
    }
}
