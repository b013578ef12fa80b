use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64;

use crate::random::mix;

/// The order in which epoch `epoch` visits `len` training examples: a permutation that depends only
/// on `(seed, epoch)`.
///
/// Like augmentation, the order is recomputed rather than carried in a generator, so resuming at an
/// epoch boundary needs no saved state to reproduce the data order exactly.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = Pcg64::seed_from_u64(mix(&[seed, 0x5EED_0DE5, epoch as u64]));
    order.shuffle(&mut rng);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_seeded_permutation_that_changes_every_epoch() {
        let a = epoch_order(1000, 42, 0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(1000, 42, 0));
        assert_ne!(a, epoch_order(1000, 42, 1));
        assert_ne!(a, epoch_order(1000, 43, 0));
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
    }
}
