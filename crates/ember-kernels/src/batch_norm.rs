//! BatchNorm's training forward and backward over `[batch, channels, pixels]`, two passes each.
//!
//! burn 0.22.1's defaults (flex has no BatchNorm kernel) chain about ten whole-tensor ops each way,
//! including `swap_dims` copies to reduce over the batch. Here one pass gathers each channel's sums
//! (a thread per channel, `f64` accumulators in a fixed order: the same bits on any pool) and one
//! pass writes the result (a thread per `(image, channel)` plane). Within a plane the sums run in
//! `f32` over 8 interleaved lanes (vectorised, [`simd_versions`]), across planes in `f64`.

use rayon::prelude::*;

use crate::simd::simd_versions;

/// The sizes BatchNorm indexes with: `x` is `[batch, channels, pixels]`, statistics per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormGeometry {
    /// Images in the batch.
    pub batch: usize,
    /// Channels (the normalised axis, 1 of burn's NCHW).
    pub channels: usize,
    /// Values per channel per image (the product of the remaining axes).
    pub pixels: usize,
}

impl NormGeometry {
    /// Values each channel's statistics are taken over.
    fn count(&self) -> usize {
        self.batch * self.pixels
    }

    /// `f(channel)` for every channel, in parallel, in channel order.
    fn per_channel<T: Send>(&self, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
        (0..self.channels).into_par_iter().map(f).collect()
    }

    /// The channel's planes of `values`, one per image, in image order.
    fn planes<'a>(&self, values: &'a [f32], channel: usize) -> impl Iterator<Item = &'a [f32]> {
        let (plane, channels) = (self.pixels, self.channels);
        (0..self.batch).map(move |n| {
            let start = (n * channels + channel) * plane;
            &values[start..start + plane]
        })
    }
}

/// What the training forward returns: the output and the batch statistics burn's `BatchNorm`
/// folds into its running mean and variance.
#[derive(Debug)]
pub struct NormForward {
    /// `(x − mean) / sqrt(var + ε) · γ + β`.
    pub output: Vec<f32>,
    /// Per-channel batch mean.
    pub mean: Vec<f32>,
    /// Per-channel biased batch variance (divided by the count, as burn's `batch_norm_train`).
    pub variance: Vec<f32>,
}

/// The training forward: per-channel batch statistics, then the normalised, scaled output.
pub fn batch_norm_forward(
    g: &NormGeometry,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> NormForward {
    assert_eq!(x.len(), g.batch * g.channels * g.pixels, "input length");
    assert_eq!(gamma.len(), g.channels, "gamma length");
    assert_eq!(beta.len(), g.channels, "beta length");
    let count = g.count().max(1) as f64;
    let stats = g.per_channel(|c| {
        let sum: f64 = g.planes(x, c).map(|plane| plane_sum(plane) as f64).sum();
        let mean = sum / count;
        let squares: f64 = g
            .planes(x, c)
            .map(|plane| plane_squares(plane, mean as f32) as f64)
            .sum();
        (mean, squares / count)
    });
    // y = x · scale + shift with scale = γ / sqrt(var + ε), shift = β − mean · scale.
    let affine: Vec<(f32, f32)> = stats
        .iter()
        .zip(gamma.iter().zip(beta))
        .map(|(&(mean, var), (&gamma, &beta))| {
            let scale = gamma as f64 / (var + epsilon).sqrt();
            (scale as f32, (beta as f64 - mean * scale) as f32)
        })
        .collect();
    let mut output = vec![0.0; x.len()];
    output
        .par_chunks_mut(g.pixels.max(1))
        .zip(x.par_chunks(g.pixels.max(1)))
        .enumerate()
        .for_each(|(plane, (out, x))| {
            let (scale, shift) = affine[plane % g.channels];
            scale_shift(out, x, scale, shift);
        });
    NormForward {
        output,
        mean: stats.iter().map(|&(m, _)| m as f32).collect(),
        variance: stats.iter().map(|&(_, v)| v as f32).collect(),
    }
}

/// Gradients of the training forward with respect to `x`, `γ` and `β`, given the output's
/// gradient `dy` and the batch statistics the forward returned.
pub fn batch_norm_backward(
    g: &NormGeometry,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), g.batch * g.channels * g.pixels, "input length");
    assert_eq!(dy.len(), x.len(), "output gradient length");
    let count = g.count().max(1) as f64;
    let inv_std: Vec<f64> = variance
        .iter()
        .map(|&v| 1.0 / (v as f64 + epsilon).sqrt())
        .collect();
    // Per channel: Σ dy (β's gradient) and Σ dy · x̂ (γ's gradient), x̂ = (x − mean) / std.
    let sums = g.per_channel(|c| {
        let (mean, inv_std) = (mean[c], inv_std[c]);
        g.planes(dy, c).zip(g.planes(x, c)).fold(
            (0.0f64, 0.0f64),
            |(sum_dy, sum_dy_xhat), (dy, x)| {
                let (a, b) = plane_grad_sums(dy, x, mean);
                (sum_dy + a as f64, sum_dy_xhat + b as f64 * inv_std)
            },
        )
    });
    // dx = γ/std · (dy − mean(dy) − x̂ · mean(dy · x̂)), as dx = a · dy + b · x + c per channel.
    let coefficients: Vec<(f32, f32, f32)> = (0..g.channels)
        .map(|c| {
            let (sum_dy, sum_dy_xhat) = sums[c];
            let scale = gamma[c] as f64 * inv_std[c];
            let xhat_coef = inv_std[c] * sum_dy_xhat / count;
            let b = -scale * xhat_coef;
            let c0 = scale * (xhat_coef * mean[c] as f64 - sum_dy / count);
            (scale as f32, b as f32, c0 as f32)
        })
        .collect();
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(g.pixels.max(1))
        .zip(
            dy.par_chunks(g.pixels.max(1))
                .zip(x.par_chunks(g.pixels.max(1))),
        )
        .enumerate()
        .for_each(|(plane, (dx, (dy, x)))| {
            let (a, b, c) = coefficients[plane % g.channels];
            input_grads(dx, dy, x, [a, b, c]);
        });
    let gamma_grad = sums.iter().map(|&(_, s)| s as f32).collect();
    let beta_grad = sums.iter().map(|&(s, _)| s as f32).collect();
    (dx, gamma_grad, beta_grad)
}

simd_versions! {
    fn plane_sum(x: &[f32]) -> f32 {
        lanes(x.len(), |i| x[i])
    }
}

simd_versions! {
    fn plane_squares(x: &[f32], mean: f32) -> f32 {
        lanes(x.len(), |i| (x[i] - mean) * (x[i] - mean))
    }
}

simd_versions! {
    fn plane_grad_sums(dy: &[f32], x: &[f32], mean: f32) -> (f32, f32) {
        let x = &x[..dy.len()];
        (lanes(dy.len(), |i| dy[i]), lanes(dy.len(), |i| dy[i] * (x[i] - mean)))
    }
}

simd_versions! {
    fn scale_shift(out: &mut [f32], x: &[f32], scale: f32, shift: f32) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v * scale + shift;
        }
    }
}

simd_versions! {
    fn input_grads(dx: &mut [f32], dy: &[f32], x: &[f32], coefficients: [f32; 3]) {
        let [a, b, c] = coefficients;
        for ((o, &d), &v) in dx.iter_mut().zip(dy).zip(x) {
            *o = a * d + b * v + c;
        }
    }
}

/// `Σ value(i)` for `i < len`, over 8 interleaved lanes combined in order: vectorises, and gives
/// the same bits on every instruction set.
#[inline(always)]
fn lanes(len: usize, value: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let full = len - len % 8;
    for start in (0..full).step_by(8) {
        for (lane, a) in acc.iter_mut().enumerate() {
            *a += value(start + lane);
        }
    }
    let mut total: f32 = acc.iter().sum();
    for i in full..len {
        total += value(i);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let x: Vec<f32> = (0..203)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let dy: Vec<f32> = (0..203)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 5.0)
            .collect();
        let run = |version: Option<usize>| {
            let mut out = vec![0.0; 203];
            scale_shift::with(version, &mut out, &x, 1.5, -0.25);
            let mut dx = vec![0.0; 203];
            input_grads::with(version, &mut dx, &dy, &x, [0.5, -0.125, 2.0]);
            let sums = [
                plane_sum::with(version, &x),
                plane_squares::with(version, &x, 0.75),
                plane_grad_sums::with(version, &dy, &x, 0.75).0,
                plane_grad_sums::with(version, &dy, &x, 0.75).1,
            ];
            (out, dx, sums)
        };
        let portable = run(None);
        for version in 0..crate::simd::VERSIONS {
            if crate::simd::available(version) {
                assert_eq!(run(Some(version)), portable, "version {version}");
            }
        }
    }

    #[test]
    fn hand_computed_single_channel_step() {
        // One channel, values 1, 2, 3, 6 (two images of two pixels): mean 3, variance 3.5.
        let g = NormGeometry {
            batch: 2,
            channels: 1,
            pixels: 2,
        };
        let x = [1.0, 2.0, 3.0, 6.0];
        let forward = batch_norm_forward(&g, &x, &[2.0], &[0.5], 0.0);
        assert_eq!(forward.mean, vec![3.0]);
        assert_eq!(forward.variance, vec![3.5]);
        let std = 3.5f32.sqrt();
        for (y, v) in forward.output.iter().zip(x) {
            assert!((y - ((v - 3.0) / std * 2.0 + 0.5)).abs() < 1e-6);
        }
        // dy = 1 everywhere: β's gradient is 4, γ's is Σ x̂ = 0, and dx = 0 (a constant shift of the
        // input changes nothing after normalisation).
        let (dx, dgamma, dbeta) = batch_norm_backward(
            &g,
            &x,
            &[2.0],
            &forward.mean,
            &forward.variance,
            0.0,
            &[1.0; 4],
        );
        assert_eq!(dbeta, vec![4.0]);
        assert!(dgamma[0].abs() < 1e-6);
        assert!(dx.iter().all(|d| d.abs() < 1e-6), "{dx:?}");
    }
}
