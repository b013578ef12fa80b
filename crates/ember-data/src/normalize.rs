use crate::ImageSet;

/// Per-channel affine normalisation `x ↦ (x/255 − mean_c) / std_c`.
///
/// The statistics are measured on the *training* set and then applied unchanged to the test set,
/// so test images never leak into preprocessing.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    /// Mean of each channel, on the 0..1 scale.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel, on the 0..1 scale (never below 1e-3, so a constant
    /// channel does not divide by zero).
    pub std: Vec<f32>,
}

impl Normalization {
    /// Measures the per-channel mean and standard deviation of `set`.
    pub fn fit(set: &ImageSet) -> Self {
        let shape = set.shape();
        let plane = shape.height * shape.width;
        let mut sum = vec![0f64; shape.channels];
        let mut sum_sq = vec![0f64; shape.channels];
        for image in 0..set.len() {
            for (c, channel) in set.image(image).chunks_exact(plane).enumerate() {
                for &p in channel {
                    let v = p as f64 / 255.0;
                    sum[c] += v;
                    sum_sq[c] += v * v;
                }
            }
        }
        let n = (set.len() * plane).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sum_sq
            .iter()
            .zip(&mean)
            .map(|(sq, m)| ((sq / n - m * m).max(0.0).sqrt() as f32).max(1e-3))
            .collect();
        Self {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }

    /// The normalised value of raw pixel `value` in channel `channel`.
    #[inline]
    pub fn apply(&self, channel: usize, value: u8) -> f32 {
        (value as f32 / 255.0 - self.mean[channel]) / self.std[channel]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageShape;

    #[test]
    fn fit_matches_hand_computed_statistics() {
        // Two 1×1 RGB images: channel 0 = {0, 255}, channel 1 = {51, 51}, channel 2 = {255, 255}.
        let shape = ImageShape {
            channels: 3,
            height: 1,
            width: 1,
        };
        let set = ImageSet::new(
            shape,
            vec![0, 51, 255, 255, 51, 255],
            vec![0, 1],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        let norm = Normalization::fit(&set);
        assert!((norm.mean[0] - 0.5).abs() < 1e-6);
        assert!((norm.std[0] - 0.5).abs() < 1e-6);
        assert!((norm.mean[1] - 0.2).abs() < 1e-6);
        assert_eq!(norm.std[1], 1e-3, "constant channel is clamped, not zero");
        assert!((norm.apply(0, 255) - 1.0).abs() < 1e-6);
        assert!((norm.apply(0, 0) + 1.0).abs() < 1e-6);
    }
}
