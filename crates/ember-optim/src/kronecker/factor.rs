//! Kronecker factors (dense or diagonal) and the mode-n products that apply them to a tensor.

use burn::config::Config;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::transform::in_dtype;
use crate::{RecordState, StateSink, StateSource};

/// The structure of one Kronecker factor.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum FactorStructure {
    /// A full `d × d` matrix.
    Dense,
    /// A diagonal matrix, stored as its `d` diagonal entries.
    Diagonal,
}

/// One Kronecker factor of a preconditioner, acting on one axis of a parameter tensor.
///
/// Every operation keeps the structure: the product of two diagonal factors is diagonal, and a
/// diagonal factor's `gram` is the diagonal of the dense one (the projection the structured
/// IF-Shampoo uses).
#[derive(Clone, Debug)]
pub enum KroneckerFactor {
    /// A `d × d` matrix.
    Dense(Tensor<2>),
    /// The diagonal of a `d × d` matrix.
    Diagonal(Tensor<1>),
}

impl KroneckerFactor {
    /// `c·I` with the given structure, in `dtype` on `device`.
    pub(crate) fn scaled_identity(
        dim: usize,
        value: f64,
        structure: FactorStructure,
        device: &Device,
        dtype: DType,
    ) -> Self {
        match structure {
            FactorStructure::Dense => {
                Self::Dense(in_dtype(Tensor::<2>::eye(dim, device), dtype).mul_scalar(value))
            }
            FactorStructure::Diagonal => {
                Self::Diagonal(Tensor::<1>::full([dim], value, (device, dtype)))
            }
        }
    }

    /// The factor's structure.
    pub fn structure(&self) -> FactorStructure {
        match self {
            Self::Dense(_) => FactorStructure::Dense,
            Self::Diagonal(_) => FactorStructure::Diagonal,
        }
    }

    /// The device the factor lives on.
    pub(crate) fn device(&self) -> Device {
        match self {
            Self::Dense(k) => k.device(),
            Self::Diagonal(k) => k.device(),
        }
    }

    /// The size `d` of the axis the factor acts on.
    pub fn dim(&self) -> usize {
        match self {
            Self::Dense(k) => k.dims()[0],
            Self::Diagonal(k) => k.dims()[0],
        }
    }

    /// Apply `f` to the stored tensor, whichever the structure.
    fn map(
        self,
        dense: impl FnOnce(Tensor<2>) -> Tensor<2>,
        diagonal: impl FnOnce(Tensor<1>) -> Tensor<1>,
    ) -> Self {
        match self {
            Self::Dense(k) => Self::Dense(dense(k)),
            Self::Diagonal(k) => Self::Diagonal(diagonal(k)),
        }
    }

    /// Element-wise combination of two factors of the same structure.
    fn zip(
        self,
        other: Self,
        dense: impl FnOnce(Tensor<2>, Tensor<2>) -> Tensor<2>,
        diagonal: impl FnOnce(Tensor<1>, Tensor<1>) -> Tensor<1>,
    ) -> Self {
        match (self, other) {
            (Self::Dense(a), Self::Dense(b)) => Self::Dense(dense(a, b)),
            (Self::Diagonal(a), Self::Diagonal(b)) => Self::Diagonal(diagonal(a, b)),
            // Factors of one state are built with one structure per axis, and a loaded state is
            // checked with `KroneckerFactors::fit` before any step combines them.
            _ => unreachable!("Kronecker factors of different structures cannot be combined"),
        }
    }

    /// `K + M`.
    pub(crate) fn plus(self, other: Self) -> Self {
        self.zip(other, |a, b| a.add(b), |a, b| a.add(b))
    }

    /// `c·K`.
    pub(crate) fn mul_scalar(self, c: f64) -> Self {
        self.map(|k| k.mul_scalar(c), |k| k.mul_scalar(c))
    }

    /// `c·K` for a one-element tensor `c` (kept on the device: no host synchronisation).
    pub(crate) fn mul_by(self, c: Tensor<1>) -> Self {
        let c2 = c.clone().reshape([1, 1]);
        self.map(|k| k.mul(c2), |k| k.mul(c))
    }

    /// `K + c·I`.
    pub(crate) fn add_identity(self, c: f64) -> Self {
        self.map(
            |k| {
                let eye = in_dtype(Tensor::<2>::eye(k.dims()[0], &k.device()), k.dtype());
                k.add(eye.mul_scalar(c))
            },
            |k| k.add_scalar(c),
        )
    }

    /// The matrix product `K M`.
    pub(crate) fn matmul(self, other: Self) -> Self {
        self.zip(other, |a, b| a.matmul(b), |a, b| a.mul(b))
    }

    /// `K Kᵀ`.
    pub(crate) fn gram_of_rows(self) -> Self {
        self.map(|k| k.clone().matmul(k.transpose()), |k| k.square())
    }

    /// `Kᵀ K`.
    pub(crate) fn gram_of_columns(self) -> Self {
        self.map(|k| k.clone().transpose().matmul(k), |k| k.square())
    }

    /// `‖K‖_F²` as a one-element tensor.
    pub(crate) fn squared_frobenius_norm(&self) -> Tensor<1> {
        match self {
            Self::Dense(k) => k.clone().square().sum(),
            Self::Diagonal(k) => k.clone().square().sum(),
        }
    }

    /// `max |K_ij|` as a one-element tensor.
    pub(crate) fn abs_max(&self) -> Tensor<1> {
        match self {
            Self::Dense(k) => k.clone().abs().max(),
            Self::Diagonal(k) => k.clone().abs().max(),
        }
    }

    /// Move to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        self.map(|k| k.to_device(device), |k| k.to_device(device))
    }

    /// Cast to `dtype` (a no-op when it already is).
    pub(crate) fn in_dtype(self, dtype: DType) -> Self {
        self.map(|k| in_dtype(k, dtype), |k| in_dtype(k, dtype))
    }

    fn into_data(self) -> TensorData {
        match self {
            Self::Dense(k) => k.into_data(),
            Self::Diagonal(k) => k.into_data(),
        }
    }

    /// A rank-2 record is a dense factor, a rank-1 record a diagonal one; the dtype is kept.
    fn from_data(data: TensorData, device: &Device) -> Option<Self> {
        let dtype = data.dtype();
        match data.rank() {
            2 => Some(Self::Dense(Tensor::from_data(data, (device, dtype)))),
            1 => Some(Self::Diagonal(Tensor::from_data(data, (device, dtype)))),
            _ => None,
        }
    }
}

/// One factor per axis, recorded as `{prefix}.len` and tensors `{prefix}.0`, `{prefix}.1`, … (a
/// rank-2 tensor for a dense factor, rank-1 for a diagonal one).
#[derive(Clone, Debug)]
pub struct KroneckerFactors(pub Vec<KroneckerFactor>);

impl RecordState for KroneckerFactors {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "len", burn_pack::Scalar::from(self.0.len()));
        for (index, factor) in self.0.iter().enumerate() {
            out.push_tensor(prefix, &index.to_string(), factor.clone().into_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let len = usize::try_from(src.take_scalar(prefix, "len")?).ok()?;
        let factors = (0..len)
            .map(|index| {
                let data = src.take_tensor(prefix, &index.to_string())?;
                KroneckerFactor::from_data(data, device)
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self(factors))
    }
}

impl KroneckerFactors {
    /// Move every factor to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self(self.0.into_iter().map(|f| f.to_device(device)).collect())
    }

    /// Cast every factor to `dtype`.
    pub(crate) fn in_dtype(self, dtype: DType) -> Self {
        Self(self.0.into_iter().map(|f| f.in_dtype(dtype)).collect())
    }

    /// The axis sizes the factors act on.
    pub fn dims(&self) -> Vec<usize> {
        self.0.iter().map(KroneckerFactor::dim).collect()
    }

    /// Whether these are factors for axes of sizes `dims`, each with the structure
    /// `structure_for(d)` and its shape (`d × d` dense, `d` diagonal): what a state loaded from a
    /// record must satisfy before a step may combine it with a gradient.
    pub(crate) fn fit(
        &self,
        dims: &[usize],
        structure_for: impl Fn(usize) -> FactorStructure,
    ) -> bool {
        self.0.len() == dims.len()
            && self.0.iter().zip(dims).all(|(factor, &d)| {
                factor.structure() == structure_for(d)
                    && match factor {
                        KroneckerFactor::Dense(k) => k.dims() == [d, d],
                        KroneckerFactor::Diagonal(k) => k.dims() == [d],
                    }
            })
    }
}

/// Whether every factor set of a state loaded from a record fits a parameter of `shape` (see
/// [`KroneckerFactors::fit`]). When one does not, logs a warning naming `optimizer`: the caller then
/// starts that parameter from fresh factors, burn's rule for states it cannot reconstruct.
pub(crate) fn loaded_state_fits(
    optimizer: &str,
    shape: &[usize],
    sets: &[&KroneckerFactors],
    structure_for: impl Fn(usize) -> FactorStructure,
) -> bool {
    let axes = TensorAxes::of(shape);
    let fits = sets
        .iter()
        .all(|factors| factors.fit(axes.dims(), &structure_for));
    if !fits {
        log::warn!(
            "{optimizer}: a loaded state does not fit a parameter of shape {shape:?} with this \
             config's factor structure; that parameter starts from fresh factors"
        );
    }
    fits
}

/// The axes a parameter is preconditioned along: its shape with size-1 axes removed (a tensor
/// with a single element keeps one axis of size 1).
///
/// Tensors are handled flat, in row-major order; axis `n` is reached by viewing the flat tensor as
/// `[left, d_n, right]` (`left` = product of the sizes before `n`, `right` after), so mode-n
/// products are batched matmuls and no permutation is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TensorAxes {
    dims: Vec<usize>,
}

impl TensorAxes {
    /// The axes of a tensor of shape `shape`.
    pub(crate) fn of(shape: &[usize]) -> Self {
        let mut dims: Vec<usize> = shape.iter().copied().filter(|&d| d != 1).collect();
        if dims.is_empty() {
            dims.push(1);
        }
        Self { dims }
    }

    /// The sizes of the kept axes.
    pub(crate) fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The number of elements.
    pub(crate) fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    #[cfg(test)]
    fn view(&self, x: Tensor<1>, n: usize) -> Tensor<3> {
        let left = self.dims[..n].iter().product::<usize>();
        let right = self.dims[n + 1..].iter().product::<usize>();
        x.reshape([left, self.dims[n], right])
    }

    /// The mode-n product `X ×_n A` (`A` or, with `transpose`, `Aᵀ`, multiplied onto axis `n`), one
    /// axis at a time: the reference [`multilinear`](Self::multilinear) is tested against.
    /// `Y_(n) = A X_(n)`.
    #[cfg(test)]
    pub(crate) fn mode_product(
        &self,
        x: Tensor<1>,
        n: usize,
        factor: &KroneckerFactor,
        transpose: bool,
    ) -> Tensor<1> {
        let numel = self.numel();
        let x = self.view(x, n);
        let y = match factor {
            KroneckerFactor::Dense(a) => {
                let a = if transpose {
                    a.clone().transpose()
                } else {
                    a.clone()
                };
                a.unsqueeze::<3>().matmul(x)
            }
            KroneckerFactor::Diagonal(a) => x.mul(a.clone().reshape([1, self.dims[n], 1])),
        };
        y.reshape([numel])
    }

    /// `X ×_1 A_1 ×_2 A_2 … ×_N A_N` (each `A_n`, or `A_nᵀ` with `transpose`) as one matrix
    /// product per axis.
    ///
    /// X starts as its `[d_1, rest]` unfolding; after `A_1` is applied the `[d_1, rest]` result is
    /// transposed to `[rest, d_1]`, which read row-major is the tensor with its axes rotated to
    /// `(d_2, …, d_N, d_1)`, i.e. the `[d_2, rest]` unfolding of the next step. After N steps the
    /// axes are back in order. Every product is one `d_n × d_n` by `d_n × rest` matmul (a
    /// broadcast `[1, d, d]` over `[left, d, right]` would be `left` tiny matmuls for a conv
    /// kernel's 3 × 3 axes), at the price of one transposed copy per axis.
    pub(crate) fn multilinear(
        &self,
        x: Tensor<1>,
        factors: &[KroneckerFactor],
        transpose: bool,
    ) -> Tensor<1> {
        let numel = self.numel();
        let order = self.dims.len();
        let mut x = x.reshape([self.dims[0], numel / self.dims[0]]);
        for (n, factor) in factors.iter().enumerate() {
            let y = match factor {
                KroneckerFactor::Dense(a) if transpose => a.clone().transpose().matmul(x),
                KroneckerFactor::Dense(a) => a.clone().matmul(x),
                KroneckerFactor::Diagonal(a) => x.mul(a.clone().reshape([self.dims[n], 1])),
            };
            let next = self.dims[(n + 1) % order];
            x = y.transpose().reshape([next, numel / next]);
        }
        x.reshape([numel])
    }

    /// `X_(n) X_(n)ᵀ` for every axis n (or its diagonal, by `structures[n]`), walking the
    /// unfoldings by the same rotation as [`multilinear`](Self::multilinear): the column order of
    /// a rotated unfolding differs from the mode-n unfolding's, which a Gram matrix does not see.
    pub(crate) fn grams(
        &self,
        x: Tensor<1>,
        structures: &[FactorStructure],
    ) -> Vec<KroneckerFactor> {
        let numel = self.numel();
        let order = self.dims.len();
        let mut x = x.reshape([self.dims[0], numel / self.dims[0]]);
        let mut grams = Vec::with_capacity(order);
        for (n, structure) in structures.iter().enumerate() {
            grams.push(match structure {
                FactorStructure::Dense => {
                    KroneckerFactor::Dense(x.clone().matmul(x.clone().transpose()))
                }
                FactorStructure::Diagonal => {
                    KroneckerFactor::Diagonal(x.clone().square().sum_dim(1).reshape([self.dims[n]]))
                }
            });
            if n + 1 < order {
                let next = self.dims[n + 1];
                x = x.transpose().reshape([next, numel / next]);
            }
        }
        grams
    }

    /// `X_(n) X_(n)ᵀ` (the mode-n unfolding times its transpose), or its diagonal.
    #[cfg(test)]
    pub(crate) fn gram(
        &self,
        x: Tensor<1>,
        n: usize,
        structure: FactorStructure,
    ) -> KroneckerFactor {
        let d = self.dims[n];
        let x = self.view(x, n);
        match structure {
            FactorStructure::Dense => {
                let rest = self.numel() / d;
                let unfolded = x.swap_dims(0, 1).reshape([d, rest]);
                KroneckerFactor::Dense(unfolded.clone().matmul(unfolded.transpose()))
            }
            FactorStructure::Diagonal => {
                KroneckerFactor::Diagonal(x.square().sum_dim(2).sum_dim(0).reshape([d]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, device, tensor, values};

    fn dense(values: &[f32], d: usize) -> KroneckerFactor {
        KroneckerFactor::Dense(tensor::<2>(values, [d, d]))
    }

    #[test]
    fn axes_squeeze_size_one() {
        assert_eq!(TensorAxes::of(&[3, 1, 4]).dims(), &[3, 4]);
        assert_eq!(TensorAxes::of(&[1, 1]).dims(), &[1]);
        assert_eq!(TensorAxes::of(&[5]).dims(), &[5]);
    }

    #[test]
    fn mode_product_on_middle_axis() {
        // X of shape [2, 2, 2] with X[l, j, r] = 4l + 2j + r; A = [[1, 2], [3, 4]] on axis 1.
        let axes = TensorAxes::of(&[2, 2, 2]);
        let x = tensor::<1>(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [8]);
        let a = dense(&[1.0, 2.0, 3.0, 4.0], 2);
        let y = values(axes.mode_product(x.clone(), 1, &a, false));
        let mut expected = vec![0.0f64; 8];
        for l in 0..2 {
            for i in 0..2 {
                for r in 0..2 {
                    expected[4 * l + 2 * i + r] = (0..2)
                        .map(|j| [1.0, 2.0, 3.0, 4.0][2 * i + j] * (4 * l + 2 * j + r) as f64)
                        .sum();
                }
            }
        }
        assert_close(&y, &expected, 1e-6);
        // Transposed.
        let yt = values(axes.mode_product(x, 1, &a, true));
        for l in 0..2 {
            for i in 0..2 {
                for r in 0..2 {
                    expected[4 * l + 2 * i + r] = (0..2)
                        .map(|j| [1.0, 2.0, 3.0, 4.0][2 * j + i] * (4 * l + 2 * j + r) as f64)
                        .sum();
                }
            }
        }
        assert_close(&yt, &expected, 1e-6);
    }

    #[test]
    fn gram_and_its_diagonal() {
        // X of shape [2, 3]: unfolding along axis 1 is Xᵀ (3 × 2), so the gram is XᵀX.
        let axes = TensorAxes::of(&[2, 3]);
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let KroneckerFactor::Dense(g) = axes.gram(tensor::<1>(&x, [6]), 1, FactorStructure::Dense)
        else {
            panic!("dense expected")
        };
        let mut expected = vec![0.0f64; 9];
        for i in 0..3 {
            for j in 0..3 {
                expected[3 * i + j] = (0..2).map(|l| (x[3 * l + i] * x[3 * l + j]) as f64).sum();
            }
        }
        assert_close(&values(g), &expected, 1e-6);
        let KroneckerFactor::Diagonal(diag) =
            axes.gram(tensor::<1>(&x, [6]), 1, FactorStructure::Diagonal)
        else {
            panic!("diagonal expected")
        };
        assert_close(
            &values(diag),
            &[expected[0], expected[4], expected[8]],
            1e-6,
        );
    }

    #[test]
    fn factors_round_trip_with_structure_and_dtype() {
        let factors = KroneckerFactors(vec![
            dense(&[1.0, 2.0, 3.0, 4.0], 2),
            KroneckerFactor::Diagonal(tensor::<1>(&[5.0, 6.0, 7.0], [3])),
        ]);
        let mut sink = StateSink::default();
        factors.state_flatten("p.factors", &mut sink);
        let mut src = StateSource::new(sink.scalars.into_iter().collect());
        for (name, data) in sink.tensors {
            src.insert_tensor(name, data);
        }
        let back = KroneckerFactors::state_unflatten("p.factors", &mut src, &device()).unwrap();
        assert_eq!(back.dims(), vec![2, 3]);
        assert_eq!(back.0[0].structure(), FactorStructure::Dense);
        assert_eq!(back.0[1].structure(), FactorStructure::Diagonal);
        let KroneckerFactor::Diagonal(d) = back.0[1].clone() else {
            unreachable!()
        };
        assert_close(&values(d), &[5.0, 6.0, 7.0], 0.0);
    }

    fn mixed_factors() -> (TensorAxes, Tensor<1>, Vec<KroneckerFactor>) {
        let axes = TensorAxes::of(&[2, 3, 4]);
        let x: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let a0 = dense(&[1.0, -2.0, 0.5, 3.0], 2);
        let a1 = KroneckerFactor::Diagonal(tensor::<1>(&[2.0, -1.0, 0.25], [3]));
        let a2: Vec<f32> = (0..16).map(|i| ((i * 5 % 7) as f32 - 3.0) / 2.0).collect();
        let a2 = dense(&a2, 4);
        (axes, tensor::<1>(&x, [24]), vec![a0, a1, a2])
    }

    #[test]
    fn multilinear_matches_successive_mode_products() {
        let (axes, x, factors) = mixed_factors();
        for transpose in [false, true] {
            let mut expected = x.clone();
            for (n, factor) in factors.iter().enumerate() {
                expected = axes.mode_product(expected, n, factor, transpose);
            }
            let expected: Vec<f64> = values(expected).iter().map(|&v| v as f64).collect();
            let actual = values(axes.multilinear(x.clone(), &factors, transpose));
            assert_close(&actual, &expected, 1e-5);
        }
    }

    #[test]
    fn grams_match_the_mode_n_grams() {
        let (axes, x, _) = mixed_factors();
        let structures = [
            FactorStructure::Dense,
            FactorStructure::Diagonal,
            FactorStructure::Dense,
        ];
        let grams = axes.grams(x.clone(), &structures);
        for (n, (gram, structure)) in grams.into_iter().zip(structures).enumerate() {
            let expected = axes.gram(x.clone(), n, structure);
            let (actual, expected) = match (gram, expected) {
                (KroneckerFactor::Dense(a), KroneckerFactor::Dense(e)) => (values(a), values(e)),
                (KroneckerFactor::Diagonal(a), KroneckerFactor::Diagonal(e)) => {
                    (values(a), values(e))
                }
                _ => panic!("axis {n}: structure changed"),
            };
            let expected: Vec<f64> = expected.iter().map(|&v| v as f64).collect();
            assert_close(&actual, &expected, 1e-5);
        }
    }
}
