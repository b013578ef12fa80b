//! A validation set carved out of a training set: what hyper-parameters are selected on, so that
//! the test set is read only for the final report.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64;

use crate::error::{DataError, Result};
use crate::image_set::ImageSet;

/// Splits `set` into `(train, validation)` with `size` images in the validation half, class by
/// class in proportion to the class sizes (largest remainders first, so the total is exact), the
/// images of each class chosen by a shuffle seeded by `seed`. Both halves keep the original
/// relative order; equal inputs give equal halves on every machine.
///
/// Fails with [`DataError::Invalid`] (field `validation`) when `size` is 0 or leaves no image to
/// train on.
pub fn split_validation(set: &ImageSet, size: usize, seed: u64) -> Result<(ImageSet, ImageSet)> {
    if size == 0 || size >= set.len() {
        return Err(DataError::invalid(
            "validation",
            format!(
                "must hold between 1 and {} images (the training set has {}), got {size}",
                set.len().saturating_sub(1),
                set.len()
            ),
        ));
    }
    let counts = set.class_counts();
    let quotas = proportional_quotas(&counts, size);
    let mut rng = Pcg64::seed_from_u64(crate::random::mix(&[seed, VALIDATION_STREAM]));
    let mut held = vec![false; set.len()];
    for (class, &quota) in quotas.iter().enumerate() {
        let mut members: Vec<usize> = (0..set.len())
            .filter(|&i| usize::from(set.label(i)) == class)
            .collect();
        members.shuffle(&mut rng);
        for &i in &members[..quota] {
            held[i] = true;
        }
    }
    let pick = |keep: bool| -> Result<ImageSet> {
        let chosen: Vec<usize> = (0..set.len()).filter(|&i| held[i] == keep).collect();
        let mut images = Vec::with_capacity(chosen.len() * set.shape().pixels());
        for &i in &chosen {
            images.extend_from_slice(set.image(i));
        }
        ImageSet::new(
            set.shape().clone(),
            images,
            chosen.iter().map(|&i| set.label(i)).collect(),
            set.class_names().to_vec(),
        )
    };
    Ok((pick(false)?, pick(true)?))
}

/// Keeps the validation draws apart from every other stream seeded by the same seed.
const VALIDATION_STREAM: u64 = 0x7661_6c69_6461_7465; // "validate"

/// `total` places shared among classes in proportion to `counts` (Hamilton's method: floors, then
/// one more for the largest remainders, lower class index first on ties).
fn proportional_quotas(counts: &[usize], total: usize) -> Vec<usize> {
    let all: usize = counts.iter().sum();
    let mut quotas: Vec<usize> = counts.iter().map(|&c| c * total / all).collect();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    // Remainder of class c: (c·total mod all) / all; compare the numerators.
    order.sort_by_key(|&c| std::cmp::Reverse(counts[c] * total % all));
    let missing = total - quotas.iter().sum::<usize>();
    for &c in order.iter().take(missing) {
        quotas[c] += 1;
    }
    quotas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_set::ImageShape;

    /// `per_class[c]` images of class c, each a single pixel holding its own index.
    fn set(per_class: &[usize]) -> ImageSet {
        let labels: Vec<u16> = per_class
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c as u16, n))
            .collect();
        let images = (0..labels.len()).map(|i| i as u8).collect();
        let shape = ImageShape {
            channels: 1,
            height: 1,
            width: 1,
        };
        let names = (0..per_class.len()).map(|c| format!("c{c}")).collect();
        ImageSet::new(shape, images, labels, names).unwrap()
    }

    #[test]
    fn the_halves_partition_the_set_in_class_proportions() {
        let full = set(&[60, 30, 10]);
        let (train, val) = split_validation(&full, 20, 5).unwrap();
        assert_eq!((train.len(), val.len()), (80, 20));
        assert_eq!(val.class_counts(), [12, 6, 2]);
        // Every image lands in exactly one half, each half in the original order.
        let mut seen: Vec<u8> = train.pixels().iter().chain(val.pixels()).copied().collect();
        assert!(train.pixels().windows(2).all(|w| w[0] < w[1]));
        assert!(val.pixels().windows(2).all(|w| w[0] < w[1]));
        seen.sort_unstable();
        assert_eq!(seen, (0..100).map(|i| i as u8).collect::<Vec<_>>());
        // Labels travel with their images.
        for (i, &p) in val.pixels().iter().enumerate() {
            assert_eq!(val.label(i), full.label(usize::from(p)));
        }
    }

    #[test]
    fn the_split_is_a_function_of_the_seed() {
        let full = set(&[50, 50]);
        let a = split_validation(&full, 10, 1).unwrap().1;
        let b = split_validation(&full, 10, 1).unwrap().1;
        let c = split_validation(&full, 10, 2).unwrap().1;
        assert_eq!(a.pixels(), b.pixels());
        assert_ne!(a.pixels(), c.pixels());
        // Not simply the first images of each class.
        assert_ne!(a.pixels(), [0, 1, 2, 3, 4, 50, 51, 52, 53, 54]);
    }

    #[test]
    fn remainders_go_to_the_largest_fractions_and_bad_sizes_are_refused() {
        // 3 places over classes of 7, 2 and 1: shares 2.1, 0.6, 0.3, floors 2, 0, 0; the place
        // left over goes to the largest remainder (0.6).
        assert_eq!(proportional_quotas(&[7, 2, 1], 3), [2, 1, 0]);
        assert_eq!(proportional_quotas(&[1, 1, 1], 2), [1, 1, 0]);
        let full = set(&[3, 3]);
        for size in [0, 6, 7] {
            let err = split_validation(&full, size, 0).unwrap_err();
            assert!(err.to_string().contains("validation"), "{err}");
        }
    }
}
