use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::random::mix;

/// Random-crop-with-padding and horizontal-flip augmentation (the standard CIFAR recipe).
///
/// The random choices for an image are a pure function of `(seed, epoch, image index)`, not of a
/// generator that advances as batches are drawn. That makes augmentation independent of batch size
/// and order, and lets a resumed run see exactly the pixels an uninterrupted run would have seen
/// without saving any generator state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Augmentation {
    /// Zero padding added on every side before cropping back to the original size (4 for CIFAR).
    pub crop_padding: usize,
    /// Whether to flip left–right with probability ½.
    pub horizontal_flip: bool,
}

/// Where to read a pixel from for one augmented image: a crop offset in the padded image and
/// whether the image is mirrored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropFlip {
    /// Row offset into the padded image, in `0..=2·padding`.
    pub dy: usize,
    /// Column offset into the padded image, in `0..=2·padding`.
    pub dx: usize,
    /// Mirror left–right.
    pub flip: bool,
}

impl Augmentation {
    /// The usual CIFAR augmentation: pad 4, random crop, random horizontal flip.
    pub fn cifar() -> Self {
        Self {
            crop_padding: 4,
            horizontal_flip: true,
        }
    }

    /// The crop and flip for image `index` in epoch `epoch` of a run seeded with `seed`.
    pub fn draw(&self, seed: u64, epoch: usize, index: usize) -> CropFlip {
        let mut rng = Pcg64::seed_from_u64(mix(&[seed, 0xA06_u64, epoch as u64, index as u64]));
        let span = 2 * self.crop_padding;
        CropFlip {
            dy: rng.random_range(0..=span),
            dx: rng.random_range(0..=span),
            flip: self.horizontal_flip && rng.random_bool(0.5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_cover_every_offset() {
        let aug = Augmentation::cifar();
        assert_eq!(aug.draw(7, 3, 11), aug.draw(7, 3, 11));
        let draws: Vec<CropFlip> = (0..2000).map(|i| aug.draw(7, 0, i)).collect();
        for offset in 0..=8 {
            assert!(
                draws.iter().any(|d| d.dx == offset),
                "dx {offset} never drawn"
            );
            assert!(
                draws.iter().any(|d| d.dy == offset),
                "dy {offset} never drawn"
            );
        }
        assert!(draws.iter().all(|d| d.dx <= 8 && d.dy <= 8));
        let flips = draws.iter().filter(|d| d.flip).count();
        assert!(
            (850..1150).contains(&flips),
            "flip rate {flips}/2000 far from 1/2"
        );
        // A different epoch reshuffles the augmentation of the same image.
        let other: Vec<CropFlip> = (0..50).map(|i| aug.draw(7, 1, i)).collect();
        assert_ne!(&draws[..50], &other[..]);
    }

    #[test]
    fn no_flip_when_disabled() {
        let aug = Augmentation {
            crop_padding: 2,
            horizontal_flip: false,
        };
        assert!((0..500).all(|i| !aug.draw(1, 0, i).flip));
    }
}
