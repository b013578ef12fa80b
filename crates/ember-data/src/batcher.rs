use burn::prelude::*;
use burn::tensor::ops::PadMode;

use crate::augment::Augmentation;
use crate::{DeviceImages, ImageSet, Normalization};

/// A batch ready for a model: normalised images `[batch, channels, height, width]` and class indices
/// `[batch]`.
#[derive(Clone, Debug)]
pub struct ImageBatch {
    /// Normalised images, `[batch, channels, height, width]`.
    pub images: Tensor<4>,
    /// Class indices, `[batch]`.
    pub targets: Tensor<1, Int>,
}

/// Turns images of a [`DeviceImages`] set into normalised (and, for training, augmented) batches,
/// entirely on the set's device.
///
/// A batch is gathered from the `u8` pixels already on the device, cropped and flipped by one
/// gather, then normalised: a step moves no pixel between host and device, and a GPU is not kept
/// waiting on the CPU. What reaches the device per epoch is the epoch's order and its crop/flip
/// draws (three small integers per image), uploaded once by [`ImageBatcher::epoch`]; the draws
/// remain a pure function of `(seed, epoch, image index)`, so a resumed run sees the same pixels.
#[derive(Clone, Debug)]
pub struct ImageBatcher {
    normalization: Normalization,
    augmentation: Option<Augmentation>,
}

/// The training batches of one epoch: its visiting order and crop/flip draws, on the device.
/// It holds its own handle to the images (tensor handles are shared, not copied), so a task can
/// keep the epoch's batches beside the images.
#[derive(Clone, Debug)]
pub struct EpochBatches {
    images: DeviceImages,
    /// Image indices in visiting order, `[n]`.
    order: Tensor<1, Int>,
    /// Per visited image: row offset, column offset and flip (0/1), `[n, 3]`; with the padding.
    draws: Option<(Tensor<2, Int>, usize)>,
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

    /// Uploads `set` to `device` (pixels as `u8`) with this batcher's normalisation constants.
    pub fn upload(&self, set: &ImageSet, device: &Device) -> DeviceImages {
        DeviceImages::upload(set, &self.normalization, device)
    }

    /// The training batches of epoch `epoch`, visiting `order` (indices into `images`), augmented
    /// (if configured) with the draws of `(seed, epoch, index)`.
    pub fn epoch(
        &self,
        images: &DeviceImages,
        order: &[usize],
        seed: u64,
        epoch: usize,
    ) -> EpochBatches {
        let device = images.device();
        let draws = self.augmentation.map(|aug| {
            let values: Vec<i64> = order
                .iter()
                .flat_map(|&index| {
                    let draw = aug.draw(seed, epoch, index);
                    [draw.dy as i64, draw.dx as i64, i64::from(draw.flip)]
                })
                .collect();
            let draws = TensorData::new(values, [order.len(), 3]);
            (Tensor::from_data(draws, &device), aug.crop_padding)
        });
        let order_values: Vec<i64> = order.iter().map(|&i| i as i64).collect();
        EpochBatches {
            images: images.clone(),
            order: Tensor::from_data(TensorData::new(order_values, [order.len()]), &device),
            draws,
        }
    }

    /// An evaluation batch: the `len` images of `images` from `start` on, normalised, never
    /// augmented.
    pub fn eval_batch(&self, images: &DeviceImages, start: usize, len: usize) -> ImageBatch {
        let (raw, targets) = images.range(start, len);
        ImageBatch {
            images: images.normalise(raw),
            targets,
        }
    }
}

impl EpochBatches {
    /// The batch of the `len` images visited from position `start` of the epoch's order on.
    pub fn batch(&self, start: usize, len: usize) -> ImageBatch {
        let indices = self.order.clone().narrow(0, start, len);
        let (raw, targets) = self.images.select(indices);
        let raw = match &self.draws {
            Some((draws, padding)) => {
                crop_and_flip(raw, draws.clone().narrow(0, start, len), *padding)
            }
            None => raw,
        };
        ImageBatch {
            images: self.images.normalise(raw),
            targets,
        }
    }
}

/// Crops every image of `raw` (`[b, c, h, w]`) at its drawn offset in the image zero-padded by
/// `padding` on every side, mirrored where drawn: output pixel `(y, x)` reads padded pixel
/// `(y + dy, x' + dx)` with `x' = w − 1 − x` when flipped, else `x`. One gather over the flattened
/// padded planes does it for the whole batch.
fn crop_and_flip(raw: Tensor<4, Int>, draws: Tensor<2, Int>, padding: usize) -> Tensor<4, Int> {
    let [b, c, h, w] = raw.dims();
    let padded_width = w + 2 * padding;
    let padded = raw
        .pad(
            [(padding, padding), (padding, padding)],
            PadMode::Constant(0.0),
        )
        .reshape([b, c, (h + 2 * padding) * padded_width]);
    let device = draws.device();
    let column = |k: usize| draws.clone().narrow(1, k, 1).reshape([b, 1, 1]);
    let (dy, dx, flip) = (column(0), column(1), column(2));
    let ys = Tensor::<1, Int>::arange(0..h as i64, &device).reshape([1, h, 1]);
    let xs = Tensor::<1, Int>::arange(0..w as i64, &device).reshape([1, 1, w]);
    // x + flip·(w − 1 − 2x): x unflipped, w − 1 − x flipped.
    let mirrored = xs
        .clone()
        .add(flip.mul(xs.mul_scalar(-2).add_scalar(w as i64 - 1)));
    let source = ys
        .add(dy)
        .mul_scalar(padded_width as i64)
        .add(mirrored.add(dx))
        .reshape([b, 1, h * w])
        .expand([b, c, h * w]);
    padded.gather(2, source).reshape([b, c, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CropFlip, ImageShape};

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
        let batcher = ImageBatcher::new(norm, None);
        let images = batcher.upload(&set, &Device::flex());
        let batch = batcher.eval_batch(&images, 0, 1);
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
        let images = batcher.upload(&set, &Device::flex());
        // Find an (epoch) whose draw for image 0 is a shift with a flip, then check the pixels by hand.
        let aug = Augmentation::cifar();
        let epoch = (0..1000)
            .find(|&e| {
                let d = aug.draw(5, e, 0);
                d.flip && d.dx == 5 && d.dy == 4
            })
            .expect("some epoch draws dx=5, dy=4 with a flip");
        let v = values(&batcher.epoch(&images, &[0], 5, epoch).batch(0, 1));
        // dy = 4 = padding: rows unshifted. dx = 5: output column x reads padded column x + 5,
        // i.e. original column x + 1 (column 3 falls in the zero padding). Flip mirrors output x.
        // Unflipped rows would be [20, 30, 0], [50, 60, 0], [80, 90, 0]; flipped: [0, 30, 20], ...
        let expected = [0., 30., 20., 0., 60., 50., 0., 90., 80.];
        for (a, b) in v.iter().zip(expected) {
            assert!((a - b).abs() < 1e-3, "{v:?}");
        }
    }

    /// The pixel an augmented image holds at `(channel, y, x)`, read the obvious way on the host.
    fn reference_pixel(
        set: &ImageSet,
        norm: &Normalization,
        index: usize,
        crop: CropFlip,
        padding: usize,
        (channel, y, x): (usize, usize, usize),
    ) -> f32 {
        let shape = set.shape();
        let (h, w) = (shape.height, shape.width);
        let x = if crop.flip { w - 1 - x } else { x };
        let row = (y + crop.dy).checked_sub(padding).filter(|&r| r < h);
        let col = (x + crop.dx).checked_sub(padding).filter(|&c| c < w);
        let raw = match (row, col) {
            (Some(r), Some(c)) => set.image(index)[channel * h * w + r * w + c],
            _ => 0,
        };
        norm.apply(channel, raw)
    }

    #[test]
    fn device_batches_match_a_host_reference_pixel_for_pixel() {
        // A non-square 3-channel set with every pixel value distinct enough to expose a wrong read.
        let shape = ImageShape {
            channels: 3,
            height: 5,
            width: 7,
        };
        let n = 40;
        let pixels: Vec<u8> = (0..n * shape.pixels())
            .map(|i| ((i * 37 + i / 11) % 251) as u8)
            .collect();
        let labels: Vec<u16> = (0..n).map(|i| (i % 3) as u16).collect();
        let names = vec!["a".into(), "b".into(), "c".into()];
        let set = ImageSet::new(shape.clone(), pixels, labels, names).unwrap();
        let norm = Normalization::fit(&set);
        let aug = Augmentation {
            crop_padding: 2,
            horizontal_flip: true,
        };
        let batcher = ImageBatcher::new(norm.clone(), Some(aug));
        let images = batcher.upload(&set, &Device::flex());
        let order = crate::epoch_order(n, 9, 3);
        let batches = batcher.epoch(&images, &order, 9, 3);
        let (start, len) = (8, 16);
        let batch = batches.batch(start, len);
        assert_eq!(batch.images.dims(), [len, 3, 5, 7]);
        let got = values(&batch);
        let mut flipped = 0;
        for (b, &index) in order[start..start + len].iter().enumerate() {
            let crop = aug.draw(9, 3, index);
            flipped += usize::from(crop.flip);
            for c in 0..3 {
                for y in 0..5 {
                    for x in 0..7 {
                        let want = reference_pixel(&set, &norm, index, crop, 2, (c, y, x));
                        let at = ((b * 3 + c) * 5 + y) * 7 + x;
                        assert!(
                            (got[at] - want).abs() <= 1e-6 * want.abs().max(1.0),
                            "image {index} (batch row {b}) pixel {:?}: {} vs {want}",
                            (c, y, x),
                            got[at]
                        );
                    }
                }
            }
        }
        assert!(0 < flipped && flipped < len, "both flips exercised");
        let targets: Vec<i64> = batch.targets.to_data().iter::<i64>().collect();
        let want: Vec<i64> = order[start..start + len]
            .iter()
            .map(|&i| i64::from(set.label(i)))
            .collect();
        assert_eq!(targets, want);
    }
}
