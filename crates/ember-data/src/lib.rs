//! Data sets for Ember.
//!
//! Every source is read into the same in-memory form, [`ImageSet`] (labelled `u8` images in
//! planar CHW order, one shape per set), and yields a train/test [`Split`]:
//!
//! * [`load_cifar`] / [`download_cifar`]: CIFAR-10 and CIFAR-100 in the official binary layout;
//! * [`load_idx`] / [`load_fashion_mnist`]: MNIST-style IDX files, gzip-compressed or not;
//! * [`load_image_folder`] / [`load_image_folder_split`]: one sub-folder of PNG/JPEG per class;
//! * [`GeneratedConfig::generate`]: a seeded, generated texture-classification set that needs no
//!   file at all;
//! * [`SignalNoiseConfig::generate`]: the two-patch signal–noise vectors of the SignGD theory
//!   (not images: the study feeds them to `SignalNoiseAttention` directly).
//!
//! Readers treat files as untrusted: every defect is reported as a [`DataError`] naming the file,
//! the record and what was expected, never as a panic.

pub mod cifar;
pub mod error;
pub mod generated;
pub mod idx;
pub mod image_folder;
pub mod image_set;
pub mod signal_noise;

pub use cifar::{download_cifar, load_cifar, CifarKind, CIFAR10_CLASSES};
pub use error::{DataError, Result};
pub use generated::{GeneratedConfig, MAX_GENERATED_CLASSES};
pub use idx::{load_fashion_mnist, load_idx, FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR};
pub use image_folder::{load_image_folder, load_image_folder_split};
pub use image_set::{ImageSet, ImageShape, Split};
pub use signal_noise::{SignalNoiseConfig, SignalNoiseSet, SignalNoiseSplit, SIGNAL_NOISE_PATCHES};

// Turning images into tensors: normalisation, augmentation, epoch order and batching.
mod augment;
mod batcher;
mod normalize;
mod random;
mod sampler;

pub use augment::{Augmentation, CropFlip};
pub use batcher::{ImageBatch, ImageBatcher};
pub use normalize::Normalization;
pub use sampler::epoch_order;
