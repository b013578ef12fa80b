//! A linear layer `y = x · W + b` over the rows of `x` (every axis but the last), forward and
//! backward, as one threaded GEMM each plus row-chunked weight and bias gradients.
//!
//! burn 0.22.1 runs the forward as a matmul and a separate broadcast bias add, and the backward as
//! the autodiff of both (a transposed matmul per operand and a reduction for the bias, each with
//! its own buffers). Here the bias is the GEMM's starting value, and the weight and bias gradients
//! are summed over fixed row chunks in parallel, then the chunks in order, so the bits do not
//! depend on the number of threads.

use rayon::prelude::*;

use crate::gemm::{matmul, DstLayout, MatRef};

/// Rows per chunk of the weight-gradient sum: a `[d_in, d_out]` GEMM over this many rows per task.
const ROWS_PER_TASK: usize = 512;

/// `x · W + b` for `x` of `rows × d_in` and `W` of `d_in × d_out` (burn's `Linear` layout).
pub fn linear_forward(x: &[f32], weight: &[f32], bias: &[f32], d_in: usize) -> Vec<f32> {
    let d_out = bias.len();
    assert!(
        d_in > 0 && x.len().is_multiple_of(d_in),
        "linear: rows of {d_in}"
    );
    assert_eq!(weight.len(), d_in * d_out, "linear: weight length");
    let rows = x.len() / d_in;
    let mut y = bias.repeat(rows);
    matmul(
        &mut y,
        DstLayout::RowMajor,
        MatRef::new(x, rows, d_in),
        MatRef::new(weight, d_in, d_out),
        true,
        true,
    );
    y
}

/// The gradients of `sum(dy · (x · W + b))`, each present if it was asked for.
#[derive(Debug)]
pub struct LinearGrads {
    /// With respect to `x`.
    pub x: Option<Vec<f32>>,
    /// With respect to `W`.
    pub weight: Option<Vec<f32>>,
    /// With respect to `b`.
    pub bias: Option<Vec<f32>>,
}

/// The gradients of `sum(dy · (x · W + b))` that `need` asks for (`[x, W, b]`).
pub fn linear_backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    d_in: usize,
    need: [bool; 3],
) -> LinearGrads {
    let d_out = weight.len() / d_in.max(1);
    let rows = x.len() / d_in.max(1);
    assert_eq!(
        dy.len(),
        rows * d_out,
        "linear backward: output gradient length"
    );
    let [need_x, need_weight, need_bias] = need;
    let dx = need_x.then(|| {
        let mut dx = vec![0.0; x.len()];
        matmul(
            &mut dx,
            DstLayout::RowMajor,
            MatRef::new(dy, rows, d_out),
            MatRef::transposed(weight, d_out, d_in),
            false,
            true,
        );
        dx
    });
    if !(need_weight || need_bias) {
        return LinearGrads {
            x: dx,
            weight: None,
            bias: None,
        };
    }
    // Per chunk of rows: Xᵀ · dY (d_in × d_out) and the column sums of dY.
    let partials: Vec<(Vec<f32>, Vec<f32>)> = x
        .par_chunks(ROWS_PER_TASK * d_in)
        .zip(dy.par_chunks(ROWS_PER_TASK * d_out))
        .map(|(x, dy)| {
            let chunk_rows = x.len() / d_in;
            let mut dw = vec![0.0; if need_weight { d_in * d_out } else { 0 }];
            if need_weight {
                matmul(
                    &mut dw,
                    DstLayout::RowMajor,
                    MatRef::transposed(x, d_in, chunk_rows),
                    MatRef::new(dy, chunk_rows, d_out),
                    false,
                    false,
                );
            }
            let mut db = vec![0.0; d_out];
            for row in dy.chunks(d_out) {
                for (total, value) in db.iter_mut().zip(row) {
                    *total += value;
                }
            }
            (dw, db)
        })
        .collect();
    let (mut dw, mut db) = (vec![0.0; d_in * d_out], vec![0.0; d_out]);
    for (partial_w, partial_b) in partials {
        for (total, value) in dw.iter_mut().zip(partial_w) {
            *total += value;
        }
        for (total, value) in db.iter_mut().zip(partial_b) {
            *total += value;
        }
    }
    LinearGrads {
        x: dx,
        weight: need_weight.then_some(dw),
        bias: need_bias.then_some(db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_forward_and_backward() {
        // Two rows [1, 2] and [3, 4]; W = [[1, 0, 2], [0, 1, 1]]; b = [0.5, 0, -1].
        let (x, w, b) = (
            [1.0, 2.0, 3.0, 4.0],
            [1.0, 0.0, 2.0, 0.0, 1.0, 1.0],
            [0.5, 0.0, -1.0],
        );
        assert_eq!(
            linear_forward(&x, &w, &b, 2),
            vec![1.5, 2.0, 3.0, 3.5, 4.0, 9.0]
        );
        let dy = [1.0, 0.0, 1.0, 0.0, 2.0, 1.0];
        let grads = linear_backward(&x, &w, &dy, 2, [true; 3]);
        // dx = dy · Wᵀ; dW = xᵀ · dy; db = column sums of dy.
        assert_eq!(grads.x.unwrap(), vec![3.0, 1.0, 2.0, 3.0]);
        assert_eq!(grads.weight.unwrap(), vec![1.0, 6.0, 4.0, 2.0, 8.0, 6.0]);
        assert_eq!(grads.bias.unwrap(), vec![1.0, 2.0, 2.0]);
    }
}
