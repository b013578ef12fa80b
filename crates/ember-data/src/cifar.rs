//! CIFAR-10 and CIFAR-100 in their official binary layouts.
//!
//! The binary release is read (not the Python pickles) because it needs no unpickler: each record
//! is a label byte (CIFAR-100: coarse then fine label byte) followed by 3072 pixel bytes, 1024 red,
//! 1024 green, 1024 blue, each plane row-major 32×32. That is already the planar CHW order of
//! [`ImageSet`], so loading is a copy.
//!
//! Fetching the official archives is the `download` module's job (feature `download`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::image_set::{ImageSet, ImageShape, Split};

/// Side of a CIFAR image.
const SIDE: usize = 32;
/// Pixel bytes of one CIFAR image (3 × 32 × 32).
const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// The standard CIFAR-10 class names, used when `batches.meta.txt` is absent.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which of the two CIFAR data sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CifarKind {
    /// 10 classes, 50,000 train and 10,000 test images.
    Cifar10,
    /// 100 fine classes (20 coarse ones, ignored), 50,000 train and 10,000 test images.
    Cifar100,
}

impl CifarKind {
    /// Name of the folder the official archive unpacks into.
    pub fn folder_name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar-10-batches-bin",
            CifarKind::Cifar100 => "cifar-100-binary",
        }
    }

    /// Number of classes of the label that is used (the fine label for CIFAR-100).
    pub fn num_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    /// Bytes of one record: label byte(s) then the image.
    pub fn record_bytes(self) -> usize {
        self.label_bytes() + IMAGE_BYTES
    }

    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }

    fn train_files(self) -> &'static [&'static str] {
        match self {
            CifarKind::Cifar10 => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            CifarKind::Cifar100 => &["train.bin"],
        }
    }

    fn test_file(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "test_batch.bin",
            CifarKind::Cifar100 => "test.bin",
        }
    }

    fn names_file(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "batches.meta.txt",
            CifarKind::Cifar100 => "fine_label_names.txt",
        }
    }
}

impl std::fmt::Display for CifarKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CifarKind::Cifar10 => "CIFAR-10",
            CifarKind::Cifar100 => "CIFAR-100",
        })
    }
}

/// Loads the train and test halves of CIFAR-10 or CIFAR-100.
///
/// `data_dir` is the folder that contains `cifar-10-batches-bin/` (or `cifar-100-binary/`); the
/// batch folder itself is accepted too. Files may hold any whole number of records (the official
/// ones hold 10,000), so reduced copies for quick runs load the same way. Class names come from
/// `batches.meta.txt` / `fine_label_names.txt` when present, else the standard CIFAR-10 names or
/// `class_00`..`class_99`.
pub fn load_cifar(kind: CifarKind, data_dir: &Path) -> Result<Split> {
    let dir = resolve_dir(kind, data_dir)?;
    let class_names = read_class_names(kind, &dir)?;

    let mut images = Vec::new();
    let mut labels = Vec::new();
    for name in kind.train_files() {
        read_batch(kind, &dir.join(name), &mut images, &mut labels)?;
    }
    let train = ImageSet::new(cifar_shape(), images, labels, class_names.clone())?;

    let mut images = Vec::new();
    let mut labels = Vec::new();
    read_batch(kind, &dir.join(kind.test_file()), &mut images, &mut labels)?;
    let test = ImageSet::new(cifar_shape(), images, labels, class_names)?;

    tracing::info!(
        kind = %kind,
        dir = %dir.display(),
        train = train.len(),
        test = test.len(),
        "loaded CIFAR"
    );
    Ok(Split { train, test })
}

fn cifar_shape() -> ImageShape {
    ImageShape {
        channels: 3,
        height: SIDE,
        width: SIDE,
    }
}

/// Finds the folder holding the batch files: `data_dir/<folder_name>` or `data_dir` itself.
fn resolve_dir(kind: CifarKind, data_dir: &Path) -> Result<PathBuf> {
    let nested = data_dir.join(kind.folder_name());
    if nested.is_dir() {
        return Ok(nested);
    }
    let direct = kind
        .train_files()
        .iter()
        .chain(std::iter::once(&kind.test_file()))
        .any(|f| data_dir.join(f).is_file());
    if direct {
        return Ok(data_dir.to_path_buf());
    }
    Err(DataError::layout(
        nested,
        format!(
            "no {kind} data: this folder does not exist and {} holds no {} file either \
             (download_cifar fetches the official archive)",
            data_dir.display(),
            kind.test_file()
        ),
    ))
}

/// Reads the optional class-name file (one name per line, blank lines ignored).
fn read_class_names(kind: CifarKind, dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(kind.names_file());
    let n = kind.num_classes();
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(match kind {
                CifarKind::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
                CifarKind::Cifar100 => (0..n).map(|i| format!("class_{i:02}")).collect(),
            });
        }
        Err(e) => return Err(DataError::io(path)(e)),
    };
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if names.len() != n {
        return Err(DataError::layout(
            path,
            format!(
                "expected {n} class names (one per line), found {}",
                names.len()
            ),
        ));
    }
    Ok(names)
}

/// Appends the records of one batch file to `images` and `labels`.
fn read_batch(
    kind: CifarKind,
    path: &Path,
    images: &mut Vec<u8>,
    labels: &mut Vec<u16>,
) -> Result<()> {
    let data = fs::read(path).map_err(DataError::io(path))?;
    let rec = kind.record_bytes();
    if data.is_empty() {
        return Err(DataError::layout(
            path,
            format!("file is empty (expected a whole number of {rec}-byte {kind} records)"),
        ));
    }
    if data.len() % rec != 0 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            record: data.len() / rec,
            expected: rec,
            found: data.len() % rec,
        });
    }
    let first = labels.len();
    images.reserve(data.len() / rec * IMAGE_BYTES);
    labels.reserve(data.len() / rec);
    for (record, chunk) in data.chunks_exact(rec).enumerate() {
        if kind == CifarKind::Cifar100 && chunk[0] >= 20 {
            // The coarse label is not used, but an out-of-range one means the file is not
            // CIFAR-100 (or is misaligned), which would otherwise go unnoticed.
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                record,
                label: chunk[0].into(),
                num_classes: 20,
            });
        }
        let label = chunk[kind.label_bytes() - 1];
        if usize::from(label) >= kind.num_classes() {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                record,
                label: label.into(),
                num_classes: kind.num_classes(),
            });
        }
        labels.push(label.into());
        images.extend_from_slice(&chunk[kind.label_bytes()..]);
    }
    tracing::debug!(
        path = %path.display(),
        records = labels.len() - first,
        "read CIFAR batch"
    );
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Pixel `p` of record `r` in file `f`: distinct enough to catch any reordering.
    pub(crate) fn pixel(f: usize, r: usize, p: usize) -> u8 {
        (f * 53 + r * 17 + p * 3 + p / 1024) as u8
    }

    fn record(kind: CifarKind, f: usize, r: usize, label: u8) -> Vec<u8> {
        let mut rec = Vec::with_capacity(kind.record_bytes());
        if kind == CifarKind::Cifar100 {
            rec.push(label / 5); // coarse label
        }
        rec.push(label);
        rec.extend((0..IMAGE_BYTES).map(|p| pixel(f, r, p)));
        rec
    }

    fn label_of(kind: CifarKind, f: usize, r: usize) -> u8 {
        ((f * 3 + r * 7) % kind.num_classes()) as u8
    }

    /// Writes a full tree of `records` records per file into `root/<folder_name>/`.
    pub(crate) fn write_tree(kind: CifarKind, root: &Path, records: usize) -> PathBuf {
        let dir = root.join(kind.folder_name());
        fs::create_dir_all(&dir).unwrap();
        let files: Vec<&str> = kind
            .train_files()
            .iter()
            .copied()
            .chain(std::iter::once(kind.test_file()))
            .collect();
        for (f, name) in files.iter().enumerate() {
            let bytes: Vec<u8> = (0..records)
                .flat_map(|r| record(kind, f, r, label_of(kind, f, r)))
                .collect();
            fs::write(dir.join(name), bytes).unwrap();
        }
        dir
    }

    #[test]
    fn cifar10_loads_shapes_labels_pixels_and_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_tree(CifarKind::Cifar10, tmp.path(), 3);
        let split = load_cifar(CifarKind::Cifar10, tmp.path()).unwrap();
        assert_eq!(split.train.len(), 15);
        assert_eq!(split.test.len(), 3);
        assert_eq!(
            split.train.shape(),
            &ImageShape {
                channels: 3,
                height: 32,
                width: 32
            }
        );
        assert_eq!(split.train.class_names()[0], "airplane");
        assert_eq!(split.train.class_names()[9], "truck");
        // Image 4 of train = file 1 (data_batch_2), record 1.
        assert_eq!(
            split.train.label(4),
            label_of(CifarKind::Cifar10, 1, 1) as u16
        );
        let img = split.train.image(4);
        // CHW: red row 0 col 5, green row 2 col 3, blue row 31 col 31.
        assert_eq!(img[5], pixel(1, 1, 5));
        assert_eq!(img[1024 + 2 * 32 + 3], pixel(1, 1, 1024 + 67));
        assert_eq!(img[3071], pixel(1, 1, 3071));
        assert_eq!(
            split.test.label(2),
            label_of(CifarKind::Cifar10, 5, 2) as u16
        );
        assert_eq!(split.test.image(2)[100], pixel(5, 2, 100));

        // The batch folder itself is accepted too, and a meta file overrides the names.
        fs::write(
            dir.join("batches.meta.txt"),
            "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n",
        )
        .unwrap();
        let split = load_cifar(CifarKind::Cifar10, &dir).unwrap();
        assert_eq!(split.train.class_names()[9], "j");
        assert_eq!(split.train.len(), 15);
    }

    #[test]
    fn cifar100_uses_fine_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_tree(CifarKind::Cifar100, tmp.path(), 4);
        let split = load_cifar(CifarKind::Cifar100, tmp.path()).unwrap();
        assert_eq!(split.train.len(), 4);
        assert_eq!(split.test.len(), 4);
        assert_eq!(split.train.num_classes(), 100);
        assert_eq!(split.train.class_names()[7], "class_07");
        for r in 0..4 {
            assert_eq!(
                split.train.label(r),
                label_of(CifarKind::Cifar100, 0, r) as u16
            );
            assert_eq!(split.test.image(r)[2048], pixel(1, r, 2048));
        }
        let names: String = (0..100).map(|i| format!("fine{i}\n")).collect();
        fs::write(dir.join("fine_label_names.txt"), names).unwrap();
        let split = load_cifar(CifarKind::Cifar100, tmp.path()).unwrap();
        assert_eq!(split.test.class_names()[99], "fine99");
    }

    #[test]
    fn truncated_file_names_file_and_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_tree(CifarKind::Cifar10, tmp.path(), 3);
        let path = dir.join("data_batch_3.bin");
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..2 * 3073 + 100]).unwrap();
        let e = load_cifar(CifarKind::Cifar10, tmp.path()).unwrap_err();
        match &e {
            DataError::Truncated {
                path: p,
                record,
                expected,
                found,
            } => {
                assert_eq!(p, &path);
                assert_eq!((*record, *expected, *found), (2, 3073, 100));
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains("data_batch_3.bin") && msg.contains("record 2"),
            "{msg}"
        );
    }

    #[test]
    fn bad_labels_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_tree(CifarKind::Cifar10, tmp.path(), 3);
        let path = dir.join("test_batch.bin");
        let mut bytes = fs::read(&path).unwrap();
        bytes[3073] = 200; // label of record 1
        fs::write(&path, bytes).unwrap();
        let e = load_cifar(CifarKind::Cifar10, tmp.path()).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::BadLabel {
                    record: 1,
                    label: 200,
                    num_classes: 10,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("test_batch.bin"), "{e}");

        // CIFAR-100: fine label 100 is one too many.
        let dir = write_tree(CifarKind::Cifar100, tmp.path(), 2);
        let path = dir.join("train.bin");
        let mut bytes = fs::read(&path).unwrap();
        bytes[1] = 100;
        fs::write(&path, bytes).unwrap();
        let e = load_cifar(CifarKind::Cifar100, tmp.path()).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::BadLabel {
                    record: 0,
                    label: 100,
                    num_classes: 100,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn missing_files_and_folders_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load_cifar(CifarKind::Cifar10, tmp.path()).unwrap_err();
        assert!(matches!(e, DataError::Layout { .. }), "{e:?}");
        assert!(e.to_string().contains("cifar-10-batches-bin"), "{e}");

        let dir = write_tree(CifarKind::Cifar10, tmp.path(), 1);
        fs::remove_file(dir.join("data_batch_4.bin")).unwrap();
        let e = load_cifar(CifarKind::Cifar10, tmp.path()).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("data_batch_4.bin"), "{e}");

        fs::write(dir.join("data_batch_4.bin"), b"").unwrap();
        let e = load_cifar(CifarKind::Cifar10, tmp.path()).unwrap_err();
        assert!(e.to_string().contains("data_batch_4.bin"), "{e}");
        assert!(e.to_string().contains("empty"), "{e}");

        fs::write(
            dir.join("data_batch_4.bin"),
            record(CifarKind::Cifar10, 0, 0, 1),
        )
        .unwrap();
        fs::write(dir.join("batches.meta.txt"), "a\nb\n").unwrap();
        let e = load_cifar(CifarKind::Cifar10, tmp.path()).unwrap_err();
        assert!(e.to_string().contains("batches.meta.txt"), "{e}");
        assert!(e.to_string().contains("expected 10 class names"), "{e}");
    }
}
