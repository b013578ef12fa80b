//! [`ImageSet`]: the one in-memory form every reader in this crate returns.
//!
//! Keeping a single representation means models and training code are written once, whatever the
//! source (CIFAR binary, IDX, image folders, generated). Images are stored as raw `u8` in planar
//! CHW order (all red values, then all green, then all blue) because that is both the order of the
//! official CIFAR files (no reshuffle when loading) and the `[channels, height, width]` order that
//! convolution layers take; `u8` keeps 50,000 CIFAR images at 150 MB instead of 600 MB of `f32`.

use rand::SeedableRng;
use rand_pcg::Pcg64;

use crate::error::{DataError, Result};
use crate::random::{normal, stream_seed};

/// Stream tags of the pixel noise: a lone set and the two halves of a split never share random
/// numbers.
const NOISE_STREAM: u64 = 0x6e6f_6973_655f_0001;
const NOISE_TRAIN: u64 = 0x6e6f_6973_655f_0002;
const NOISE_TEST: u64 = 0x6e6f_6973_655f_0003;

/// Size of one image: channels × height × width.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageShape {
    /// Colour planes: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageShape {
    /// Bytes (values) in one image: `channels * height * width`.
    pub fn pixels(&self) -> usize {
        self.channels * self.height * self.width
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// Labelled images of one shape, each stored as `u8` in planar CHW order.
///
/// The constructor checks every invariant, so the accessors cannot find inconsistent data.
#[derive(Clone, Debug)]
pub struct ImageSet {
    shape: ImageShape,
    images: Vec<u8>,
    labels: Vec<u16>,
    class_names: Vec<String>,
}

impl ImageSet {
    /// Builds a set from `labels.len()` images laid end to end in `images`.
    ///
    /// Fails with [`DataError::Invalid`] when the shape has a zero dimension, when there is no
    /// class name, when `images.len()` is not `labels.len() * shape.pixels()`, or when a label is
    /// not below `class_names.len()`.
    pub fn new(
        shape: ImageShape,
        images: Vec<u8>,
        labels: Vec<u16>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        if shape.pixels() == 0 {
            return Err(DataError::invalid(
                "shape",
                format!("every dimension must be at least 1, got {shape}"),
            ));
        }
        if class_names.is_empty() {
            return Err(DataError::invalid(
                "class_names",
                "a data set needs at least one class name",
            ));
        }
        let expected = labels.len().checked_mul(shape.pixels());
        if expected != Some(images.len()) {
            return Err(DataError::invalid(
                "images",
                format!(
                    "{} labels of {shape} images need {} bytes, got {}",
                    labels.len(),
                    labels.len() as u128 * shape.pixels() as u128,
                    images.len()
                ),
            ));
        }
        if let Some((i, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= class_names.len())
        {
            return Err(DataError::invalid(
                "labels",
                format!(
                    "image {i} has label {label} but there are only {} classes",
                    class_names.len()
                ),
            ));
        }
        Ok(Self {
            shape,
            images,
            labels,
            class_names,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape shared by all images.
    pub fn shape(&self) -> &ImageShape {
        &self.shape
    }

    /// Number of classes (`class_names().len()`); labels are `0..num_classes()`.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Image `i` as `shape().pixels()` bytes in CHW order.
    ///
    /// # Panics
    /// If `i >= len()` (a programming error, like slice indexing).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.pixels();
        &self.images[i * n..(i + 1) * n]
    }

    /// Label of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn label(&self, i: usize) -> u16 {
        self.labels[i]
    }

    /// All labels, in image order.
    pub fn labels(&self) -> &[u16] {
        &self.labels
    }

    /// All images laid end to end (`len() * shape().pixels()` bytes), ready to copy into an
    /// `[N, C, H, W]` tensor.
    pub fn pixels(&self) -> &[u8] {
        &self.images
    }

    /// Number of images of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// A smaller set of `n` images for quick runs, as balanced across classes as the data allows.
    ///
    /// "The first `n` images" would be wrong for sources stored class by class (image folders are
    /// read class after class, so the first 1,000 CIFAR images would all be airplanes). Instead,
    /// images are taken in their stored order while each class is below its quota of
    /// `ceil(n / num_classes)`; if some classes are too small to fill their quota, the remaining
    /// places go to the earliest skipped images. The result keeps the original relative order and
    /// is deterministic. If `n >= len()` the whole set is returned.
    pub fn subset(&self, n: usize) -> ImageSet {
        if n >= self.len() {
            return self.clone();
        }
        let quota = n.div_ceil(self.num_classes());
        let mut taken = vec![false; self.len()];
        let mut per_class = vec![0usize; self.num_classes()];
        let mut count = 0;
        for (i, &l) in self.labels.iter().enumerate() {
            if count == n {
                break;
            }
            let c = &mut per_class[usize::from(l)];
            if *c < quota {
                *c += 1;
                taken[i] = true;
                count += 1;
            }
        }
        for t in taken.iter_mut() {
            if count == n {
                break;
            }
            if !*t {
                *t = true;
                count += 1;
            }
        }
        let px = self.shape.pixels();
        let mut images = Vec::with_capacity(n * px);
        let mut labels = Vec::with_capacity(n);
        for (i, _) in taken.iter().enumerate().filter(|(_, &t)| t) {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        ImageSet {
            shape: self.shape.clone(),
            images,
            labels,
            class_names: self.class_names.clone(),
        }
    }

    /// The same set with Gaussian noise of standard deviation `sigma` (in units of the full 0..1
    /// intensity range, so `255·sigma` in pixel values) added once to every value of every image,
    /// rounded and clamped to `0..=255`; labels, shape and class names are unchanged.
    ///
    /// A fixed corruption of the data, unlike augmentation: every epoch sees the same noisy pixels.
    /// Image `i` draws from its own stream of `(seed, i)`, so the result depends on the seed and the
    /// set, not on how it is processed. `sigma = 0` returns the set unchanged. Fails with
    /// [`DataError::Invalid`] for a negative or non-finite `sigma`.
    pub fn with_pixel_noise(&self, sigma: f64, seed: u64) -> Result<ImageSet> {
        self.noisy(sigma, seed, NOISE_STREAM)
    }

    /// [`with_pixel_noise`](Self::with_pixel_noise) drawing from stream `stream` of `seed`.
    fn noisy(&self, sigma: f64, seed: u64, stream: u64) -> Result<ImageSet> {
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(DataError::invalid(
                "pixel_noise",
                format!("the noise standard deviation must be finite and at least 0, got {sigma}"),
            ));
        }
        if sigma == 0.0 {
            return Ok(self.clone());
        }
        let scale = (255.0 * sigma) as f32;
        let mut images = self.images.clone();
        let px = self.shape.pixels();
        for (i, image) in images.chunks_exact_mut(px).enumerate() {
            let mut rng = Pcg64::seed_from_u64(stream_seed(seed, stream, i as u64));
            for value in image {
                let noisy = f32::from(*value) + scale * normal(&mut rng);
                *value = noisy.round().clamp(0.0, 255.0) as u8;
            }
        }
        Ok(ImageSet {
            shape: self.shape.clone(),
            images,
            labels: self.labels.clone(),
            class_names: self.class_names.clone(),
        })
    }

    /// The same set with grey images turned into three equal RGB planes (a no-op for RGB sets).
    ///
    /// Used when the two halves of a data set must agree on the channel count.
    pub fn to_rgb(&self) -> ImageSet {
        if self.shape.channels != 1 {
            return self.clone();
        }
        let plane = self.shape.height * self.shape.width;
        let mut images = Vec::with_capacity(self.images.len() * 3);
        for img in self.images.chunks_exact(plane) {
            for _ in 0..3 {
                images.extend_from_slice(img);
            }
        }
        ImageSet {
            shape: ImageShape {
                channels: 3,
                ..self.shape.clone()
            },
            images,
            labels: self.labels.clone(),
            class_names: self.class_names.clone(),
        }
    }
}

/// The two halves every data source yields.
#[derive(Clone, Debug)]
pub struct Split {
    /// Images to train on.
    pub train: ImageSet,
    /// Held-out images to measure accuracy on.
    pub test: ImageSet,
}

impl Split {
    /// Both halves with [`ImageSet::with_pixel_noise`], the training and test images drawing from
    /// different random streams of `seed`.
    pub fn with_pixel_noise(&self, sigma: f64, seed: u64) -> Result<Split> {
        Ok(Split {
            train: self.train.noisy(sigma, seed, NOISE_TRAIN)?,
            test: self.test.noisy(sigma, seed, NOISE_TEST)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    fn shape(c: usize) -> ImageShape {
        ImageShape {
            channels: c,
            height: 2,
            width: 2,
        }
    }

    #[test]
    fn new_checks_lengths_and_labels() {
        let ok = ImageSet::new(shape(1), vec![0; 8], vec![0, 1], names(2)).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok.image(1), &[0, 0, 0, 0]);

        let e = ImageSet::new(shape(1), vec![0; 7], vec![0, 1], names(2)).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::Invalid {
                    field: "images",
                    ..
                }
            ),
            "{e}"
        );

        let e = ImageSet::new(shape(1), vec![0; 8], vec![0, 2], names(2)).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::Invalid {
                    field: "labels",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("image 1 has label 2"), "{e}");

        let e = ImageSet::new(shape(0), vec![], vec![], names(2)).unwrap_err();
        assert!(
            matches!(e, DataError::Invalid { field: "shape", .. }),
            "{e}"
        );

        let e = ImageSet::new(shape(1), vec![], vec![], vec![]).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::Invalid {
                    field: "class_names",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn subset_balances_classes_stored_class_by_class() {
        // 4 images of class 0, then 4 of class 1, then 1 of class 2: like an image folder.
        let labels = vec![0, 0, 0, 0, 1, 1, 1, 1, 2];
        let images: Vec<u8> = (0..9u8).flat_map(|i| [i; 4]).collect();
        let set = ImageSet::new(shape(1), images, labels, names(3)).unwrap();

        let s = set.subset(6);
        assert_eq!(s.len(), 6);
        // quota 2 per class: 2 of class 0, 2 of class 1, 1 of class 2, then the earliest skipped.
        assert_eq!(s.labels(), &[0, 0, 0, 1, 1, 2]);
        assert_eq!(s.image(2), &[2, 2, 2, 2]);
        assert_eq!(s.class_counts(), vec![3, 2, 1]);

        let all = set.subset(100);
        assert_eq!(all.len(), 9);
        assert!(set.subset(0).is_empty());
    }

    /// `n` mid-grey images with labels cycling through 3 classes.
    fn grey_set(n: usize) -> ImageSet {
        let shape = ImageShape {
            channels: 3,
            height: 16,
            width: 16,
        };
        let images = vec![128; n * shape.pixels()];
        let labels = (0..n).map(|i| (i % 3) as u16).collect();
        ImageSet::new(shape, images, labels, names(3)).unwrap()
    }

    #[test]
    fn zero_pixel_noise_leaves_the_set_unchanged() {
        let set = grey_set(4);
        let same = set.with_pixel_noise(0.0, 9).unwrap();
        assert_eq!(same.pixels(), set.pixels());
        assert_eq!(same.labels(), set.labels());
    }

    #[test]
    fn pixel_noise_has_mean_zero_and_the_asked_deviation() {
        let set = grey_set(20);
        let sigma = 0.1;
        let noisy = set.with_pixel_noise(sigma, 5).unwrap();
        // 15,360 values, 128 ± 5σ stays inside 0..=255, so clamping plays no part.
        let deltas: Vec<f64> = noisy
            .pixels()
            .iter()
            .map(|&v| f64::from(v) - 128.0)
            .collect();
        let n = deltas.len() as f64;
        let mean = deltas.iter().sum::<f64>() / n;
        let std = (deltas.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
        // Standard errors: 25.5/√n ≈ 0.21 for the mean, 25.5/√(2n) ≈ 0.15 for the deviation.
        assert!(mean.abs() < 0.8, "mean {mean}");
        assert!((std - 255.0 * sigma).abs() < 0.6, "std {std}");
        assert_eq!(noisy.labels(), set.labels());
        assert_eq!(noisy.class_names(), set.class_names());
        assert_eq!(noisy.shape(), set.shape());
    }

    #[test]
    fn pixel_noise_is_a_function_of_the_seed() {
        let set = grey_set(3);
        let a = set.with_pixel_noise(0.2, 1).unwrap();
        assert_eq!(a.pixels(), set.with_pixel_noise(0.2, 1).unwrap().pixels());
        assert_ne!(a.pixels(), set.with_pixel_noise(0.2, 2).unwrap().pixels());
        // Equal images get different noise, and so do the two halves of a split.
        assert_ne!(a.image(0), a.image(1));
        let split = Split {
            train: set.clone(),
            test: set.clone(),
        }
        .with_pixel_noise(0.2, 1)
        .unwrap();
        assert_ne!(split.train.pixels(), split.test.pixels());
        // Strong noise clamps instead of wrapping around.
        let loud = set.with_pixel_noise(10.0, 1).unwrap();
        let extremes = loud
            .pixels()
            .iter()
            .filter(|&&v| v == 0 || v == 255)
            .count();
        assert!(extremes > loud.pixels().len() * 9 / 10, "{extremes}");
    }

    #[test]
    fn bad_pixel_noise_is_refused() {
        for sigma in [-0.1, f64::NAN, f64::INFINITY] {
            let e = grey_set(1).with_pixel_noise(sigma, 0).unwrap_err();
            assert!(
                matches!(
                    e,
                    DataError::Invalid {
                        field: "pixel_noise",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn to_rgb_repeats_the_grey_plane() {
        let set = ImageSet::new(shape(1), vec![1, 2, 3, 4], vec![0], names(1)).unwrap();
        let rgb = set.to_rgb();
        assert_eq!(rgb.shape().channels, 3);
        assert_eq!(rgb.image(0), &[1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
    }
}
