//! IF-Shampoo: inverse-free, root-free Shampoo (Lin, Dangel, Eschenhagen, Bae, Turner, Makhzani,
//! ICML 2024; packaged by the authors as SIRFShampoo).

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use super::factor::{
    loaded_state_fits, FactorStructure, KroneckerFactor, KroneckerFactors, TensorAxes,
};
use crate::field_check::FieldCheck;
use crate::transform::{in_dtype, AddedWeightDecay, BatchSizeHandle, HeavyBallMomentum};
use crate::{OptimConfigError, RecordState};

/// Configuration of [`IfShampoo`]. The learning rate β1 is not here: burn passes it to each step
/// (unvalidated).
///
/// ```
/// use ember_optim::{FactorStructure, IfShampooConfig};
///
/// // B = 128, factors updated every second step as in the paper's runs.
/// let optim = IfShampooConfig::new(128).with_update_every(2).init();
/// let diagonal = IfShampooConfig::new(128).with_structure(FactorStructure::Diagonal).init();
/// let err = IfShampooConfig::new(128).with_beta2(1.0).try_init().err().unwrap();
/// assert_eq!(err.field, "beta2");
/// ```
#[derive(Config, Debug)]
pub struct IfShampooConfig {
    /// β2, the factor step `K ← K − (β2 / max(1, ‖m‖_F))·K·m`. The paper's tuned runs used 0.1 to
    /// 0.45. Must lie in (0, 1), which keeps every factor update `K·(I − c·m)` invertible.
    #[config(default = 1e-2)]
    pub beta2: f64,
    /// α1, heavy-ball momentum on the preconditioned direction, `buf ← α1·buf + Δ` (no `1 − α1`).
    /// Must lie in [0, 1).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// α2, the "Riemannian" momentum on the factor updates, `m ← α2·m + (1 − α2)·step`. Must lie in
    /// [0, 1).
    #[config(default = 0.5)]
    pub factor_momentum: f64,
    /// λ, the damping of the Kronecker curvature estimate. Must be ≥ 0.
    #[config(default = 1e-3)]
    pub damping: f64,
    /// κ, weight decay added after preconditioning: `Δ ← Δ + κ·θ`. Must be ≥ 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// T, the factor update period: factors are updated on the steps whose 0-based index (the
    /// number of earlier steps of that parameter) is a multiple of T, so always on the first step.
    /// The paper's runs used 2. Must be ≥ 1.
    #[config(default = 1)]
    pub update_every: usize,
    /// Axes longer than this get a diagonal factor whatever `structure` says (a dense one would
    /// cost `d²` memory and `d³` time). Must be ≥ 1.
    #[config(default = 4096)]
    pub max_dim: usize,
    /// Dense or diagonal factors for the axes up to `max_dim`.
    #[config(default = "FactorStructure::Dense")]
    pub structure: FactorStructure,
    /// B, the number of examples the loss averages over (see
    /// [`RfRmsPropConfig::batch_size`](crate::RfRmsPropConfig)). Must be ≥ 1.
    pub batch_size: usize,
    /// Per-parameter gradient clipping, applied by the `init` methods only.
    pub grad_clipping: Option<GradientClippingConfig>,
}

/// IF-Shampoo: a Kronecker-factored preconditioner with no inverse, no root and no decomposition.
///
/// Each parameter tensor G of shape `(d_1, …, d_N)` (size-1 axes squeezed away) gets one factor
/// `K_n` per axis (`d_n × d_n`, initialised to I; diagonal for axes longer than `max_dim` or with
/// [`FactorStructure::Diagonal`]). The preconditioner `⊗_n K_n K_nᵀ` is an *inverse* Kronecker
/// curvature estimate, updated directly with matmuls. On steps where `step % T == 0`
/// (`step` = the number of earlier steps of that parameter, so the first step updates), for every
/// axis n, with `H = G ×_{m≠n} (K_m K_mᵀ)` and `d_{−n} = Π_{m≠n} d_m`:
///
/// ```text
/// step_n = 1/(2·d_{−n}) · [ B·K_nᵀ H_(n) G_(n)ᵀ K_n + λ·Π_{m≠n} tr(K_mᵀ K_m)·K_nᵀ K_n − d_{−n}·I ]
/// m_n    ← α2·m_n + (1 − α2)·step_n                      (m_n starts at 0)
/// K_n    ← K_n − (β2 / max(1, ‖m_n‖_F))·K_n·m_n           (first-order truncation of K·exp(−β2·m))
/// ```
///
/// All factors are updated simultaneously from the factors of the previous step (as in the
/// authors' SIRFShampoo). Then, on every step, with the updated factors:
///
/// ```text
/// Δ   = G ×_1 (K_1 K_1ᵀ) ×_2 … ×_N (K_N K_Nᵀ) + κ·θ
/// buf ← α1·buf + Δ
/// θ   ← θ − β1·buf
/// ```
///
/// From Lin, Dangel, Eschenhagen, Bae, Turner, Makhzani, *Can We Remove the Square-Root in
/// Adaptive Gradient Methods? A Second-Order Perspective*, ICML 2024 (arXiv:2402.03496), Fig. 3;
/// the update above is the authors' SIRFShampoo package's. For a diagonal factor every matrix above
/// is replaced by its diagonal (the structured projection of SIRFShampoo).
///
/// Numerics (none changes the maths; all are SIRFShampoo's): √B is folded into G once; traces enter
/// as `tr(K_mᵀ K_m)/d_m`, which are ≈1, and `K_n/√d_n` is used inside the Gram products, so no
/// intermediate grows with the tensor size; before forming `G ×_n K_n K_nᵀ` each `K_n` is divided
/// by `max(1, √max|K_n|)` and the product of the squared scales is multiplied back at the end.
/// Every scalar stays a one-element tensor on the device (SIRFShampoo reads traces to the host
/// instead), so a step never synchronises. Everything is computed in the parameter's dtype, so
/// f16/bf16 parameters keep f16/bf16 factors (a state reloaded in f32 is cast back).
///
/// Choices: `step` is counted per parameter tensor (SIRFShampoo counts optimizer steps globally;
/// the two agree when every parameter gets a gradient on every step); B is taken from the config or
/// a shared [`BatchSizeHandle`] (SIRFShampoo infers it with a forward hook); the state holds the
/// factor momenta even when α2 = 0 (SIRFShampoo then keeps none), so the layout never changes.
#[derive(Clone, Debug)]
pub struct IfShampoo {
    beta2: f64,
    factor_momentum: f64,
    damping: f64,
    update_every: usize,
    max_dim: usize,
    structure: FactorStructure,
    weight_decay: AddedWeightDecay,
    momentum: HeavyBallMomentum,
    batch_size: BatchSizeHandle,
}

/// IF-Shampoo state of one parameter tensor.
#[derive(RecordState, Clone)]
pub struct IfShampooState<const D: usize> {
    /// Number of earlier steps of this parameter; factors are updated when `step % T == 0`.
    pub step: usize,
    /// `K_n`, one per squeezed axis.
    pub factors: KroneckerFactors,
    /// `m_n`, the factor momenta, one per squeezed axis.
    pub factor_momenta: KroneckerFactors,
    /// The heavy-ball buffer (absent when α1 = 0).
    pub momentum: Option<Tensor<D>>,
    /// `(K_n/s_n)(K_n/s_n)ᵀ`, one per axis, and `Π_n s_n²`: the preconditioner, which changes only
    /// when the factors do, kept so that the other T − 1 steps of a period skip recomputing it.
    /// Absent in records written before it existed; then rebuilt from the factors.
    pub preconditioner: Option<KroneckerFactors>,
    /// `Π_n s_n²`, the scale multiplied back after applying [`preconditioner`](Self::preconditioner).
    pub preconditioner_scale: Option<Tensor<1>>,
}

impl<const D: usize> IfShampooState<D> {
    /// Move the state to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            step: self.step,
            factors: self.factors.to_device(device),
            factor_momenta: self.factor_momenta.to_device(device),
            momentum: self.momentum.map(|m| m.to_device(device)),
            preconditioner: self.preconditioner.map(|p| p.to_device(device)),
            preconditioner_scale: self.preconditioner_scale.map(|s| s.to_device(device)),
        }
    }
}

impl IfShampoo {
    /// The handle B is read from at every step; set it before stepping when B varies.
    pub fn batch_size(&self) -> &BatchSizeHandle {
        &self.batch_size
    }

    fn structure_for(&self, dim: usize) -> FactorStructure {
        if dim > self.max_dim {
            FactorStructure::Diagonal
        } else {
            self.structure
        }
    }

    /// One simultaneous update of every factor from the gradient `g` (flat).
    fn update_factors(
        &self,
        axes: &TensorAxes,
        g: Tensor<1>,
        batch_size: usize,
        factors: Vec<KroneckerFactor>,
        momenta: Vec<KroneckerFactor>,
    ) -> (Vec<KroneckerFactor>, Vec<KroneckerFactor>) {
        let dims = axes.dims();
        // GK = √B·G ×_1 (K_1/√d_1)ᵀ … ×_N (K_N/√d_N)ᵀ, so that the mode-n Gram of GK is
        // (B/Π_m d_m)·K_nᵀ H_(n) G_(n)ᵀ K_n for every n at once.
        let scaled: Vec<KroneckerFactor> = factors
            .iter()
            .zip(dims)
            .map(|(k, &d)| k.clone().mul_scalar(1.0 / (d as f64).sqrt()))
            .collect();
        let gk = axes.multilinear(g.mul_scalar((batch_size as f64).sqrt()), &scaled, true);
        let structures: Vec<FactorStructure> = factors.iter().map(|k| k.structure()).collect();
        let grams = axes.grams(gk, &structures);
        // tr(K_mᵀ K_m)/d_m: the factor d_{−n} of the damping term is split over the traces.
        let mean_traces: Vec<Tensor<1>> = factors
            .iter()
            .zip(dims)
            .map(|(k, &d)| k.squared_frobenius_norm().div_scalar(d as f64))
            .collect();

        let mut new_factors = Vec::with_capacity(factors.len());
        let mut new_momenta = Vec::with_capacity(factors.len());
        for (n, ((k, m), gram)) in factors.into_iter().zip(momenta).zip(grams).enumerate() {
            // (B/d_{−n})·K_nᵀ H_(n) G_(n)ᵀ K_n
            let curvature = gram.mul_scalar(dims[n] as f64);
            // (λ/d_{−n})·Π_{m≠n} tr(K_mᵀ K_m)·K_nᵀ K_n
            let trace_product = mean_traces
                .iter()
                .enumerate()
                .filter(|&(m, _)| m != n)
                .map(|(_, t)| t.clone())
                .reduce(|a, b| a.mul(b));
            let mut damping = k.clone().gram_of_columns().mul_scalar(self.damping);
            if let Some(product) = trace_product {
                damping = damping.mul_by(product);
            }
            let step = curvature.plus(damping).add_identity(-1.0).mul_scalar(0.5);

            let m = m
                .mul_scalar(self.factor_momentum)
                .plus(step.mul_scalar(1.0 - self.factor_momentum));
            let rate = m
                .squared_frobenius_norm()
                .sqrt()
                .clamp_min(1.0)
                .recip()
                .mul_scalar(self.beta2);
            let k = k.clone().plus(k.matmul(m.clone()).mul_by(rate.neg()));
            new_factors.push(k);
            new_momenta.push(m);
        }
        (new_factors, new_momenta)
    }

    /// The preconditioner of `factors`: `P_n = (K_n/s_n)(K_n/s_n)ᵀ` and `Π_n s_n²`, with
    /// `s_n = max(1, √max|K_n|)`, which keeps `P_n`'s entries near 1 in half precision.
    fn preconditioner(factors: &[KroneckerFactor]) -> (Vec<KroneckerFactor>, Tensor<1>) {
        let mut rescale: Option<Tensor<1>> = None;
        let products = factors
            .iter()
            .map(|k| {
                let scale = k.abs_max().sqrt().clamp_min(1.0);
                let squared = scale.clone().square();
                rescale = Some(match rescale.take() {
                    Some(r) => r.mul(squared),
                    None => squared,
                });
                k.clone().mul_by(scale.recip()).gram_of_rows()
            })
            .collect();
        let rescale = rescale.unwrap_or_else(|| {
            let device = factors.first().map(|k| k.device()).unwrap_or_default();
            Tensor::ones([1], &device)
        });
        (products, rescale)
    }
}

impl Optimizer for IfShampoo {
    type State<const D: usize> = IfShampooState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let batch_size = self.batch_size.get();
        let shape = tensor.dims();
        let axes = TensorAxes::of(&shape);
        if shape.iter().product::<usize>() == 0 {
            return (tensor, state);
        }
        let (device, dtype) = (tensor.device(), tensor.dtype());

        let state = state.filter(|state| {
            loaded_state_fits(
                "IfShampoo",
                &shape,
                &[&state.factors, &state.factor_momenta],
                |d| self.structure_for(d),
            )
        });
        let (step, factors, momenta, buffer, cached) = match state {
            Some(state) => {
                let cached = match (state.preconditioner, state.preconditioner_scale) {
                    (Some(p), Some(s)) if p.fit(axes.dims(), |d| self.structure_for(d)) => {
                        Some((p.in_dtype(dtype).0, in_dtype(s, dtype)))
                    }
                    _ => None,
                };
                (
                    state.step,
                    state.factors.in_dtype(dtype).0,
                    state.factor_momenta.in_dtype(dtype).0,
                    state.momentum.map(|m| in_dtype(m, dtype)),
                    cached,
                )
            }
            None => {
                let init = |value: f64| -> Vec<KroneckerFactor> {
                    axes.dims()
                        .iter()
                        .map(|&d| {
                            let structure = self.structure_for(d);
                            KroneckerFactor::scaled_identity(d, value, structure, &device, dtype)
                        })
                        .collect()
                };
                (0, init(1.0), init(0.0), None, None)
            }
        };

        let g = grad.reshape([axes.numel()]);
        let update = step.is_multiple_of(self.update_every);
        let (factors, momenta) = if update {
            self.update_factors(&axes, g.clone(), batch_size, factors, momenta)
        } else {
            (factors, momenta)
        };
        let (preconditioner, rescale) = match cached {
            Some(cached) if !update => cached,
            _ => Self::preconditioner(&factors),
        };

        let delta: Tensor<D> = axes
            .multilinear(g, &preconditioner, false)
            .mul(rescale.clone())
            .reshape(shape);
        let delta = self.weight_decay.transform(delta, tensor.clone());
        let (delta, buffer) = self.momentum.transform(delta, buffer);

        let state = IfShampooState {
            step: step + 1,
            factors: KroneckerFactors(factors),
            factor_momenta: KroneckerFactors(momenta),
            momentum: buffer,
            preconditioner: Some(KroneckerFactors(preconditioner)),
            preconditioner_scale: Some(rescale),
        };
        (tensor - delta.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

impl IfShampooConfig {
    /// Checks every field, naming the first one out of range; [`build`](Self::build) and the
    /// `init` methods run it first.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), OptimConfigError> {
        let check = FieldCheck::new("IfShampooConfig");
        check.open_unit("beta2", self.beta2)?;
        check.decay("momentum", self.momentum)?;
        check.decay("factor_momentum", self.factor_momentum)?;
        check.non_negative("damping", self.damping)?;
        check.non_negative("weight_decay", self.weight_decay)?;
        check.at_least_one("update_every", self.update_every)?;
        check.at_least_one("max_dim", self.max_dim)?;
        check.at_least_one("batch_size", self.batch_size)
    }

    /// The bare optimizer, for
    /// [`ModuleOptimizer::with_group`](burn::optim::ModuleOptimizer::with_group); it reads B from
    /// its [`batch_size`](IfShampoo::batch_size) handle, which starts at the config's `batch_size`.
    ///
    /// # Errors
    ///
    /// An [`OptimConfigError`] naming the first field out of range (see
    /// [`validate`](Self::validate)).
    pub fn build(&self) -> Result<IfShampoo, OptimConfigError> {
        self.validate()?;
        let batch_size = BatchSizeHandle::starting_at(self.batch_size);
        Ok(IfShampoo {
            beta2: self.beta2,
            factor_momentum: self.factor_momentum,
            damping: self.damping,
            update_every: self.update_every,
            max_dim: self.max_dim,
            structure: self.structure,
            weight_decay: AddedWeightDecay {
                weight_decay: self.weight_decay,
            },
            momentum: HeavyBallMomentum {
                momentum: self.momentum,
            },
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
    use burn::tensor::{DType, FloatDType};

    /// Row-major `d × d` matrices and plain loops: an independent transcription of the update.
    mod reference {
        pub type Mat = Vec<f64>;

        pub fn eye(d: usize) -> Mat {
            let mut m = vec![0.0; d * d];
            for i in 0..d {
                m[i * d + i] = 1.0;
            }
            m
        }

        pub fn matmul(a: &Mat, b: &Mat, d: usize) -> Mat {
            let mut c = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    for k in 0..d {
                        c[i * d + j] += a[i * d + k] * b[k * d + j];
                    }
                }
            }
            c
        }

        pub fn transpose(a: &Mat, d: usize) -> Mat {
            let mut t = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    t[j * d + i] = a[i * d + j];
                }
            }
            t
        }

        fn split(dims: &[usize], n: usize) -> (usize, usize, usize) {
            let left = dims[..n].iter().product();
            let right = dims[n + 1..].iter().product();
            (left, dims[n], right)
        }

        /// `Y[.., i, ..] = Σ_j A[i, j]·X[.., j, ..]` along axis n.
        pub fn mode(x: &[f64], dims: &[usize], n: usize, a: &Mat) -> Vec<f64> {
            let (left, d, right) = split(dims, n);
            let mut y = vec![0.0; x.len()];
            for l in 0..left {
                for i in 0..d {
                    for r in 0..right {
                        let mut acc = 0.0;
                        for j in 0..d {
                            acc += a[i * d + j] * x[(l * d + j) * right + r];
                        }
                        y[(l * d + i) * right + r] = acc;
                    }
                }
            }
            y
        }

        /// `H_(n) G_(n)ᵀ`.
        pub fn unfold_product(h: &[f64], g: &[f64], dims: &[usize], n: usize) -> Mat {
            let (left, d, right) = split(dims, n);
            let mut m = vec![0.0; d * d];
            for l in 0..left {
                for r in 0..right {
                    for i in 0..d {
                        for j in 0..d {
                            m[i * d + j] += h[(l * d + i) * right + r] * g[(l * d + j) * right + r];
                        }
                    }
                }
            }
            m
        }

        pub struct Knobs {
            pub beta2: f64,
            pub alpha1: f64,
            pub alpha2: f64,
            pub damping: f64,
            pub kappa: f64,
            pub period: usize,
            /// Per squeezed axis: is the factor diagonal?
            pub diagonal: Vec<bool>,
        }

        pub struct Run<'a> {
            pub dims: &'a [usize],
            pub theta: Vec<f64>,
            pub grads: &'a [Vec<f64>],
            pub lrs: &'a [f64],
            pub batch_sizes: &'a [usize],
        }

        /// θ after every step of ALGORITHMS.md 1b, and the factors at the end.
        pub fn if_shampoo(k: &Knobs, run: Run) -> (Vec<f64>, Vec<Mat>) {
            let dims = run.dims;
            let order = dims.len();
            let mut theta = run.theta;
            let mut factors: Vec<Mat> = dims.iter().map(|&d| eye(d)).collect();
            let mut momenta: Vec<Mat> = dims.iter().map(|&d| vec![0.0; d * d]).collect();
            let mut buf = vec![0.0; theta.len()];
            for (t, g) in run.grads.iter().enumerate() {
                let b = run.batch_sizes[t] as f64;
                if t % k.period == 0 {
                    let mut new_factors = factors.clone();
                    for n in 0..order {
                        let d = dims[n];
                        let mut h = g.clone();
                        let mut d_minus = 1.0;
                        let mut traces = 1.0;
                        for m in (0..order).filter(|&m| m != n) {
                            let km = &factors[m];
                            let kkt = matmul(km, &transpose(km, dims[m]), dims[m]);
                            h = mode(&h, dims, m, &kkt);
                            d_minus *= dims[m] as f64;
                            traces *= km.iter().map(|x| x * x).sum::<f64>();
                        }
                        let kn = &factors[n];
                        let knt = transpose(kn, d);
                        let hg = unfold_product(&h, g, dims, n);
                        let curvature = matmul(&matmul(&knt, &hg, d), kn, d);
                        let ktk = matmul(&knt, kn, d);
                        let mut step = vec![0.0; d * d];
                        for i in 0..d {
                            for j in 0..d {
                                let identity = if i == j { d_minus } else { 0.0 };
                                let off = i != j && k.diagonal[n];
                                step[i * d + j] = if off {
                                    0.0
                                } else {
                                    (b * curvature[i * d + j] + k.damping * traces * ktk[i * d + j]
                                        - identity)
                                        / (2.0 * d_minus)
                                };
                            }
                        }
                        let mn = &mut momenta[n];
                        for (m, s) in mn.iter_mut().zip(&step) {
                            *m = k.alpha2 * *m + (1.0 - k.alpha2) * s;
                        }
                        let norm = mn.iter().map(|x| x * x).sum::<f64>().sqrt();
                        let rate = k.beta2 / norm.max(1.0);
                        let km = matmul(kn, mn, d);
                        for (x, y) in new_factors[n].iter_mut().zip(&km) {
                            *x -= rate * y;
                        }
                    }
                    factors = new_factors;
                }
                let mut delta = g.clone();
                for n in 0..order {
                    let kkt = matmul(&factors[n], &transpose(&factors[n], dims[n]), dims[n]);
                    delta = mode(&delta, dims, n, &kkt);
                }
                for i in 0..theta.len() {
                    let d = delta[i] + k.kappa * theta[i];
                    buf[i] = k.alpha1 * buf[i] + d;
                    theta[i] -= run.lrs[t] * buf[i];
                }
            }
            (theta, factors)
        }
    }

    use reference::{if_shampoo, Knobs, Run};

    const STEPS: usize = 5;
    const LRS: [f64; STEPS] = [0.1, 0.05, 0.1, 0.2, 0.1];
    const BATCH_SIZES: [usize; STEPS] = [4, 4, 8, 2, 4];

    fn gradients(numel: usize) -> Vec<Vec<f64>> {
        (0..STEPS)
            .map(|t| {
                (0..numel)
                    .map(|i| {
                        let x = 0.37 * i as f64 + 1.3 * t as f64 + 0.2;
                        // f32-representable, so the reference and the optimizer see the same data.
                        (0.8 * x.sin() + 0.1 * (2.0 * x).cos()) as f32 as f64
                    })
                    .collect()
            })
            .collect()
    }

    fn initial_theta(numel: usize) -> Vec<f64> {
        (0..numel)
            .map(|i| ((0.5 * i as f64).cos() as f32) as f64)
            .collect()
    }

    fn config() -> IfShampooConfig {
        IfShampooConfig::new(4)
            .with_beta2(0.3)
            .with_momentum(0.8)
            .with_factor_momentum(0.5)
            .with_damping(0.1)
            .with_weight_decay(0.05)
            .with_update_every(2)
    }

    fn knobs(diagonal: Vec<bool>) -> Knobs {
        Knobs {
            beta2: 0.3,
            alpha1: 0.8,
            alpha2: 0.5,
            damping: 0.1,
            kappa: 0.05,
            period: 2,
            diagonal,
        }
    }

    fn f32s(x: &[f64]) -> Vec<f32> {
        x.iter().map(|&v| v as f32).collect()
    }

    /// Run the optimizer on a parameter of `shape` and compare with the reference on `dims` (the
    /// squeezed shape), returning the final state.
    fn check<const D: usize>(
        config: IfShampooConfig,
        shape: [usize; D],
        diagonal: Vec<bool>,
    ) -> IfShampooState<D> {
        let numel: usize = shape.iter().product();
        let dims: Vec<usize> = shape.iter().copied().filter(|&d| d != 1).collect();
        let grads = gradients(numel);
        let theta0 = initial_theta(numel);

        let optim = config.build().unwrap();
        let handle = optim.batch_size().clone();
        let mut theta = tensor::<D>(&f32s(&theta0), shape);
        let mut state = None;
        for t in 0..STEPS {
            handle.set(BATCH_SIZES[t]).unwrap();
            let grad = tensor::<D>(&f32s(&grads[t]), shape);
            let (next, next_state) = optim.step(LRS[t], theta, grad, state);
            theta = next;
            state = next_state;
        }

        let (expected, expected_factors) = if_shampoo(
            &knobs(diagonal.clone()),
            Run {
                dims: &dims,
                theta: theta0,
                grads: &grads,
                lrs: &LRS,
                batch_sizes: &BATCH_SIZES,
            },
        );
        assert_close(&values(theta), &expected, 1e-4);

        let state = state.unwrap();
        assert_eq!(state.step, STEPS);
        assert_eq!(state.factors.dims(), dims);
        for (n, (factor, expected)) in state.factors.0.iter().zip(&expected_factors).enumerate() {
            let d = dims[n];
            match factor {
                KroneckerFactor::Dense(k) => {
                    assert!(!diagonal[n], "axis {n} should be diagonal");
                    assert_close(&values(k.clone()), expected, 1e-4);
                }
                KroneckerFactor::Diagonal(k) => {
                    assert!(diagonal[n], "axis {n} should be dense");
                    let diag: Vec<f64> = (0..d).map(|i| expected[i * d + i]).collect();
                    assert_close(&values(k.clone()), &diag, 1e-4);
                }
            }
        }
        state
    }

    #[test]
    fn matrix_matches_reference() {
        check(config(), [3, 4], vec![false, false]);
    }

    #[test]
    fn vector_matches_reference() {
        check(config(), [5], vec![false]);
    }

    #[test]
    fn rank4_matches_reference() {
        check(config(), [2, 3, 2, 2], vec![false; 4]);
    }

    #[test]
    fn rank4_with_unit_axis_and_long_axes_diagonal_matches_reference() {
        // Axis of size 1 squeezed away; axes longer than max_dim = 2 get diagonal factors.
        check(
            config().with_max_dim(2),
            [3, 1, 2, 4],
            vec![true, false, true],
        );
    }

    #[test]
    fn diagonal_structure_matches_reference() {
        check(
            config().with_structure(FactorStructure::Diagonal),
            [3, 4],
            vec![true, true],
        );
    }

    #[test]
    fn factors_change_only_on_steps_divisible_by_t() {
        let optim = config().build().unwrap();
        let grads = gradients(6);
        let theta = tensor::<2>(&[0.0; 6], [2, 3]);
        let factor = |state: &IfShampooState<2>| {
            let KroneckerFactor::Dense(k) = state.factors.0[0].clone() else {
                unreachable!()
            };
            values(k)
        };
        let step = |theta, t: usize, state| {
            optim.step(0.1, theta, tensor::<2>(&f32s(&grads[t]), [2, 3]), state)
        };
        let (theta, s0) = step(theta, 0, None);
        let s0 = s0.unwrap();
        let identity = [1.0, 0.0, 0.0, 1.0];
        assert!(factor(&s0) != identity, "step 0 must update the factors");
        let (theta, s1) = step(theta, 1, Some(s0.clone()));
        let s1 = s1.unwrap();
        assert_eq!(
            factor(&s1),
            factor(&s0),
            "step 1 must not update them (T = 2)"
        );
        let (_, s2) = step(theta, 2, Some(s1.clone()));
        assert!(
            factor(&s2.unwrap()) != factor(&s1),
            "step 2 must update them"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let field = |c: IfShampooConfig| c.try_init().err().unwrap().field;
        let new = || IfShampooConfig::new(8);
        assert_eq!(field(new().with_beta2(1.0)), "beta2");
        assert_eq!(field(new().with_beta2(0.0)), "beta2");
        assert_eq!(field(new().with_momentum(1.0)), "momentum");
        assert_eq!(field(new().with_factor_momentum(-0.5)), "factor_momentum");
        assert_eq!(field(new().with_damping(-1.0)), "damping");
        assert_eq!(field(new().with_weight_decay(f64::NAN)), "weight_decay");
        assert_eq!(field(new().with_update_every(0)), "update_every");
        assert_eq!(field(new().with_max_dim(0)), "max_dim");
        let err = IfShampooConfig::new(0).try_init().err().unwrap();
        assert_eq!(err.field, "batch_size");
        assert!(err.to_string().contains("IfShampooConfig"), "{err}");
    }

    #[test]
    fn save_load_resumes_identically() {
        // T = 2: the step after the round trip (the third) updates the factors from the restored
        // factor momenta.
        assert_resume(|| {
            IfShampooConfig {
                batch_size: 2,
                ..config()
            }
            .init()
        });
    }

    #[test]
    fn half_precision_parameters_keep_their_dtype() {
        // Axis 1 (size 4) above max_dim: one dense and one diagonal factor.
        let optim = config().with_max_dim(3).build().unwrap();
        assert_half_precision_tracks_f32(&optim, FloatDType::F16, 1e-2);
        assert_half_precision_tracks_f32(&optim, FloatDType::BF16, 3e-2);
        let theta = tensor::<2>(&[0.5; 8], [2, 4]).cast(FloatDType::F16);
        let (_, state) = optim.step(0.1, theta.clone(), theta, None);
        for factor in state.unwrap().factors.0 {
            let dtype = match factor {
                KroneckerFactor::Dense(k) => k.dtype(),
                KroneckerFactor::Diagonal(k) => k.dtype(),
            };
            assert_eq!(dtype, DType::F16);
        }
    }

    #[test]
    fn decreases_least_squares_loss() {
        assert_decreases_least_squares(|| IfShampooConfig::new(16).init(), 0.05);
    }

    #[test]
    fn a_state_that_does_not_fit_restarts_that_parameter_instead_of_panicking() {
        let optim = config().build().unwrap();
        let grad = || tensor::<2>(&f32s(&gradients(6)[0]), [2, 3]);
        let theta = tensor::<2>(&[0.0; 6], [2, 3]);
        let (_, fresh) = optim.step(0.1, theta.clone(), grad(), None);
        let fresh = fresh.unwrap();

        // Factors of a [3, 2] parameter offered to a [2, 3] one (e.g. a record loaded into a
        // model whose layers were reordered), and a diagonal factor where the config says dense.
        let (_, other_shape) = optim.step(
            0.1,
            tensor::<2>(&[0.0; 6], [3, 2]),
            grad().reshape([3, 2]),
            None,
        );
        let mut wrong_structure = fresh.clone();
        wrong_structure.factor_momenta.0[0] =
            KroneckerFactor::Diagonal(tensor::<1>(&[0.0, 0.0], [2]));
        for bad in [other_shape.unwrap(), wrong_structure] {
            let (after_bad, state) = optim.step(0.1, theta.clone(), grad(), Some(bad));
            assert_eq!(
                state.unwrap().step,
                1,
                "a misfit state is replaced by a fresh one"
            );
            let (after_none, _) = optim.step(0.1, theta.clone(), grad(), None);
            assert_eq!(values(after_bad), values(after_none));
        }
    }
}
