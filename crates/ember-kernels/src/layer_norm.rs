//! LayerNorm over the last axis, forward and backward, one pass over each row each way.
//!
//! burn 0.22.1's `layer_norm` on flex is a chain of reductions and element-wise ops (mean, centre,
//! square, mean, sqrt, divide, scale, shift) with as many passes and buffers, and its backward
//! is the autodiff of that chain; the transformer profile measured it at 3.5× PyTorch's. Rows are
//! spread over the threads in fixed groups; γ's and β's gradients are summed per group, then the
//! groups in order, so the bits do not depend on the number of threads.

use rayon::prelude::*;

use crate::simd::simd_versions;

/// Rows per rayon task (64-wide rows: 32 KiB of input per task).
const ROWS_PER_TASK: usize = 128;

/// What the forward returns: the output and the per-row statistics the backward needs.
#[derive(Debug)]
pub struct LayerNormForward {
    /// `(x − mean) · rstd · γ + β`.
    pub output: Vec<f32>,
    /// Per-row mean.
    pub mean: Vec<f32>,
    /// Per-row `1 / sqrt(var + ε)`, the biased variance.
    pub rstd: Vec<f32>,
}

/// LayerNorm of every `gamma.len()`-long row of `x`.
pub fn layer_norm_forward(
    x: &[f32],
    gamma: &[f32],
    beta: Option<&[f32]>,
    epsilon: f64,
) -> LayerNormForward {
    let width = gamma.len();
    assert!(
        width > 0 && x.len().is_multiple_of(width),
        "layer norm: rows of {width}"
    );
    let rows = x.len() / width;
    let (mut output, mut mean, mut rstd) = (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
    let chunk = ROWS_PER_TASK * width;
    output
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .zip(
            mean.par_chunks_mut(ROWS_PER_TASK)
                .zip(rstd.par_chunks_mut(ROWS_PER_TASK)),
        )
        .for_each(|((y, x), (mean, rstd))| {
            normalize_rows(y, x, gamma, beta.unwrap_or(&[]), epsilon as f32, mean, rstd)
        });
    LayerNormForward { output, mean, rstd }
}

simd_versions! {
    fn normalize_rows(
        y: &mut [f32],
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        epsilon: f32,
        mean: &mut [f32],
        rstd: &mut [f32],
    ) {
        let width = gamma.len();
        let inv_width = 1.0 / width as f32;
        for (((y, x), mean), rstd) in y.chunks_mut(width).zip(x.chunks(width)).zip(mean).zip(rstd) {
            let m = sum(x) * inv_width;
            // The centred values go through `y` so the variance is a plain lane sum.
            for (y, &x) in y.iter_mut().zip(x) {
                *y = (x - m) * (x - m);
            }
            let r = 1.0 / (sum(y) * inv_width + epsilon).sqrt();
            for ((y, &x), &g) in y.iter_mut().zip(x).zip(gamma) {
                *y = (x - m) * r * g;
            }
            if !beta.is_empty() {
                for (y, &b) in y.iter_mut().zip(beta) {
                    *y += b;
                }
            }
            (*mean, *rstd) = (m, r);
        }
    }
}

/// Gradients of the forward with respect to `x`, `γ` and `β` from the output's gradient `dy` and
/// the forward's per-row statistics.
pub fn layer_norm_backward(
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let width = gamma.len();
    assert_eq!(x.len(), dy.len(), "layer norm backward: lengths differ");
    let mut dx = vec![0.0; x.len()];
    let chunk = ROWS_PER_TASK * width;
    // Per task: Σ dy · x̂ (γ's gradient) and Σ dy (β's), over its rows.
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk).zip(dy.par_chunks(chunk)))
        .zip(
            mean.par_chunks(ROWS_PER_TASK)
                .zip(rstd.par_chunks(ROWS_PER_TASK)),
        )
        .map(|((dx, (x, dy)), (mean, rstd))| {
            let mut sums = vec![0.0; 2 * width];
            normalize_rows_backward(dx, x, dy, gamma, mean, rstd, &mut sums);
            sums
        })
        .collect();
    let mut totals = vec![0.0; 2 * width];
    for partial in partials {
        for (total, value) in totals.iter_mut().zip(partial) {
            *total += value;
        }
    }
    let beta_grad = totals.split_off(width);
    (dx, totals, beta_grad)
}

simd_versions! {
    fn normalize_rows_backward(
        dx: &mut [f32],
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        mean: &[f32],
        rstd: &[f32],
        sums: &mut [f32],
    ) {
        // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)) with g = dy · γ, x̂ = (x − mean) · rstd.
        let width = gamma.len();
        let inv_width = 1.0 / width as f32;
        let (gamma_grad, beta_grad) = sums.split_at_mut(width);
        for (((dx, x), dy), (&m, &r)) in dx
            .chunks_mut(width)
            .zip(x.chunks(width))
            .zip(dy.chunks(width))
            .zip(mean.iter().zip(rstd))
        {
            for (((gg, gb), &x), &dy) in gamma_grad.iter_mut().zip(beta_grad.iter_mut()).zip(x).zip(dy) {
                *gg += dy * (x - m) * r;
                *gb += dy;
            }
            // dx holds g = dy · γ, then g · x̂, for the two lane sums, then the gradient.
            for ((dx, &dy), &gamma) in dx.iter_mut().zip(dy).zip(gamma) {
                *dx = dy * gamma;
            }
            let g_mean = sum(dx) * inv_width;
            for (dx, &x) in dx.iter_mut().zip(x) {
                *dx *= (x - m) * r;
            }
            let gx_mean = sum(dx) * inv_width;
            for (((dx, &x), &dy), &gamma) in dx.iter_mut().zip(x).zip(dy).zip(gamma) {
                *dx = r * (dy * gamma - g_mean - (x - m) * r * gx_mean);
            }
        }
    }
}

/// The sum of `values` over 8 interleaved lanes combined in order (vectorises; the same bits on
/// every instruction set).
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let (rows, width) = (5, 37);
        let x: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let dy: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 5.0)
            .collect();
        let gamma: Vec<f32> = (0..width).map(|i| 0.5 + i as f32 / 40.0).collect();
        let run = |version: Option<usize>| {
            let (mut y, mut mean, mut rstd) =
                (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
            normalize_rows::with(
                version, &mut y, &x, &gamma, &gamma, 1e-5, &mut mean, &mut rstd,
            );
            let (mut dx, mut sums) = (vec![0.0; x.len()], vec![0.0; 2 * width]);
            normalize_rows_backward::with(
                version, &mut dx, &x, &dy, &gamma, &mean, &rstd, &mut sums,
            );
            [y, mean, rstd, dx, sums]
        };
        let portable = run(None);
        for version in 0..crate::simd::VERSIONS {
            if crate::simd::available(version) {
                assert_eq!(run(Some(version)), portable, "version {version}");
            }
        }
    }

    #[test]
    fn hand_computed_row() {
        // Row 1, 2, 3, 6: mean 3, variance 3.5.
        let forward = layer_norm_forward(&[1.0, 2.0, 3.0, 6.0], &[2.0; 4], Some(&[0.5; 4]), 0.0);
        assert_eq!(forward.mean, vec![3.0]);
        assert!((forward.rstd[0] - 1.0 / 3.5f32.sqrt()).abs() < 1e-7);
        let expected = [1.0f32, 2.0, 3.0, 6.0].map(|v| (v - 3.0) / 3.5f32.sqrt() * 2.0 + 0.5);
        for (y, e) in forward.output.iter().zip(expected) {
            assert!((y - e).abs() < 1e-6);
        }
        // A constant upstream gradient: β's gradient counts it, γ's is Σ x̂ = 0, and dx = 0.
        let (dx, dgamma, dbeta) = layer_norm_backward(
            &[1.0, 2.0, 3.0, 6.0],
            &[2.0; 4],
            &forward.mean,
            &forward.rstd,
            &[1.0; 4],
        );
        assert_eq!(dbeta, vec![1.0; 4]);
        assert!(dgamma.iter().sum::<f32>().abs() < 1e-6);
        assert!(dx.iter().all(|d| d.abs() < 1e-6), "{dx:?}");
    }
}
