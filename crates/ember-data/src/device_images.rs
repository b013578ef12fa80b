//! [`DeviceImages`]: an [`ImageSet`] uploaded once to the device it trains on.

use burn::prelude::*;
use burn::tensor::DType;

use crate::{ImageSet, ImageShape, Normalization};

/// The pixels and labels of an [`ImageSet`], resident on one device.
///
/// Pixels stay `u8` (`[n, channels, height, width]`, 150 MB for CIFAR-10's training set rather
/// than 600 MB of `f32`); batches are gathered, augmented and normalised from them on the device
/// (see [`ImageBatcher`](crate::ImageBatcher)), so after the upload no step copies pixels between
/// host and device. Backends that cannot hold `u8` keep the pixels in their default integer type.
/// Made by [`ImageBatcher::upload`](crate::ImageBatcher::upload), which also puts the batcher's
/// normalisation constants on the device.
#[derive(Clone, Debug)]
pub struct DeviceImages {
    pixels: Tensor<4, Int>,
    labels: Tensor<1, Int>,
    /// Per-channel mean and standard deviation, `[1, c, 1, 1]`, on the 0..1 scale.
    mean: Tensor<4>,
    std: Tensor<4>,
    shape: ImageShape,
    len: usize,
}

impl DeviceImages {
    /// Copies `set` and `normalization` to `device`: one transfer each for pixels, labels and the
    /// two per-channel constants.
    pub(crate) fn upload(set: &ImageSet, normalization: &Normalization, device: &Device) -> Self {
        let shape = set.shape().clone();
        let dims = [set.len(), shape.channels, shape.height, shape.width];
        let pixels = TensorData::new(set.pixels().to_vec(), dims);
        let pixels = if device.supports_dtype(DType::U8) {
            Tensor::from_data(pixels, (device, DType::U8))
        } else {
            Tensor::from_data(pixels, device)
        };
        let labels: Vec<i64> = set.labels().iter().map(|&l| i64::from(l)).collect();
        let per_channel = |values: &[f32]| {
            Tensor::<1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
                .reshape([1, values.len(), 1, 1])
        };
        Self {
            pixels,
            labels: Tensor::from_data(TensorData::new(labels, [set.len()]), device),
            mean: per_channel(&normalization.mean),
            std: per_channel(&normalization.std),
            shape,
            len: set.len(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set has no image.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The shape of every image.
    pub fn shape(&self) -> &ImageShape {
        &self.shape
    }

    /// The device the set lives on.
    pub fn device(&self) -> Device {
        self.pixels.device()
    }

    /// `(x/255 − mean_c) / std_c` of raw pixels `x`, in the same f32 operations as
    /// [`Normalization::apply`].
    pub(crate) fn normalise(&self, raw: Tensor<4, Int>) -> Tensor<4> {
        raw.float()
            .div_scalar(255.0)
            .sub(self.mean.clone())
            .div(self.std.clone())
    }

    /// Raw pixels `[n, c, h, w]` of the images at `indices` (a device tensor of indices).
    pub(crate) fn select(&self, indices: Tensor<1, Int>) -> (Tensor<4, Int>, Tensor<1, Int>) {
        (
            self.pixels.clone().select(0, indices.clone()),
            self.labels.clone().select(0, indices),
        )
    }

    /// Raw pixels and labels of the `len` images from `start` on, in index order.
    pub(crate) fn range(&self, start: usize, len: usize) -> (Tensor<4, Int>, Tensor<1, Int>) {
        (
            self.pixels.clone().narrow(0, start, len),
            self.labels.clone().narrow(0, start, len),
        )
    }
}
