//! Seeded random numbers shared by the generated data sets: one generator per (seed, stream,
//! index), so any item can be drawn in any order, and a Gaussian sampler that needs no
//! distribution crate.

use std::f32::consts::PI;

use rand::RngExt;
use rand_pcg::Pcg64;

/// Standard normal samples by the Box–Muller transform, using both values of each pair.
#[derive(Default)]
pub(crate) struct Normal {
    spare: Option<f32>,
}

impl Normal {
    pub(crate) fn sample(&mut self, rng: &mut Pcg64) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - rng.random::<f32>(); // in (0, 1]: ln is finite
        let u2 = rng.random::<f32>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * PI * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }
}

/// SplitMix64 finaliser: a bijective mix that decorrelates nearby inputs (seeds 0, 1, 2...).
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of one item's generator from (seed, stream, index); distinct streams (train, test) never
/// share random numbers.
pub(crate) fn stream_seed(seed: u64, stream: u64, index: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ index)
}
