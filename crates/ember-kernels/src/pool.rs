//! Max pooling over non-overlapping windows (kernel = stride, no padding or dilation: SmallCnn's
//! 2×2 pools), forward with the index of each window's maximum and the backward that routes each
//! output gradient to it.
//!
//! burn 0.22.1's flex max-pool is written for every option (padding, dilation, overlapping
//! windows) and measured at 1.5× PyTorch's on SmallCnn's pools; the common case needs one read of
//! each input value. Ties go to the first maximum in the window, and NaN wins, as in burn-flex.

use rayon::prelude::*;

/// Planes per rayon task.
const PLANES_PER_TASK: usize = 16;

/// The sizes the kernels index with: `planes` images × channels of `input` pixels, windows of
/// `window` pixels (also the stride), giving `output` pixels (floor division).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Images × channels.
    pub planes: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Window (and stride) height and width.
    pub window: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

impl PoolGeometry {
    fn in_plane(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn out_plane(&self) -> usize {
        self.output[0] * self.output[1]
    }
}

/// The pooled planes, and for each output the index of its maximum within its input plane.
pub fn max_pool_forward(g: &PoolGeometry, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    assert_eq!(x.len(), g.planes * g.in_plane(), "max pool: input length");
    let mut y = vec![0.0; g.planes * g.out_plane()];
    let mut argmax = vec![0u32; y.len()];
    let (in_chunk, out_chunk) = (
        PLANES_PER_TASK * g.in_plane(),
        PLANES_PER_TASK * g.out_plane(),
    );
    y.par_chunks_mut(out_chunk.max(1))
        .zip(argmax.par_chunks_mut(out_chunk.max(1)))
        .zip(x.par_chunks(in_chunk.max(1)))
        .for_each(|((y, argmax), x)| {
            let planes = y
                .chunks_mut(g.out_plane())
                .zip(argmax.chunks_mut(g.out_plane()));
            for ((y, argmax), x) in planes.zip(x.chunks(g.in_plane())) {
                pool_plane(g, x, y, argmax);
            }
        });
    (y, argmax)
}

fn pool_plane(g: &PoolGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let ([kh, kw], width, out_w) = (g.window, g.input[1], g.output[1]);
    for (o, (y, argmax)) in y.iter_mut().zip(argmax.iter_mut()).enumerate() {
        let (oy, ox) = (o / out_w, o % out_w);
        let mut best = (0.0f32, usize::MAX);
        for dy in 0..kh {
            let row = (oy * kh + dy) * width + ox * kw;
            for (index, &v) in x[row..row + kw].iter().enumerate() {
                if best.1 == usize::MAX || v > best.0 || v.is_nan() {
                    best = (v, row + index);
                }
            }
        }
        (*y, *argmax) = (best.0, best.1 as u32);
    }
}

/// The input gradient: each output's gradient at its window's maximum, zero elsewhere.
pub fn max_pool_backward(g: &PoolGeometry, argmax: &[u32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(dy.len(), argmax.len(), "max pool backward: lengths differ");
    let mut dx = vec![0.0; g.planes * g.in_plane()];
    let (in_chunk, out_chunk) = (
        PLANES_PER_TASK * g.in_plane(),
        PLANES_PER_TASK * g.out_plane(),
    );
    dx.par_chunks_mut(in_chunk.max(1))
        .zip(
            dy.par_chunks(out_chunk.max(1))
                .zip(argmax.par_chunks(out_chunk.max(1))),
        )
        .for_each(|(dx, (dy, argmax))| {
            let planes = dy.chunks(g.out_plane()).zip(argmax.chunks(g.out_plane()));
            for (dx, (dy, argmax)) in dx.chunks_mut(g.in_plane()).zip(planes) {
                for (&d, &at) in dy.iter().zip(argmax) {
                    dx[at as usize] += d;
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_two_by_two_pool_with_a_tie_and_a_nan() {
        // One 2×4 plane: windows [1 5 | 2 0] → 5, [3 3 | 3 1] → first 3 (a tie), NaN wins.
        let g = PoolGeometry {
            planes: 2,
            input: [2, 4],
            window: [2, 2],
            output: [1, 2],
        };
        let x = [
            1.0,
            5.0,
            3.0,
            3.0,
            2.0,
            0.0,
            3.0,
            1.0,
            0.0,
            f32::NAN,
            7.0,
            1.0,
            1.0,
            2.0,
            3.0,
            9.0,
        ];
        let (y, argmax) = max_pool_forward(&g, &x);
        assert_eq!((y[0], y[1]), (5.0, 3.0));
        assert!(y[2].is_nan());
        assert_eq!(y[3], 9.0);
        assert_eq!(argmax, vec![1, 2, 1, 7]);
        let dx = max_pool_backward(&g, &argmax, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            dx,
            vec![0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0]
        );
    }
}
