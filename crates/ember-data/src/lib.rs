//! Data sets for Ember.
//!
//! Every source is read into the same in-memory form, [`ImageSet`] (labelled `u8` images in
//! planar CHW order, one shape per set), and yields a train/test [`Split`]:
//!
//! * [`load_cifar`]: CIFAR-10 and CIFAR-100 in the official binary layout (`download_cifar`
//!   fetches the official archives);
//! * [`load_idx`] / [`load_fashion_mnist`]: MNIST-style IDX files, gzip-compressed or not;
//! * `load_image_folder` / `load_image_folder_split`: one sub-folder of PNG/JPEG per class;
//! * [`GeneratedConfig::generate`]: a seeded, generated texture-classification set that needs no
//!   file at all;
//! * [`SignalNoiseConfig::generate`]: the two-patch signal–noise vectors of the SignGD theory
//!   (not images: the study feeds them to `SignalNoiseAttention` directly).
//!
//! Readers treat files as untrusted: every defect is reported as a [`DataError`] naming the file,
//! the record and what was expected, never as a panic.
//!
//! # Features
//!
//! Both are on by default; a crate that only trains on data it already has can turn them off
//! (`default-features = false`) and build neither an HTTP client nor an image decoder:
//!
//! * `download`: `download_cifar` and the `download` module (HTTP via `ureq`, MD5, `tar`);
//! * `image-folder`: `load_image_folder` / `load_image_folder_split` and the `image_folder`
//!   module (PNG/JPEG decoding via `image`).
//!
//! Everything else (the CIFAR binary and IDX readers, generated and signal–noise data, batching,
//! augmentation, normalisation) is always built.

#![warn(missing_docs)]

pub mod cifar;
#[cfg(feature = "download")]
pub mod download;
pub mod error;
pub mod generated;
pub mod holdout;
pub mod idx;
#[cfg(feature = "image-folder")]
pub mod image_folder;
pub mod image_set;
pub mod signal_noise;
pub mod text;

pub use cifar::{load_cifar, CifarKind, CIFAR10_CLASSES};
#[cfg(feature = "download")]
pub use download::download_cifar;
pub use error::{DataError, Result};
pub use generated::{GeneratedConfig, MAX_GENERATED_CLASSES};
pub use holdout::split_validation;
pub use idx::{load_fashion_mnist, load_idx, FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR};
#[cfg(feature = "image-folder")]
pub use image_folder::{load_image_folder, load_image_folder_split};
pub use image_set::{ImageSet, ImageShape, Split};
pub use signal_noise::{SignalNoiseConfig, SignalNoiseSet, SignalNoiseSplit, SIGNAL_NOISE_PATCHES};
pub use text::{TextCorpus, TextSplits, TokenSplit, Tokenization, Vocabulary};

// Turning images into tensors: normalisation, augmentation, epoch order and batching.
mod augment;
mod batcher;
mod device_images;
mod normalize;
mod random;
mod sampler;

pub use augment::{Augmentation, CropFlip};
pub use batcher::{EpochBatches, ImageBatch, ImageBatcher};
pub use device_images::DeviceImages;
pub use normalize::Normalization;
pub use sampler::epoch_order;
