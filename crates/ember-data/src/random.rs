//! Seeded random numbers for the whole crate, in one place:
//!
//! * [`mix`], the one seed-mixing function: it folds words such as `(seed, tag, epoch, index)`
//!   into a 64-bit generator seed with the SplitMix64 finaliser, so nearby inputs give unrelated
//!   streams. Epoch order, augmentation and the per-item streams below all start from it.
//! * [`stream_seed`]: the seed of one item's generator from `(seed, stream, index)`, so any item of
//!   a generated set can be drawn in any order and distinct streams (train, test) never share
//!   random numbers.
//! * [`normal`]: a standard normal draw, `rand_distr`'s `StandardNormal` (ziggurat).

use rand::RngExt;
use rand_distr::StandardNormal;
use rand_pcg::Pcg64;

/// The SplitMix64 increment (2⁶⁴ divided by the golden ratio, made odd).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 finaliser (Stafford's "Mix13"): a bijection of `u64` that spreads every input bit
/// over the whole output, so seeds 0, 1, 2... become unrelated.
fn splitmix64_finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes several words into one well-spread 64-bit seed: each word, offset by the SplitMix64
/// increment, is XORed into the running hash, which then goes through the SplitMix64 finaliser.
/// Order matters (`[a, b]` and `[b, a]` give unrelated seeds), and so does the number of words.
pub(crate) fn mix(words: &[u64]) -> u64 {
    words.iter().fold(GOLDEN_GAMMA, |h, &w| {
        splitmix64_finalise(h ^ w.wrapping_add(GOLDEN_GAMMA))
    })
}

/// Seed of one item's generator from (seed, stream, index); distinct streams (train, test) never
/// share random numbers.
pub(crate) fn stream_seed(seed: u64, stream: u64, index: u64) -> u64 {
    mix(&[seed, stream, index])
}

/// One standard normal draw (mean 0, variance 1) from `rng`.
pub(crate) fn normal(rng: &mut Pcg64) -> f32 {
    rng.sample(StandardNormal)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn mix_is_splitmix64_and_keeps_its_values() {
        // One word w is the SplitMix64 finaliser of `GOLDEN_GAMMA ^ (w + GOLDEN_GAMMA)`; for
        // w = −GOLDEN_GAMMA that is the finaliser of GOLDEN_GAMMA, the first output of SplitMix64
        // seeded with 0 (Vigna's splitmix64.c: 0xe220a8397b1dcdaf).
        assert_eq!(mix(&[GOLDEN_GAMMA.wrapping_neg()]), 0xE220_A839_7B1D_CDAF);
        // The seed of augmentation draw (seed 7, epoch 3, image 11), as the earlier copy of this
        // function in `augment` computed it (recomputed outside Rust from the same formula): epoch
        // orders and augmentation draws did not change when the copies were merged.
        assert_eq!(mix(&[7, 0xA06, 3, 11]), 0x7B6D_AAD2_9A5A_DC45);
        // Deterministic, order- and length-sensitive.
        assert_eq!(mix(&[3, 5, 7]), mix(&[3, 5, 7]));
        assert_ne!(mix(&[3, 5]), mix(&[5, 3]));
        assert_ne!(mix(&[3]), mix(&[3, 0]));
    }

    #[test]
    fn stream_seeds_of_nearby_inputs_are_distinct_and_spread() {
        let mut seen = HashSet::new();
        let mut ones = 0u64;
        for seed in 0..8 {
            for stream in 0..8 {
                for index in 0..64 {
                    let s = stream_seed(seed, stream, index);
                    assert_eq!(s, stream_seed(seed, stream, index));
                    assert!(seen.insert(s), "({seed}, {stream}, {index}) collides");
                    ones += u64::from(s.count_ones());
                }
            }
        }
        // Half the bits set on average (4096 seeds · 64 bits; σ of the mean ≈ 0.06).
        let mean_ones = ones as f64 / seen.len() as f64;
        assert!(
            (mean_ones - 32.0).abs() < 0.5,
            "{mean_ones} bits set on average"
        );
    }

    #[test]
    fn normal_draws_have_standard_normal_moments() {
        let mut rng = Pcg64::seed_from_u64(stream_seed(11, 1, 0));
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| f64::from(normal(&mut rng))).collect();
        let n = n as f64;
        let mean = draws.iter().sum::<f64>() / n;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let skew = draws.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / n / var.powf(1.5);
        let kurt = draws.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / var.powi(2);
        // Standard errors at n = 200,000: mean 0.0022, variance 0.0032, skewness 0.0055,
        // kurtosis 0.011; the bounds are about 5 of them.
        assert!(mean.abs() < 0.011, "mean {mean}");
        assert!((var - 1.0).abs() < 0.016, "variance {var}");
        assert!(skew.abs() < 0.03, "skewness {skew}");
        assert!((kurt - 3.0).abs() < 0.06, "kurtosis {kurt}");
        // About 4.55% of a normal lies beyond 2σ.
        let tails = draws.iter().filter(|x| x.abs() > 2.0).count() as f64 / n;
        assert!((tails - 0.0455).abs() < 0.003, "P(|z| > 2) = {tails}");
    }

    #[test]
    fn normal_draws_are_a_function_of_the_stream() {
        let draw = |seed, stream, index| {
            let mut rng = Pcg64::seed_from_u64(stream_seed(seed, stream, index));
            (0..64).map(|_| normal(&mut rng)).collect::<Vec<f32>>()
        };
        let a = draw(1, 2, 3);
        assert_eq!(a, draw(1, 2, 3));
        for other in [draw(0, 2, 3), draw(1, 1, 3), draw(1, 2, 4)] {
            assert_ne!(a, other);
            // Unrelated streams: the sample correlation of 64 pairs is about N(0, 1/64).
            let corr = a.iter().zip(&other).map(|(x, y)| x * y).sum::<f32>()
                / (a.iter().map(|x| x * x).sum::<f32>() * other.iter().map(|y| y * y).sum::<f32>())
                    .sqrt();
            assert!(corr.abs() < 0.5, "correlation {corr}");
        }
    }
}
