use std::path::{Path, PathBuf};
use std::str::FromStr;

use ember_data::{split_validation, CifarKind, DataError, GeneratedConfig, Split};
use serde::{Deserialize, Serialize};

use ember_train::EvalSplit;

use super::SpecError;

/// The data a run trains and is evaluated on: which set, where its files are, which part of it,
/// and what is done to it.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    /// Which data set: generated, CIFAR-10/100, Fashion-MNIST or an image folder.
    pub dataset: DatasetSpec,
    /// The folder holding the data files.
    pub data_dir: PathBuf,
    /// Fetch CIFAR archives into `data_dir` first if they are missing (checksums checked).
    pub download: bool,
    /// Train on the first N training images only.
    pub train_subset: Option<usize>,
    /// Evaluate on the first N test images only.
    pub test_subset: Option<usize>,
    /// Random crop + flip; `None` is the data set's default ([`DatasetSpec::augments_by_default`]).
    pub augment: Option<bool>,
    /// Standard deviation (0..1 intensity units) of Gaussian noise added once to every image
    /// (seeded by the run's seed); 0 means none.
    pub pixel_noise: f64,
    /// Images held out of the training set (after the subset and the noise) as a validation split.
    pub validation: Option<Holdout>,
    /// What each epoch is evaluated on: the test set, or the validation split (which then must
    /// exist). Hyper-parameters are selected on the validation split; the test set is for reports.
    pub evaluate: EvalSplit,
}

/// A validation split: `size` training images, class-balanced, chosen by `seed` (fixed for a
/// whole experiment, so every run trains on the same images).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holdout {
    /// Training images held out (at least 1).
    pub size: usize,
    /// Seed choosing which images are held out.
    pub seed: u64,
}

impl DataSpec {
    /// Whether training images are augmented.
    pub fn augments(&self) -> bool {
        self.augment
            .unwrap_or_else(|| self.dataset.augments_by_default())
    }

    /// Checks what the types cannot, naming the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !(self.pixel_noise.is_finite() && self.pixel_noise >= 0.0) {
            return Err(SpecError::new(
                "pixel_noise",
                format!(
                    "must be a finite standard deviation of at least 0, got {}",
                    self.pixel_noise
                ),
            ));
        }
        if self.evaluate == EvalSplit::Validation && self.validation.is_none() {
            return Err(SpecError::new(
                "evaluate",
                "evaluating on the validation split needs one (a validation size)",
            ));
        }
        for (field, value) in [
            ("train_subset", self.train_subset),
            ("test_subset", self.test_subset),
            ("validation", self.validation.map(|h| h.size)),
        ] {
            if value == Some(0) {
                return Err(SpecError::new(field, "must be at least 1 when given"));
            }
        }
        Ok(())
    }

    /// Loads both halves, takes the subsets, adds the pixel noise (seeded by `seed`) and holds out
    /// the validation split; the returned `test` half is what each epoch is evaluated on.
    pub fn load(&self, seed: u64) -> Result<Split, DataError> {
        let split = self.load_noisy(seed)?;
        let Some(holdout) = self.validation else {
            return Ok(split);
        };
        let (train, validation) = split_validation(&split.train, holdout.size, holdout.seed)?;
        Ok(Split {
            train,
            test: match self.evaluate {
                EvalSplit::Test => split.test,
                EvalSplit::Validation => validation,
            },
        })
    }

    fn load_noisy(&self, seed: u64) -> Result<Split, DataError> {
        let split = self.dataset.load(&self.data_dir, self.download)?;
        let split = Split {
            train: match self.train_subset {
                Some(n) => split.train.subset(n),
                None => split.train,
            },
            test: match self.test_subset {
                Some(n) => split.test.subset(n),
                None => split.test,
            },
        };
        if self.pixel_noise > 0.0 {
            split.with_pixel_noise(self.pixel_noise, seed)
        } else {
            Ok(split)
        }
    }
}

/// Where the images come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum DatasetSpec {
    /// Procedurally generated gratings: needs nothing on disk.
    Generated {
        /// Seed of the generator (a run's seed replaces it: [`DatasetSpec::with_seed`]).
        seed: u64,
    },
    /// CIFAR-10, official binary layout (`cifar-10-batches-bin/` under the data dir).
    Cifar10,
    /// CIFAR-100, official binary layout (`cifar-100-binary/` under the data dir), fine labels.
    Cifar100,
    /// Fashion-MNIST IDX files (gzip or raw) in the data dir.
    FashionMnist,
    /// `PATH/train/<class>/*.{png,jpg}` and `PATH/test/<class>/*`.
    ImageFolder {
        /// The folder holding `train/` and `test/`.
        path: PathBuf,
    },
}

impl DatasetSpec {
    /// The same data set with its generator (if any) seeded by `seed`.
    pub fn with_seed(self, seed: u64) -> Self {
        match self {
            DatasetSpec::Generated { .. } => DatasetSpec::Generated { seed },
            other => other,
        }
    }

    /// The name `--dataset` and a spec's `data.dataset` give it (`image-folder:PATH` for a folder).
    pub fn label(&self) -> String {
        match self {
            DatasetSpec::Generated { .. } => "generated".into(),
            DatasetSpec::Cifar10 => "cifar10".into(),
            DatasetSpec::Cifar100 => "cifar100".into(),
            DatasetSpec::FashionMnist => "fashion-mnist".into(),
            DatasetSpec::ImageFolder { path } => format!("image-folder:{}", path.display()),
        }
    }

    /// Loads both halves. `download` fetches CIFAR archives first if they are missing.
    pub fn load(&self, data_dir: &Path, download: bool) -> Result<Split, DataError> {
        match self {
            DatasetSpec::Generated { seed } => GeneratedConfig {
                seed: *seed,
                ..GeneratedConfig::default()
            }
            .generate(),
            DatasetSpec::Cifar10 | DatasetSpec::Cifar100 => {
                let kind = if *self == DatasetSpec::Cifar10 {
                    CifarKind::Cifar10
                } else {
                    CifarKind::Cifar100
                };
                if download {
                    ember_data::download_cifar(kind, data_dir)?;
                }
                ember_data::load_cifar(kind, data_dir)
            }
            DatasetSpec::FashionMnist => ember_data::load_fashion_mnist(data_dir),
            DatasetSpec::ImageFolder { path } => ember_data::load_image_folder_split(path),
        }
    }

    /// Whether training should use crop + flip augmentation. Mirroring a digit-like grey image or
    /// a generated grating changes its class meaning less than it helps on natural images, so only
    /// natural-image sets are augmented by default.
    pub fn augments_by_default(&self) -> bool {
        matches!(
            self,
            DatasetSpec::Cifar10 | DatasetSpec::Cifar100 | DatasetSpec::ImageFolder { .. }
        )
    }
}

impl FromStr for DatasetSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "generated" => Ok(DatasetSpec::Generated { seed: 0 }),
            "cifar10" => Ok(DatasetSpec::Cifar10),
            "cifar100" => Ok(DatasetSpec::Cifar100),
            "fashion-mnist" => Ok(DatasetSpec::FashionMnist),
            other => match other.strip_prefix("image-folder:") {
                Some(path) if !path.is_empty() => Ok(DatasetSpec::ImageFolder { path: path.into() }),
                _ => Err(SpecError::new(
                    "dataset",
                    format!("unknown data set `{other}`: expected generated, cifar10, cifar100, fashion-mnist or image-folder:PATH"),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_parse() {
        assert_eq!(
            "cifar10".parse::<DatasetSpec>().unwrap(),
            DatasetSpec::Cifar10
        );
        assert_eq!(
            "image-folder:/data/x".parse::<DatasetSpec>().unwrap(),
            DatasetSpec::ImageFolder {
                path: "/data/x".into()
            }
        );
        let err = "imagenet".parse::<DatasetSpec>().unwrap_err();
        assert!(err.to_string().contains("unknown data set `imagenet`"));
    }
}
