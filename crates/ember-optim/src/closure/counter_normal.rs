//! Standard normals generated on the device by a counter-based generator: element `i` of a stream
//! is a pure function of the stream's key and `i`, so any stream can be regenerated anywhere (a
//! resumed run, another device) without a generator to carry, and a GPU draws the `d` numbers of a
//! direction without a host loop or a host-to-device copy.
//!
//! Element `i` of the stream keyed `k = (k₀, k₁, k₂, k₃)` (four 32-bit words):
//!
//! ```text
//! hᵃ = mix(mix(i + k₀ mod 2³²) ⊕ k₁),   hᵇ = mix(mix(i + k₂ mod 2³²) ⊕ k₃)
//! u₁ = (⌊hᵃ / 2⁸⌋ + ½) / 2²⁴,           u₂ = (⌊hᵇ / 2⁸⌋ + ½) / 2²⁴        (both in (0, 1))
//! zᵢ = √(−2 ln u₁) · cos(2π u₂)                                          (Box–Muller)
//! ```
//!
//! `mix` is a 32-bit integer hash of the xor-shift-multiply family (two rounds; multipliers below
//! 2³¹, so that every product of a 32-bit value fits a signed 64-bit integer exactly: the device
//! computes in `i64` with no overflow, whatever the backend's overflow rules). The key comes from
//! the run's seed, the step (or epoch), the direction index and the parameter's position, mixed on
//! the host by SplitMix64 ([`DirectionKey::words`]).
//!
//! Devices without 64-bit integers (WGSL-only adapters) draw the same stream on the host
//! ([`host_normals`]) and upload it; the numbers agree with the device's to float rounding.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};

/// The two multipliers of [`mix`], odd and below 2³¹.
const MIX: [u64; 2] = [0x21f0_aaad, 0x735a_2d97];
/// The two right-shifts of each round of [`mix`], then the final one.
const SHIFTS: [u64; 3] = [16, 15, 15];
const LOW_32: i64 = 0xFFFF_FFFF;

/// What a direction of a zeroth-order estimate is drawn from: the run's seed, the step (ZO-SGD) or
/// epoch (VAMO) it belongs to, and its index `j` among the step's directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DirectionKey {
    pub seed: u64,
    pub step: u64,
    pub j: u64,
}

impl DirectionKey {
    /// The four 32-bit key words of parameter number `parameter` (its position in the model's
    /// visiting order): distinct `(seed, step, j, parameter)` give unrelated words.
    pub fn words(&self, parameter: usize) -> [u32; 4] {
        let mut state = splitmix64(self.seed ^ 0x5A0D_1EC7_0000_0000);
        for word in [self.step, self.j, parameter as u64] {
            state = splitmix64(state ^ splitmix64(word));
        }
        let second = splitmix64(state);
        [
            state as u32,
            (state >> 32) as u32,
            second as u32,
            (second >> 32) as u32,
        ]
    }
}

/// SplitMix64's output function of `z + γ`: a bijection that spreads every input bit.
fn splitmix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 32-bit hash `mix` on the host: the reference the device version is tested against.
fn mix(x: u32) -> u32 {
    let mut x = x ^ (x >> SHIFTS[0]);
    x = x.wrapping_mul(MIX[0] as u32);
    x ^= x >> SHIFTS[1];
    x = x.wrapping_mul(MIX[1] as u32);
    x ^ (x >> SHIFTS[2])
}

/// `(⌊h / 2⁸⌋ + ½) / 2²⁴` of element `i` under key words `a`, `b`.
fn uniform(i: u32, a: u32, b: u32) -> f64 {
    let h = mix(mix(i.wrapping_add(a)) ^ b);
    ((h >> 8) as f64 + 0.5) / (1u64 << 24) as f64
}

/// The first `n` normals of the stream keyed `words`, on the host (f64).
pub(crate) fn host_normals(words: [u32; 4], n: usize) -> Vec<f64> {
    (0..n as u32)
        .map(|i| {
            let u1 = uniform(i, words[0], words[1]);
            let u2 = uniform(i, words[2], words[3]);
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}

/// Whether `device` can run the generator itself (it needs 64-bit integers).
pub(crate) fn generates_on(device: &Device) -> bool {
    device.supports_dtype(DType::I64)
}

/// The first `n` normals of the stream keyed `words` as a tensor on `device`: computed there when
/// it has 64-bit integers, else on the host and uploaded.
pub(crate) fn normals(words: [u32; 4], n: usize, device: &Device) -> Tensor<1> {
    if !generates_on(device) {
        let values: Vec<f32> = host_normals(words, n)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        return Tensor::from_data(TensorData::new(values, [n]), device);
    }
    let counters = Tensor::<1, Int>::arange(0..n as i64, (device, DType::I64));
    let uniform = |a: u32, b: u32| {
        let h = device_mix(
            device_mix(
                counters
                    .clone()
                    .add_scalar(i64::from(a))
                    .bitwise_and_scalar(LOW_32),
            )
            .bitwise_xor_scalar(i64::from(b)),
        );
        h.bitwise_right_shift_scalar(8)
            .float()
            .add_scalar(0.5)
            .div_scalar((1u64 << 24) as f64)
    };
    let u1 = uniform(words[0], words[1]);
    let u2 = uniform(words[2], words[3]);
    u1.log()
        .mul_scalar(-2.0)
        .sqrt()
        .mul(u2.mul_scalar(std::f64::consts::TAU).cos())
}

/// [`mix`] on a tensor of values in `[0, 2³²)` held as `i64`: every product stays below 2⁶³, and
/// the mask after it keeps the low 32 bits, as `u32` arithmetic wraps.
fn device_mix(x: Tensor<1, Int>) -> Tensor<1, Int> {
    let xor_shift = |x: Tensor<1, Int>, shift: u64| {
        x.clone()
            .bitwise_xor(x.bitwise_right_shift_scalar(shift as i64))
    };
    let x = xor_shift(x, SHIFTS[0]);
    let x = xor_shift(
        x.mul_scalar(MIX[0] as i64).bitwise_and_scalar(LOW_32),
        SHIFTS[1],
    );
    xor_shift(
        x.mul_scalar(MIX[1] as i64).bitwise_and_scalar(LOW_32),
        SHIFTS[2],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_matches_hand_computed_values() {
        // mix(0) = 0 (every step maps 0 to 0); mix(1) step by step: the first xor-shift leaves 1,
        // the first product is the first multiplier itself.
        assert_eq!(mix(0), 0);
        let x = 0x21f0_aaad_u32;
        let x = x ^ (x >> 15);
        let x = x.wrapping_mul(0x735a_2d97);
        assert_eq!(mix(1), x ^ (x >> 15));
        // A bijection on a sample: no two of 2¹⁶ consecutive inputs collide.
        let mut seen: Vec<u32> = (0..1u32 << 16)
            .map(|i| mix(i.wrapping_mul(40_503)))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1 << 16);
    }

    #[test]
    fn device_normals_equal_the_host_reference() {
        let device = Device::flex();
        assert!(generates_on(&device));
        let key = DirectionKey {
            seed: 7,
            step: 3,
            j: 2,
        };
        for (parameter, n) in [(0, 1), (1, 257), (5, 4099)] {
            let words = key.words(parameter);
            let host = host_normals(words, n);
            let got: Vec<f32> = normals(words, n, &device)
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(got.len(), n);
            for (i, (a, b)) in got.iter().zip(&host).enumerate() {
                assert!(
                    (f64::from(*a) - b).abs() < 2e-5 * b.abs().max(1.0),
                    "element {i} of parameter {parameter}: device {a}, host {b}"
                );
            }
        }
    }

    #[test]
    fn streams_are_standard_normal_and_unrelated() {
        let n = 8192;
        let keys = [
            (0, 0, 0, 0),
            (0, 0, 0, 1),
            (0, 0, 1, 0),
            (0, 1, 0, 0),
            (1, 0, 0, 0),
            (3, 7, 2, 0),
            (3, 2, 7, 0),
            (42, 1000, 0, 3),
        ];
        let streams: Vec<Vec<f64>> = keys
            .iter()
            .map(|&(seed, step, j, p)| host_normals(DirectionKey { seed, step, j }.words(p), n))
            .collect();
        // Standard errors at n = 8192: mean 0.011, variance 0.016, correlation 0.011; bounds ≈ 5.
        let nf = n as f64;
        for (key, s) in keys.iter().zip(&streams) {
            let mean = s.iter().sum::<f64>() / nf;
            let var = s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / nf;
            let kurtosis = s.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / nf / var.powi(2);
            assert!(mean.abs() < 0.055, "{key:?}: mean {mean}");
            assert!((var - 1.0).abs() < 0.08, "{key:?}: variance {var}");
            assert!((kurtosis - 3.0).abs() < 0.3, "{key:?}: kurtosis {kurtosis}");
            // Tails as a normal's: P(|z| > 2) ≈ 0.0455.
            let tail = s.iter().filter(|x| x.abs() > 2.0).count() as f64 / nf;
            assert!((tail - 0.0455).abs() < 0.012, "{key:?}: tail {tail}");
        }
        let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
        for a in 0..streams.len() {
            for b in a + 1..streams.len() {
                let (x, y) = (&streams[a], &streams[b]);
                let corr = x.iter().zip(y).map(|(u, v)| u * v).sum::<f64>() / (norm(x) * norm(y));
                assert!(corr.abs() < 0.055, "{:?} vs {:?}: {corr}", keys[a], keys[b]);
            }
        }
        // Neighbouring elements of one stream are unrelated too.
        let s = &streams[0];
        let lag1 = s.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / norm(s).powi(2);
        assert!(lag1.abs() < 0.055, "lag-1 correlation {lag1}");
    }
}
