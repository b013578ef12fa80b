//! What the kernel tests share: comparing a kernel's values with burn's.

use burn::prelude::*;
use burn::tensor::{Gradients, TensorData};

/// The gradients of `sum(y · g)`: the fixed upstream gradient `g` every comparison
/// backpropagates, on `y`'s device.
pub fn weighted_sum_grads<const D: usize>(y: &Tensor<D>, g: &TensorData) -> Gradients {
    (y.clone() * Tensor::from_data(g.clone(), &y.device()))
        .sum()
        .backward()
}

/// How far a kernel's value may be from burn's: `absolute + relative · |burn's| + of_largest ·
/// max |burn's|` (the last for sums whose rounding follows their largest terms, not their value).
pub struct Tolerance {
    pub absolute: f32,
    pub relative: f32,
    pub of_largest: f32,
}

/// Asserts that `ours` has `burns`'s shape and every value within `tolerance` of it, naming
/// `what` and the first value that is not.
pub fn assert_within(what: &str, ours: &TensorData, burns: &TensorData, tolerance: &Tolerance) {
    assert_eq!(ours.shape(), burns.shape(), "{what}: shapes differ");
    let ours = ours.try_to_vec::<f32>().unwrap();
    let burns = burns.try_to_vec::<f32>().unwrap();
    let largest = burns.iter().fold(0.0f32, |m, b| m.max(b.abs()));
    let slack = tolerance.absolute + tolerance.of_largest * largest;
    for (i, (a, b)) in ours.iter().zip(&burns).enumerate() {
        assert!(
            (a - b).abs() <= slack + tolerance.relative * b.abs(),
            "{what}: value {i} is {a}, burn's is {b}"
        );
    }
}
