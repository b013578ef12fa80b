//! The signal–noise data model of the SignGD-on-transformers theory (Li et al., ICLR 2025).
//!
//! Every input is a sequence of two patches `X = [y·μ, ξ]`: the label `y` is drawn uniformly from
//! {−1, +1}, `μ = ‖μ‖·e₀` is one fixed signal vector, and `ξ` is sparse Gaussian noise with `s`
//! non-zero coordinates, chosen uniformly among the `d − 1` coordinates off μ's support, each
//! N(0, σ_p²). The signal-to-noise ratio is `‖μ‖ / (σ_p·√s)`. The theory's regime is `d ≫ n` and a
//! large σ_p, where a model can fit the training set by memorising each sample's noise.
//!
//! Like the generated image set, every sample is a pure function of `(seed, split, index)`, so the
//! test set is fresh data from the same distribution and never shares random numbers with training.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::{DataError, Result};
use crate::random::{normal, stream_seed};

/// Stream tags of the two halves.
const TRAIN_STREAM: u64 = 0x736e_5f74_7261_696e;
const TEST_STREAM: u64 = 0x736e_5f74_6573_7400;

/// Patches per input: the signal patch `y·μ` first, then the noise patch `ξ`.
pub const SIGNAL_NOISE_PATCHES: usize = 2;

/// Parameters of the signal–noise data set.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalNoiseConfig {
    /// Dimension `d` of each patch.
    pub dim: usize,
    /// Training samples `n`.
    pub train_size: usize,
    /// Fresh test samples.
    pub test_size: usize,
    /// Non-zero noise coordinates `s` per sample.
    pub noise_nonzeros: usize,
    /// `‖μ‖`.
    pub signal_norm: f64,
    /// σ_p, the standard deviation of each non-zero noise coordinate.
    pub noise_std: f64,
    /// Seeds labels, noise supports and noise values.
    pub seed: u64,
}

impl Default for SignalNoiseConfig {
    /// `d = 2000`, `n = 32`, 1000 test samples, `s = 40`, `‖μ‖ = 1`, SNR 0.5 (σ_p ≈ 0.32):
    /// `d ≫ n`, and every sample's noise (‖ξ‖ ≈ 2) is larger than the signal.
    fn default() -> Self {
        Self {
            dim: 2000,
            train_size: 32,
            test_size: 1000,
            noise_nonzeros: 40,
            signal_norm: 1.0,
            noise_std: 1.0 / (0.5 * 40f64.sqrt()),
            seed: 0,
        }
    }
}

impl SignalNoiseConfig {
    /// `‖μ‖ / (σ_p·√s)`.
    pub fn snr(&self) -> f64 {
        self.signal_norm / (self.noise_std * (self.noise_nonzeros as f64).sqrt())
    }

    /// Sets σ_p so that the signal-to-noise ratio is `snr` (with the current `‖μ‖` and `s`).
    pub fn with_snr(mut self, snr: f64) -> Self {
        self.noise_std = self.signal_norm / (snr * (self.noise_nonzeros as f64).sqrt());
        self
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.dim < 2 {
            return Err(DataError::invalid(
                "dim",
                format!(
                    "must be at least 2 (one signal and one noise coordinate), got {}",
                    self.dim
                ),
            ));
        }
        if self.train_size == 0 {
            return Err(DataError::invalid("train_size", "must be at least 1"));
        }
        if self.test_size == 0 {
            return Err(DataError::invalid("test_size", "must be at least 1"));
        }
        if self.noise_nonzeros == 0 || self.noise_nonzeros >= self.dim {
            return Err(DataError::invalid(
                "noise_nonzeros",
                format!(
                    "must be between 1 and dim - 1 = {} (the coordinates off the signal's support), got {}",
                    self.dim - 1,
                    self.noise_nonzeros
                ),
            ));
        }
        if !(self.signal_norm.is_finite() && self.signal_norm > 0.0) {
            return Err(DataError::invalid(
                "signal_norm",
                format!("must be finite and positive, got {}", self.signal_norm),
            ));
        }
        if !(self.noise_std.is_finite() && self.noise_std > 0.0) {
            return Err(DataError::invalid(
                "noise_std",
                format!(
                    "must be finite and positive (an SNR must be finite and positive), got {}",
                    self.noise_std
                ),
            ));
        }
        Ok(())
    }

    /// The signal vector μ (`‖μ‖` on coordinate 0).
    pub fn signal(&self) -> Vec<f32> {
        let mut mu = vec![0.0; self.dim];
        mu[0] = self.signal_norm as f32;
        mu
    }

    /// Draws the training set and a fresh test set.
    pub fn generate(&self) -> Result<SignalNoiseSplit> {
        self.validate()?;
        Ok(SignalNoiseSplit {
            signal: self.signal(),
            train: self.draw(TRAIN_STREAM, self.train_size),
            test: self.draw(TEST_STREAM, self.test_size),
        })
    }

    fn draw(&self, stream: u64, len: usize) -> SignalNoiseSet {
        let d = self.dim;
        let mut inputs = vec![0.0f32; len * SIGNAL_NOISE_PATCHES * d];
        let mut labels = Vec::with_capacity(len);
        let mut coordinates: Vec<usize> = (1..d).collect();
        for (i, x) in inputs
            .chunks_exact_mut(SIGNAL_NOISE_PATCHES * d)
            .enumerate()
        {
            let mut rng = Pcg64::seed_from_u64(stream_seed(self.seed, stream, i as u64));
            let y: f32 = if rng.random::<bool>() { 1.0 } else { -1.0 };
            labels.push(y);
            let (signal_patch, noise_patch) = x.split_at_mut(d);
            signal_patch[0] = y * self.signal_norm as f32;
            // A partial Fisher–Yates shuffle picks s distinct coordinates off μ's support.
            for k in 0..self.noise_nonzeros {
                let pick = rng.random_range(k..coordinates.len());
                coordinates.swap(k, pick);
                noise_patch[coordinates[k]] = self.noise_std as f32 * normal(&mut rng);
            }
        }
        SignalNoiseSet {
            dim: d,
            inputs,
            labels,
        }
    }
}

/// Labelled two-patch inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalNoiseSet {
    dim: usize,
    /// `[len, 2, dim]`, row-major.
    inputs: Vec<f32>,
    /// ±1.
    labels: Vec<f32>,
}

impl SignalNoiseSet {
    /// Samples in the set.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set has no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Patch dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All inputs, `[len, 2, dim]` row-major (ready for a `Tensor<3>`).
    pub fn inputs(&self) -> &[f32] {
        &self.inputs
    }

    /// All labels, ±1.
    pub fn labels(&self) -> &[f32] {
        &self.labels
    }

    /// The noise patch ξ of sample `i`.
    pub fn noise(&self, i: usize) -> &[f32] {
        let start = (i * SIGNAL_NOISE_PATCHES + 1) * self.dim;
        &self.inputs[start..start + self.dim]
    }
}

/// The signal vector with a training set and a fresh test set.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalNoiseSplit {
    /// μ.
    pub signal: Vec<f32>,
    /// The training samples.
    pub train: SignalNoiseSet,
    /// Fresh samples from the same model, for the test loss.
    pub test: SignalNoiseSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SignalNoiseConfig {
        SignalNoiseConfig {
            dim: 50,
            train_size: 400,
            test_size: 100,
            noise_nonzeros: 5,
            signal_norm: 2.0,
            noise_std: 3.0,
            seed: 7,
        }
    }

    #[test]
    fn inputs_follow_the_model() {
        let config = small();
        let split = config.generate().unwrap();
        let (train, d) = (&split.train, config.dim);
        assert_eq!(train.inputs().len(), 400 * 2 * d);
        let mut positives = 0;
        let mut noise_values = Vec::new();
        for i in 0..train.len() {
            let y = train.labels()[i];
            assert!(y == 1.0 || y == -1.0);
            positives += usize::from(y > 0.0);
            let x = &train.inputs()[i * 2 * d..(i + 1) * 2 * d];
            // Signal patch: exactly y·μ.
            assert_eq!(x[0], y * 2.0);
            assert!(x[1..d].iter().all(|&v| v == 0.0));
            // Noise patch: s non-zeros, none on μ's support.
            let xi = train.noise(i);
            assert_eq!(xi[0], 0.0);
            assert_eq!(xi.iter().filter(|&&v| v != 0.0).count(), 5);
            noise_values.extend(xi.iter().copied().filter(|&v| v != 0.0));
        }
        // Labels are balanced within 4 standard deviations of a fair coin (σ = 10 for n = 400).
        assert!((positives as i64 - 200).abs() < 40, "{positives} positives");
        let n = noise_values.len() as f64;
        let mean = noise_values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = noise_values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.15, "noise mean {mean}");
        assert!((var.sqrt() - 3.0).abs() < 0.15, "noise std {}", var.sqrt());
    }

    #[test]
    fn snr_round_trips_and_matches_the_formula() {
        let config = small().with_snr(0.25);
        assert!((config.snr() - 0.25).abs() < 1e-12);
        assert!((config.noise_std - 2.0 / (0.25 * 5f64.sqrt())).abs() < 1e-12);
    }

    #[test]
    fn same_seed_same_data_and_test_is_fresh() {
        let a = small().generate().unwrap();
        assert_eq!(a, small().generate().unwrap());
        let b = SignalNoiseConfig { seed: 8, ..small() }.generate().unwrap();
        assert_ne!(a.train, b.train);
        // The test set is not a copy of the training set's first samples.
        assert_ne!(a.train.noise(0), a.test.noise(0));
        // A larger training set extends the smaller one: sample i depends only on (seed, i).
        let bigger = SignalNoiseConfig {
            train_size: 500,
            ..small()
        }
        .generate()
        .unwrap();
        assert_eq!(bigger.train.noise(399), a.train.noise(399));
    }

    #[test]
    fn bad_configs_name_the_field() {
        let field = |c: SignalNoiseConfig| match c.generate().unwrap_err() {
            DataError::Invalid { field, .. } => field,
            other => panic!("unexpected error {other}"),
        };
        assert_eq!(field(SignalNoiseConfig { dim: 1, ..small() }), "dim");
        assert_eq!(
            field(SignalNoiseConfig {
                train_size: 0,
                ..small()
            }),
            "train_size"
        );
        assert_eq!(
            field(SignalNoiseConfig {
                test_size: 0,
                ..small()
            }),
            "test_size"
        );
        assert_eq!(
            field(SignalNoiseConfig {
                noise_nonzeros: 50,
                ..small()
            }),
            "noise_nonzeros"
        );
        assert_eq!(
            field(SignalNoiseConfig {
                signal_norm: f64::NAN,
                ..small()
            }),
            "signal_norm"
        );
        assert_eq!(field(small().with_snr(0.0)), "noise_std");
    }
}
