//! GELU (exact, erf-based, as burn's `gelu`) and softmax over the last axis, forward and backward,
//! on contiguous `f32` slices, spread over the threads in fixed chunks.
//!
//! burn-flex 0.22.1 evaluates GELU and its derivative one value at a time through libm's scalar
//! `erff`, which the compiler cannot vectorise; the transformer profile measured its GELU at 20×
//! PyTorch's and its softmax at 8×. Here each direction is one pass, with `exp` and `erf` written
//! as branch-free polynomials the compiler vectorises, compiled for the widest vector
//! instructions the CPU has ([`simd_versions`]).

use rayon::prelude::*;

use crate::simd::simd_versions;

/// Values per rayon task for element-wise work: large enough to amortise a task, small enough
/// to balance two cores on a transformer activation (~0.5 M values).
const CHUNK: usize = 16 * 1024;

/// `eˣ` to about 2 ulp for |x| < 87 (saturating beyond): `2ⁿ · e^r` with `n = round(x / ln 2)`,
/// `|r| ≤ ln 2 / 2`, and e^r as its degree-6 Taylor polynomial (relative error < 2e-7).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2²³: adding it rounds x / ln 2 to an integer n held in the sum's low mantissa bits
    // (no float-to-int conversion, which would keep the loop from vectorising).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2ⁿ: n + 127 in the exponent field.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// `erf(x)` to 1.5e-7 absolute (Abramowitz & Stegun 7.1.26).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let magnitude = 1.0 - poly * exp(-a * a);
    f32::from_bits(magnitude.to_bits() | (x.to_bits() & 0x8000_0000))
}

/// The standard normal CDF Φ(x) and density φ(x).
#[inline(always)]
fn normal_cdf_pdf(x: f32) -> (f32, f32) {
    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    (
        0.5 * (1.0 + erf(x * FRAC_1_SQRT_2)),
        FRAC_1_SQRT_2PI * exp(-0.5 * x * x),
    )
}

/// `gelu(x) = x · Φ(x)`.
pub fn gelu_forward(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| gelu_values(y, x));
    y
}

/// `dy · gelu'(x)`, `gelu'(x) = Φ(x) + x · φ(x)`.
pub fn gelu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "gelu backward: lengths differ");
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| gelu_grads(dx, x, dy));
    dx
}

simd_versions! {
    fn gelu_values(y: &mut [f32], x: &[f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x * normal_cdf_pdf(x).0;
        }
    }
}

simd_versions! {
    fn gelu_grads(dx: &mut [f32], x: &[f32], dy: &[f32]) {
        for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
            let (cdf, pdf) = normal_cdf_pdf(x);
            *dx = dy * (cdf + x * pdf);
        }
    }
}

/// Rows per rayon task for row-wise work, so that a task holds about [`CHUNK`] values.
fn rows_per_task(row: usize) -> usize {
    (CHUNK / row.max(1)).max(1)
}

/// Softmax of every `row`-long row of `x`: `exp(x − max) / Σ exp(x − max)`.
pub fn softmax_forward(x: &[f32], row: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    if row == 0 {
        return y;
    }
    let chunk = rows_per_task(row) * row;
    y.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .for_each(|(y, x)| softmax_rows(y, x, row));
    y
}

/// The softmax's input gradient from its output `y`: `y · (dy − Σ dy · y)` per row.
pub fn softmax_backward(y: &[f32], dy: &[f32], row: usize) -> Vec<f32> {
    assert_eq!(y.len(), dy.len(), "softmax backward: lengths differ");
    let mut dx = vec![0.0; y.len()];
    if row == 0 {
        return dx;
    }
    let chunk = rows_per_task(row) * row;
    dx.par_chunks_mut(chunk)
        .zip(y.par_chunks(chunk).zip(dy.par_chunks(chunk)))
        .for_each(|(dx, (y, dy))| softmax_grad_rows(dx, y, dy, row));
    dx
}

simd_versions! {
    fn softmax_rows(y: &mut [f32], x: &[f32], row: usize) {
        for (y, x) in y.chunks_mut(row).zip(x.chunks(row)) {
            let max = lanes(x, f32::NEG_INFINITY, |acc, v| acc.max(v), f32::max);
            for (y, &x) in y.iter_mut().zip(x) {
                *y = exp(x - max);
            }
            let inv = 1.0 / lanes(y, 0.0, |acc, v| acc + v, |a, b| a + b);
            y.iter_mut().for_each(|y| *y *= inv);
        }
    }
}

simd_versions! {
    fn softmax_grad_rows(dx: &mut [f32], y: &[f32], dy: &[f32], row: usize) {
        for ((dx, y), dy) in dx.chunks_mut(row).zip(y.chunks(row)).zip(dy.chunks(row)) {
            // y · dy into dx first, so that the dot product is a lane-wise sum of one slice.
            for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
                *dx = y * dy;
            }
            let dot = lanes(dx, 0.0, |acc, v| acc + v, |a, b| a + b);
            for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
                *dx = y * (dy - dot);
            }
        }
    }
}

/// Folds `values` into 8 interleaved accumulators (`acc[i]` takes every 8th value from `i`), then
/// combines them in order: a reduction the compiler vectorises, in the same order on every CPU.
#[inline(always)]
fn lanes(
    values: &[f32],
    init: f32,
    fold: impl Fn(f32, f32) -> f32,
    combine: impl Fn(f32, f32) -> f32,
) -> f32 {
    let mut acc = [init; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = fold(*a, v);
        }
    }
    let mut total = acc.into_iter().reduce(&combine).unwrap_or(init);
    for &v in chunks.remainder() {
        total = fold(total, v);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_the_standard_library_and_libm_closely() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.04; // −80 … 80
            let (ours, std) = (exp(x), x.exp());
            assert!(
                (ours - std).abs() <= 4.0 * f32::EPSILON * std,
                "exp({x}) = {ours}, std {std}"
            );
        }
        // erf against its defining values and symmetry.
        let table = [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
        ];
        for (x, want) in table {
            assert!((erf(x) - want).abs() < 3e-7, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() < 3e-7);
        }
    }

    #[test]
    fn gelu_derivative_is_the_finite_difference_of_gelu() {
        let x: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.1).collect();
        let dx = gelu_backward(&x, &vec![1.0; x.len()]);
        let h = 1e-2f32;
        let up = gelu_forward(&x.iter().map(|v| v + h).collect::<Vec<_>>());
        let down = gelu_forward(&x.iter().map(|v| v - h).collect::<Vec<_>>());
        for i in 0..x.len() {
            let fd = (up[i] - down[i]) / (2.0 * h);
            assert!((dx[i] - fd).abs() < 1e-3, "x = {}: {} vs {fd}", x[i], dx[i]);
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let x: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let dy: Vec<f32> = (0..1000)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 5.0)
            .collect();
        let run = |version: Option<usize>| {
            let mut outs = vec![vec![0.0; 1000]; 4];
            let [a, b, c, d] = &mut outs[..] else {
                unreachable!()
            };
            gelu_values::with(version, a, &x);
            gelu_grads::with(version, b, &x, &dy);
            softmax_rows::with(version, c, &x, 40);
            softmax_grad_rows::with(version, d, c.clone().as_slice(), &dy, 40);
            outs
        };
        let portable = run(None);
        for version in 0..crate::simd::VERSIONS {
            if let Some(outs) = crate::simd::available(version).then(|| run(Some(version))) {
                assert_eq!(outs, portable, "version {version}");
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_its_gradient_sums_to_zero() {
        let x: Vec<f32> = (0..15).map(|i| (i * 7 % 5) as f32 - 1.5).collect();
        let y = softmax_forward(&x, 5);
        for row in y.chunks(5) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let dy: Vec<f32> = (0..15).map(|i| i as f32 * 0.3).collect();
        for row in softmax_backward(&y, &dy, 5).chunks(5) {
            assert!(row.iter().sum::<f32>().abs() < 1e-6);
        }
    }
}
