use burn::prelude::*;

use crate::augment::{Augmentation, CropFlip};
use crate::{ImageSet, Normalization};

/// A batch ready for a model: normalised images `[batch, channels, height, width]` and class indices
/// `[batch]`.
#[derive(Clone, Debug)]
pub struct ImageBatch {
    pub images: Tensor<4>,
    pub targets: Tensor<1, Int>,
}

/// Turns images of an [`ImageSet`] into normalised (and, for training, augmented) tensors.
///
/// Pixels are prepared on the host in one pass (crop, flip and normalise fused per pixel) and
/// uploaded with a single `from_data`, which keeps host→device traffic to one copy per batch on GPUs.
#[derive(Clone, Debug)]
pub struct ImageBatcher {
    normalization: Normalization,
    augmentation: Option<Augmentation>,
}

impl ImageBatcher {
    /// A batcher with the given normalisation and optional training-time augmentation.
    pub fn new(normalization: Normalization, augmentation: Option<Augmentation>) -> Self {
        Self {
            normalization,
            augmentation,
        }
    }

    /// The normalisation this batcher applies.
    pub fn normalization(&self) -> &Normalization {
        &self.normalization
    }

    /// A training batch: augmented (if configured) with the draws of `(seed, epoch, index)`.
    pub fn train_batch(
        &self,
        set: &ImageSet,
        indices: &[usize],
        seed: u64,
        epoch: usize,
        device: &Device,
    ) -> ImageBatch {
        self.build(set, indices, device, |index| match self.augmentation {
            Some(aug) => (aug.crop_padding, aug.draw(seed, epoch, index)),
            None => (0, CropFlip::identity(0)),
        })
    }

    /// An evaluation batch: normalised, never augmented.
    pub fn eval_batch(&self, set: &ImageSet, indices: &[usize], device: &Device) -> ImageBatch {
        self.build(set, indices, device, |_| (0, CropFlip::identity(0)))
    }

    fn build(
        &self,
        set: &ImageSet,
        indices: &[usize],
        device: &Device,
        crop_of: impl Fn(usize) -> (usize, CropFlip),
    ) -> ImageBatch {
        let shape = set.shape();
        let (c, h, w) = (shape.channels, shape.height, shape.width);
        let mut pixels = Vec::with_capacity(indices.len() * c * h * w);
        let mut targets = Vec::with_capacity(indices.len());
        for &index in indices {
            let image = set.image(index);
            let (padding, crop) = crop_of(index);
            for channel in 0..c {
                let plane = &image[channel * h * w..(channel + 1) * h * w];
                // The value a zero (black) padding pixel takes after normalisation.
                let pad_value = self.normalization.apply(channel, 0);
                for y in 0..h {
                    // Row in the original image, or None inside the padding.
                    let src_y = (y + crop.dy).checked_sub(padding).filter(|&r| r < h);
                    for x in 0..w {
                        let x = if crop.flip { w - 1 - x } else { x };
                        let src_x = (x + crop.dx).checked_sub(padding).filter(|&col| col < w);
                        pixels.push(match (src_y, src_x) {
                            (Some(r), Some(col)) => {
                                self.normalization.apply(channel, plane[r * w + col])
                            }
                            _ => pad_value,
                        });
                    }
                }
            }
            targets.push(set.label(index) as i64);
        }
        let batch = indices.len();
        ImageBatch {
            images: Tensor::from_data(TensorData::new(pixels, [batch, c, h, w]), device),
            targets: Tensor::from_data(TensorData::new(targets, [batch]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageShape;

    /// One 1-channel 3×3 image with pixels 0..9 (scaled ×10) and an identity normalisation on the
    /// 0..255 scale (mean 0, std 1/255), so tensor values equal raw pixel values.
    fn tiny() -> (ImageSet, Normalization) {
        let shape = ImageShape {
            channels: 1,
            height: 3,
            width: 3,
        };
        let pixels: Vec<u8> = (0..9).map(|v| v * 10 + 10).collect();
        let set = ImageSet::new(shape, pixels, vec![1], vec!["a".into(), "b".into()]).unwrap();
        let norm = Normalization {
            mean: vec![0.0],
            std: vec![1.0 / 255.0],
        };
        (set, norm)
    }

    fn values(batch: &ImageBatch) -> Vec<f32> {
        batch.images.to_data().iter::<f32>().collect()
    }

    #[test]
    fn eval_batch_is_the_normalised_image() {
        let (set, norm) = tiny();
        let batch = ImageBatcher::new(norm, None).eval_batch(&set, &[0], &Device::flex());
        assert_eq!(batch.images.dims(), [1, 1, 3, 3]);
        let v = values(&batch);
        let expected = [10., 20., 30., 40., 50., 60., 70., 80., 90.];
        for (a, b) in v.iter().zip(expected) {
            assert!((a - b).abs() < 1e-3, "{v:?}");
        }
        assert_eq!(
            batch.targets.to_data().iter::<i64>().collect::<Vec<_>>(),
            vec![1]
        );
    }

    #[test]
    fn crop_and_flip_move_pixels_as_drawn() {
        let (set, norm) = tiny();
        let batcher = ImageBatcher::new(norm, Some(Augmentation::cifar()));
        // Find an (epoch) whose draw for image 0 is a shift with a flip, then check the pixels by hand.
        let aug = Augmentation::cifar();
        let epoch = (0..1000)
            .find(|&e| {
                let d = aug.draw(5, e, 0);
                d.flip && d.dx == 5 && d.dy == 4
            })
            .expect("some epoch draws dx=5, dy=4 with a flip");
        let v = values(&batcher.train_batch(&set, &[0], 5, epoch, &Device::flex()));
        // dy = 4 = padding: rows unshifted. dx = 5: output column x reads padded column x + 5,
        // i.e. original column x + 1 (column 3 falls in the zero padding). Flip mirrors output x.
        // Unflipped rows would be [20, 30, 0], [50, 60, 0], [80, 90, 0]; flipped: [0, 30, 20], ...
        let expected = [0., 30., 20., 0., 60., 50., 0., 90., 80.];
        for (a, b) in v.iter().zip(expected) {
            assert!((a - b).abs() < 1e-3, "{v:?}");
        }
    }
}
