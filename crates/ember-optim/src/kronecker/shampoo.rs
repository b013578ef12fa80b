//! Shampoo (Gupta, Koren, Singer, ICML 2018): the root-based Kronecker baseline IF-Shampoo removes
//! the roots from.

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor};

use super::factor::{
    loaded_state_fits, FactorStructure, KroneckerFactor, KroneckerFactors, TensorAxes,
};
use super::inverse_root::CoupledNewtonInverseRoot;
use crate::field_check::FieldCheck;
use crate::transform::{in_dtype, AddedWeightDecay, HeavyBallMomentum};
use crate::{OptimConfigError, RecordState};

/// Configuration of [`Shampoo`]. The learning rate is not here: burn passes it to each step
/// (unvalidated).
///
/// ```
/// use ember_optim::ShampooConfig;
///
/// // Inverse roots recomputed every 10th step, as large-scale Shampoo runs do.
/// let optim = ShampooConfig::new().with_update_every(10).init();
/// let err = ShampooConfig::new().with_epsilon(0.0).try_init().err().unwrap();
/// assert_eq!(err.field, "epsilon");
/// ```
#[derive(Config, Debug)]
pub struct ShampooConfig {
    /// ε, added to every statistic before its root: `(L_n + ε·I)^{−1/(2N)}` (Shampoo's
    /// `L_0 = ε·I`). Must be > 0.
    #[config(default = 1e-4)]
    pub epsilon: f64,
    /// Decay of the statistics, `L_n ← decay·L_n + G_(n) G_(n)ᵀ`: 1 is the original running sum.
    /// Must lie in (0, 1].
    #[config(default = 1.0)]
    pub statistics_decay: f64,
    /// α1, heavy-ball momentum on the preconditioned direction (no `1 − α1`), as in
    /// [`IfShampoo`](crate::IfShampoo) so that the two compare like for like. Must lie in [0, 1).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// κ, weight decay added after preconditioning, as in IF-Shampoo. Must be ≥ 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// T: the inverse roots are recomputed on the steps whose 0-based index is a multiple of T (the
    /// statistics are updated every step). Must be ≥ 1.
    #[config(default = 1)]
    pub update_every: usize,
    /// Coupled Newton iterations per inverse root (Higham's iteration for `A^{−1/p}`). Must be ≥
    /// 1.
    #[config(default = 30)]
    pub root_iterations: usize,
    /// Axes longer than this get diagonal statistics whatever `structure` says. Must be ≥ 1.
    #[config(default = 4096)]
    pub max_dim: usize,
    /// Dense or diagonal statistics for the axes up to `max_dim`.
    #[config(default = "FactorStructure::Dense")]
    pub structure: FactorStructure,
    /// Per-parameter gradient clipping, applied by the `init` methods only.
    pub grad_clipping: Option<GradientClippingConfig>,
}

/// Shampoo with inverse roots from a coupled Newton iteration: the baseline of the IF-Shampoo
/// comparison in Lin, Dangel, Eschenhagen, Bae, Turner, Makhzani, *Can We Remove the Square-Root in
/// Adaptive Gradient Methods? A Second-Order Perspective*, ICML 2024.
///
/// From Gupta, Koren, Singer, *Shampoo: Preconditioned Stochastic Tensor Optimization*, ICML 2018.
/// For a parameter with N squeezed axes (a matrix: `S_C^{−1/4} G S_K^{−1/4}`):
///
/// ```text
/// L_n ← decay·L_n + G_(n) G_(n)ᵀ                      every step; L_n starts at 0
/// P_n = (L_n + ε·I)^{−1/(2N)}                         recomputed when step % T == 0
/// Δ   = G ×_1 P_1 … ×_N P_N + κ·θ
/// buf ← α1·buf + Δ;   θ ← θ − lr·buf
/// ```
///
/// How it differs from [`IfShampoo`](crate::IfShampoo): Shampoo accumulates the curvature
/// statistics themselves and needs their inverse `2N`-th roots (here `root_iterations` coupled
/// Newton steps, `(p + 2)` d×d matmuls each, with `p = 2N`; Meta's Distributed Shampoo uses an
/// eigen-decomposition instead), which are ill-conditioned and overflow in half precision — so this
/// implementation keeps statistics and roots in f32 for f16/bf16 parameters. IF-Shampoo instead
/// updates the factors of the *inverse* curvature directly, with no root (a root-free step
/// `S^{−1}` rather than `S^{−1/2}`, since `⊗ K K ᵀ` plays the role of the inverse) and no inverse,
/// in the parameter's own dtype; it also scales the curvature by the batch size B and damps it by
/// λ, which Shampoo's ε only approximates. No grafting, no blocking of large axes (axes above
/// `max_dim` get diagonal statistics, whose roots are element-wise powers).
#[derive(Clone, Debug)]
pub struct Shampoo {
    epsilon: f64,
    statistics_decay: f64,
    update_every: usize,
    max_dim: usize,
    structure: FactorStructure,
    root: CoupledNewtonInverseRoot,
    weight_decay: AddedWeightDecay,
    momentum: HeavyBallMomentum,
}

/// Shampoo state of one parameter tensor.
#[derive(RecordState, Clone)]
pub struct ShampooState<const D: usize> {
    /// Number of earlier steps of this parameter; roots are recomputed when `step % T == 0`.
    pub step: usize,
    /// `L_n`, one per squeezed axis (f32 for half-precision parameters).
    pub statistics: KroneckerFactors,
    /// `P_n = (L_n + ε·I)^{−1/(2N)}`, as last computed.
    pub roots: KroneckerFactors,
    /// The heavy-ball buffer (absent when α1 = 0), in the parameter's dtype.
    pub momentum: Option<Tensor<D>>,
}

impl<const D: usize> ShampooState<D> {
    /// Move the state to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            step: self.step,
            statistics: self.statistics.to_device(device),
            roots: self.roots.to_device(device),
            momentum: self.momentum.map(|m| m.to_device(device)),
        }
    }
}

impl Shampoo {
    fn structure_for(&self, dim: usize) -> FactorStructure {
        if dim > self.max_dim {
            FactorStructure::Diagonal
        } else {
            self.structure
        }
    }

    fn inverse_root(&self, statistic: KroneckerFactor, p: usize) -> KroneckerFactor {
        match statistic.add_identity(self.epsilon) {
            KroneckerFactor::Dense(a) => KroneckerFactor::Dense(self.root.inverse_root(a, p)),
            KroneckerFactor::Diagonal(a) => {
                KroneckerFactor::Diagonal(a.powf_scalar(-1.0 / p as f64))
            }
        }
    }
}

impl Optimizer for Shampoo {
    type State<const D: usize> = ShampooState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let shape = tensor.dims();
        if shape.iter().product::<usize>() == 0 {
            return (tensor, state);
        }
        let axes = TensorAxes::of(&shape);
        let (device, dtype) = (tensor.device(), tensor.dtype());
        // Roots need the range and precision that half precision lacks.
        let work = match dtype {
            DType::F16 | DType::BF16 => DType::F32,
            other => other,
        };

        let state = state.filter(|state| {
            loaded_state_fits("Shampoo", &shape, &[&state.statistics, &state.roots], |d| {
                self.structure_for(d)
            })
        });
        let (step, statistics, roots, buffer) = match state {
            Some(state) => (
                state.step,
                state.statistics.in_dtype(work).0,
                state.roots.in_dtype(work).0,
                state.momentum.map(|m| in_dtype(m, dtype)),
            ),
            None => {
                let init = |value: f64| -> Vec<KroneckerFactor> {
                    axes.dims()
                        .iter()
                        .map(|&d| {
                            let structure = self.structure_for(d);
                            KroneckerFactor::scaled_identity(d, value, structure, &device, work)
                        })
                        .collect()
                };
                (0, init(0.0), init(1.0), None)
            }
        };

        let g = in_dtype(grad.reshape([axes.numel()]), work);
        let structures: Vec<FactorStructure> = statistics.iter().map(|l| l.structure()).collect();
        let statistics: Vec<KroneckerFactor> = statistics
            .into_iter()
            .zip(axes.grams(g.clone(), &structures))
            .map(|(l, gram)| l.mul_scalar(self.statistics_decay).plus(gram))
            .collect();
        let roots = if step % self.update_every == 0 {
            let p = 2 * axes.dims().len();
            statistics
                .iter()
                .map(|l| self.inverse_root(l.clone(), p))
                .collect()
        } else {
            roots
        };

        let delta = axes.multilinear(g, &roots, false);
        let delta: Tensor<D> = in_dtype(delta, dtype).reshape(shape);
        let delta = self.weight_decay.transform(delta, tensor.clone());
        let (delta, buffer) = self.momentum.transform(delta, buffer);

        let state = ShampooState {
            step: step + 1,
            statistics: KroneckerFactors(statistics),
            roots: KroneckerFactors(roots),
            momentum: buffer,
        };
        (tensor - delta.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

impl ShampooConfig {
    /// Checks every field, naming the first one out of range; [`build`](Self::build) and the
    /// `init` methods run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("ShampooConfig");
        check.positive("epsilon", self.epsilon)?;
        check.step_fraction("statistics_decay", self.statistics_decay)?;
        check.decay("momentum", self.momentum)?;
        check.non_negative("weight_decay", self.weight_decay)?;
        check.at_least_one("update_every", self.update_every)?;
        check.at_least_one("root_iterations", self.root_iterations)?;
        check.at_least_one("max_dim", self.max_dim)
    }

    /// The bare optimizer, for
    /// [`ModuleOptimizer::with_group`](burn::optim::ModuleOptimizer::with_group).
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range (see
    /// [`validate`](Self::validate)).
    pub fn build(&self) -> Result<Shampoo, OptimConfigError> {
        self.validate()?;
        Ok(Shampoo {
            epsilon: self.epsilon,
            statistics_decay: self.statistics_decay,
            update_every: self.update_every,
            max_dim: self.max_dim,
            structure: self.structure,
            root: CoupledNewtonInverseRoot {
                iterations: self.root_iterations,
            },
            weight_decay: AddedWeightDecay {
                weight_decay: self.weight_decay,
            },
            momentum: HeavyBallMomentum {
                momentum: self.momentum,
            },
        })
    }

    crate::assemble::module_optimizer_init!();
}

#[cfg(test)]
mod tests {
    use super::super::inverse_root::tests::reference_inverse_root;
    use super::*;
    use crate::test_util::{
        assert_close, assert_decreases_least_squares, assert_resume, tensor, values,
    };
    use burn::tensor::FloatDType;

    fn split(dims: &[usize], n: usize) -> (usize, usize, usize) {
        (
            dims[..n].iter().product(),
            dims[n],
            dims[n + 1..].iter().product(),
        )
    }

    /// θ after Shampoo steps, with plain f64 loops and Jacobi roots.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        dims: &[usize],
        diagonal: &[bool],
        theta: &[f64],
        grads: &[Vec<f64>],
        lr: f64,
        eps: f64,
        decay: f64,
        alpha1: f64,
        kappa: f64,
        period: usize,
    ) -> Vec<f64> {
        let order = dims.len();
        let p = 2 * order;
        let mut theta = theta.to_vec();
        let mut stats: Vec<Vec<f64>> = dims.iter().map(|&d| vec![0.0; d * d]).collect();
        let mut roots: Vec<Vec<f64>> = dims.iter().map(|&d| vec![0.0; d * d]).collect();
        let mut buf = vec![0.0; theta.len()];
        for (t, g) in grads.iter().enumerate() {
            for n in 0..order {
                let (left, d, right) = split(dims, n);
                for i in 0..d {
                    for j in 0..d {
                        let mut acc = 0.0;
                        for l in 0..left {
                            for r in 0..right {
                                acc += g[(l * d + i) * right + r] * g[(l * d + j) * right + r];
                            }
                        }
                        let keep = !diagonal[n] || i == j;
                        stats[n][i * d + j] =
                            decay * stats[n][i * d + j] + if keep { acc } else { 0.0 };
                    }
                }
                if t % period == 0 {
                    let mut a = stats[n].clone();
                    for i in 0..d {
                        a[i * d + i] += eps;
                    }
                    roots[n] = reference_inverse_root(&a, d, p);
                }
            }
            let mut delta = g.clone();
            for (n, root) in roots.iter().enumerate() {
                let (left, d, right) = split(dims, n);
                let mut y = vec![0.0; delta.len()];
                for l in 0..left {
                    for i in 0..d {
                        for r in 0..right {
                            y[(l * d + i) * right + r] = (0..d)
                                .map(|j| root[i * d + j] * delta[(l * d + j) * right + r])
                                .sum();
                        }
                    }
                }
                delta = y;
            }
            for i in 0..theta.len() {
                buf[i] = alpha1 * buf[i] + delta[i] + kappa * theta[i];
                theta[i] -= lr * buf[i];
            }
        }
        theta
    }

    fn check<const D: usize>(config: ShampooConfig, shape: [usize; D], diagonal: &[bool]) {
        let numel: usize = shape.iter().product();
        let dims: Vec<usize> = shape.iter().copied().filter(|&d| d != 1).collect();
        let grads: Vec<Vec<f64>> = (0..4)
            .map(|t| {
                (0..numel)
                    .map(|i| ((0.61 * i as f64 + 0.9 * t as f64).sin() as f32) as f64)
                    .collect()
            })
            .collect();
        let theta0: Vec<f64> = (0..numel)
            .map(|i| ((0.3 * i as f64).cos() as f32) as f64)
            .collect();
        let f32s = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<_>>();

        let optim = config.build().unwrap();
        let mut theta = tensor::<D>(&f32s(&theta0), shape);
        let mut state = None;
        for g in &grads {
            let (next, next_state) = optim.step(0.05, theta, tensor::<D>(&f32s(g), shape), state);
            theta = next;
            state = next_state;
        }
        let expected = reference(
            &dims, diagonal, &theta0, &grads, 0.05, 0.1, 0.9, 0.5, 0.02, 2,
        );
        assert_close(&values(theta), &expected, 1e-4);
    }

    fn config() -> ShampooConfig {
        ShampooConfig::new()
            .with_epsilon(0.1)
            .with_statistics_decay(0.9)
            .with_momentum(0.5)
            .with_weight_decay(0.02)
            .with_update_every(2)
    }

    #[test]
    fn matrix_matches_reference() {
        check(config(), [3, 4], &[false, false]);
    }

    #[test]
    fn vector_matches_reference() {
        check(config(), [5], &[false]);
    }

    #[test]
    fn rank3_with_diagonal_axis_matches_reference() {
        check(
            config().with_max_dim(3),
            [2, 1, 3, 4],
            &[false, false, true],
        );
    }

    #[test]
    fn half_precision_parameters_keep_their_dtype() {
        let optim = config().build().unwrap();
        let theta = tensor::<2>(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [2, 3]).cast(FloatDType::F16);
        let grad = tensor::<2>(&[0.3, -0.2, 0.1, 0.4, -0.5, 0.6], [2, 3]).cast(FloatDType::F16);
        let (theta, state) = optim.step(0.05, theta, grad, None);
        assert_eq!(theta.dtype(), DType::F16);
        assert!(values(theta).iter().all(|x| x.is_finite()));
        let KroneckerFactor::Dense(root) = state.unwrap().roots.0[0].clone() else {
            unreachable!()
        };
        assert_eq!(root.dtype(), DType::F32);
    }

    #[test]
    fn validation_names_the_field() {
        let field = |c: ShampooConfig| c.try_init().err().unwrap().field;
        assert_eq!(field(ShampooConfig::new().with_epsilon(0.0)), "epsilon");
        assert_eq!(
            field(ShampooConfig::new().with_statistics_decay(0.0)),
            "statistics_decay"
        );
        assert_eq!(field(ShampooConfig::new().with_momentum(1.0)), "momentum");
        assert_eq!(
            field(ShampooConfig::new().with_root_iterations(0)),
            "root_iterations"
        );
        assert_eq!(
            field(ShampooConfig::new().with_update_every(0)),
            "update_every"
        );
    }

    #[test]
    fn save_load_resumes_identically() {
        assert_resume(|| config().init());
    }

    #[test]
    fn decreases_least_squares_loss() {
        assert_decreases_least_squares(|| ShampooConfig::new().init(), 0.05);
    }
}
