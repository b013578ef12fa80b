//! Inverse p-th roots of symmetric positive-definite matrices by a coupled Newton iteration
//! (matmuls only), for the root-based Shampoo baseline.

use burn::tensor::Tensor;

use crate::transform::in_dtype;

/// `A^{−1/p}` for a symmetric positive-definite `A` by the coupled Newton iteration of Guo & Higham
/// (2006), as used by Anil et al.'s scalable Shampoo:
///
/// ```text
/// z = (1 + p) / (2·‖A‖_F);  M = z·A;  X = z^{1/p}·I
/// repeat: T = ((p + 1)·I − M) / p;  X ← X·T;  M ← T^p·M
/// ```
///
/// The invariant `M = X^p·A` holds throughout and `M → I`, so `X → A^{−1/p}`. The Frobenius norm
/// bounds the spectral norm, so the eigenvalues of the first `M` lie in `(0, (1 + p)/2]`, where the
/// iteration converges. An eigenvalue `μ ≪ 1` of `M` grows by about `(1 + 1/p)^p ≥ 2.25` per
/// iteration before the quadratic phase, so `iterations` must cover `log(cond(A))/log(2.25)` plus a
/// few: the iteration count is fixed (no convergence test), so a step never reads back to the host.
#[derive(Clone, Debug)]
pub(crate) struct CoupledNewtonInverseRoot {
    /// Newton iterations per root.
    pub(crate) iterations: usize,
}

impl CoupledNewtonInverseRoot {
    /// `a^{−1/p}`, in `a`'s dtype (use f32 or wider: roots of ill-conditioned matrices are exactly
    /// what half precision cannot hold, which is the point of IF-Shampoo).
    pub(crate) fn inverse_root(&self, a: Tensor<2>, p: usize) -> Tensor<2> {
        let d = a.dims()[0];
        let p_f = p as f64;
        let eye = in_dtype(Tensor::<2>::eye(d, &a.device()), a.dtype());
        let z = a
            .clone()
            .square()
            .sum()
            .sqrt()
            .recip()
            .mul_scalar((1.0 + p_f) / 2.0);
        let mut m = a.mul(z.clone().reshape([1, 1]));
        let mut x = eye.clone().mul(z.powf_scalar(1.0 / p_f).reshape([1, 1]));
        for _ in 0..self.iterations {
            let t = eye
                .clone()
                .mul_scalar(p_f + 1.0)
                .sub(m.clone())
                .div_scalar(p_f);
            x = x.matmul(t.clone());
            let mut t_pow = t.clone();
            for _ in 1..p {
                t_pow = t_pow.matmul(t.clone());
            }
            m = t_pow.matmul(m);
        }
        x
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_util::{assert_close, tensor, values};

    /// `A^{−1/p}` of a symmetric positive-definite row-major `d × d` matrix through cyclic Jacobi
    /// rotations in f64 — an independent route through the eigen-decomposition.
    pub(crate) fn reference_inverse_root(a: &[f64], d: usize, p: usize) -> Vec<f64> {
        let mut a = a.to_vec();
        let mut v = vec![0.0; d * d];
        for i in 0..d {
            v[i * d + i] = 1.0;
        }
        for _sweep in 0..100 {
            let off: f64 = (0..d)
                .flat_map(|i| (0..d).map(move |j| (i, j)))
                .filter(|(i, j)| i != j)
                .map(|(i, j)| a[i * d + j] * a[i * d + j])
                .sum();
            if off < 1e-30 {
                break;
            }
            for i in 0..d {
                for j in i + 1..d {
                    let aij = a[i * d + j];
                    if aij.abs() < 1e-300 {
                        continue;
                    }
                    let theta = (a[j * d + j] - a[i * d + i]) / (2.0 * aij);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let t = if theta == 0.0 { 1.0 } else { t };
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    // A ← Jᵀ A J with the rotation J in the (i, j) plane.
                    for k in 0..d {
                        let (aki, akj) = (a[k * d + i], a[k * d + j]);
                        a[k * d + i] = c * aki - s * akj;
                        a[k * d + j] = s * aki + c * akj;
                    }
                    for k in 0..d {
                        let (aik, ajk) = (a[i * d + k], a[j * d + k]);
                        a[i * d + k] = c * aik - s * ajk;
                        a[j * d + k] = s * aik + c * ajk;
                    }
                    for k in 0..d {
                        let (vki, vkj) = (v[k * d + i], v[k * d + j]);
                        v[k * d + i] = c * vki - s * vkj;
                        v[k * d + j] = s * vki + c * vkj;
                    }
                }
            }
        }
        let mut out = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] = (0..d)
                    .map(|k| v[i * d + k] * a[k * d + k].powf(-1.0 / p as f64) * v[j * d + k])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn matches_eigendecomposition_root() {
        // A = B Bᵀ + 0.05·I, condition number in the hundreds.
        let b = [
            1.0, 0.5, -0.3, 0.2, 0.1, 1.2, 0.4, -0.6, 0.0, 0.3, 0.8, 0.5, 0.7, -0.2, 0.1, 0.4,
        ];
        let d = 4;
        let mut a = [0.0; 16];
        for i in 0..d {
            for j in 0..d {
                a[i * d + j] = (0..d).map(|k| b[i * d + k] * b[j * d + k]).sum::<f64>()
                    + if i == j { 0.05 } else { 0.0 };
            }
        }
        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let a64: Vec<f64> = a32.iter().map(|&x| x as f64).collect();
        let root = CoupledNewtonInverseRoot { iterations: 30 };
        for p in [2, 4, 8] {
            let x = root.inverse_root(tensor::<2>(&a32, [d, d]), p);
            assert_close(&values(x), &reference_inverse_root(&a64, d, p), 1e-4);
        }
    }
}
