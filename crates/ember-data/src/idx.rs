//! IDX files: the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a big-endian header (a magic number whose last byte is the number of
//! dimensions, then one `u32` per dimension) followed by the values. Image files have magic
//! `0x00000803` (unsigned bytes, 3 dimensions: count × rows × columns), label files `0x00000801`
//! (unsigned bytes, 1 dimension). The files are distributed gzip-compressed but often stored
//! unpacked, and renamed either way, so gzip is recognised by its magic bytes, not the name.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::error::{DataError, Result};
use crate::image_set::{ImageSet, ImageShape, Split};

/// Where the Debian package `dataset-fashion-mnist` installs the four Fashion-MNIST files.
pub const FASHION_MNIST_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST class names, indexed by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// MNIST-style sets have 10 classes even if a small file happens to lack the last labels.
const MIN_INFERRED_CLASSES: usize = 10;

/// Loads an IDX image file and its IDX label file (each gzip-compressed or not) as one set.
///
/// `class_names` fixes the number of classes (a label not below it is [`DataError::BadLabel`]).
/// If it is empty, the classes are inferred as `max label + 1`, but at least 10, named `"0"`,
/// `"1"`, …. Images are grey: shape `1 × rows × cols` as given in the file header.
pub fn load_idx(images: &Path, labels: &Path, class_names: Vec<String>) -> Result<ImageSet> {
    let image_data = read_maybe_gzip(images, IDX_IMAGES_MAGIC)?;
    let (dims, pixels) = parse(images, &image_data, IDX_IMAGES_MAGIC)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let per_image = rows.checked_mul(cols).filter(|&n| n > 0).ok_or_else(|| {
        DataError::decode(
            images,
            format!("header gives an unusable image size of {rows}x{cols}"),
        )
    })?;
    check_body_len(images, count, per_image, pixels.len())?;

    let label_data = read_maybe_gzip(labels, IDX_LABELS_MAGIC)?;
    let (label_dims, label_bytes) = parse(labels, &label_data, IDX_LABELS_MAGIC)?;
    let label_count = label_dims[0];
    check_body_len(labels, label_count, 1, label_bytes.len())?;
    if label_count != count {
        return Err(DataError::layout(
            labels,
            format!(
                "holds {label_count} labels but {} holds {count} images; the two files must match",
                images.display()
            ),
        ));
    }

    let class_names = if class_names.is_empty() {
        let max = label_bytes.iter().copied().max().map_or(0, usize::from);
        let n = (max + 1).max(MIN_INFERRED_CLASSES);
        (0..n).map(|i| i.to_string()).collect()
    } else {
        class_names
    };
    if let Some((record, &label)) = label_bytes
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= class_names.len())
    {
        return Err(DataError::BadLabel {
            path: labels.to_path_buf(),
            record,
            label: label.into(),
            num_classes: class_names.len(),
        });
    }

    let shape = ImageShape {
        channels: 1,
        height: rows,
        width: cols,
    };
    let labels_u16 = label_bytes.iter().map(|&l| u16::from(l)).collect();
    ImageSet::new(shape, pixels.to_vec(), labels_u16, class_names)
}

/// Loads Fashion-MNIST (60,000 train and 10,000 test grey 28×28 images) from `dir`.
///
/// `dir` must hold `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
/// and `t10k-labels-idx1-ubyte`, each with or without `.gz` (as in
/// [`FASHION_MNIST_SYSTEM_DIR`]). Plain MNIST has the same file names and loads the same way,
/// only its class names are different.
pub fn load_fashion_mnist(dir: &Path) -> Result<Split> {
    if !dir.is_dir() {
        return Err(DataError::layout(
            dir,
            format!(
                "Fashion-MNIST folder not found (`apt-get install dataset-fashion-mnist` puts \
                 the files in {FASHION_MNIST_SYSTEM_DIR})"
            ),
        ));
    }
    let names = || {
        FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let train = load_idx(
        &find(dir, "train-images-idx3-ubyte")?,
        &find(dir, "train-labels-idx1-ubyte")?,
        names(),
    )?;
    let test = load_idx(
        &find(dir, "t10k-images-idx3-ubyte")?,
        &find(dir, "t10k-labels-idx1-ubyte")?,
        names(),
    )?;
    tracing::info!(dir = %dir.display(), train = train.len(), test = test.len(), "loaded IDX");
    Ok(Split { train, test })
}

/// `dir/base` if it exists, else `dir/base.gz`.
fn find(dir: &Path, base: &str) -> Result<PathBuf> {
    let plain = dir.join(base);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{base}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::layout(
        gz,
        format!("file not found (nor {base} without .gz)"),
    ))
}

/// Reads an IDX file with magic number `magic`, inflating it if it starts with the gzip magic
/// bytes `1f 8b`.
///
/// A gzip stream is inflated only as far as its header announces, plus one byte that shows
/// whether more follows. Deflate packs a run of zeros about a thousandfold, so without this bound
/// a 10 MB file whose header announces a few images would take 10 GB of memory before its length
/// is found wrong. A stream that ends within the bound is read to its end, so its checksum is
/// still verified.
fn read_maybe_gzip(path: &Path, magic: u32) -> Result<Vec<u8>> {
    let raw = fs::read(path).map_err(DataError::io(path))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let corrupt = |e: std::io::Error| DataError::decode(path, format!("corrupt gzip stream: {e}"));
    let mut decoder = GzDecoder::new(raw.as_slice());
    let mut out = Vec::new();
    (&mut decoder)
        .take(header_len(magic) as u64)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    // A short header, a wrong magic number or dimensions whose product overflows make the file
    // invalid whatever follows (`parse` and `check_body_len` say which), so nothing more is read.
    let limit = announced_body_len(&out, magic).map_or(0, |n| n.saturating_add(1));
    decoder.take(limit).read_to_end(&mut out).map_err(corrupt)?;
    Ok(out)
}

/// Bytes of the header of an IDX file with magic number `magic`: the magic number, then one
/// `u32` per dimension (the magic number's last byte).
fn header_len(magic: u32) -> usize {
    4 + 4 * (magic & 0xff) as usize
}

/// The number of body bytes (product of the dimensions) that a complete header with the right
/// magic number announces; `None` if `data` holds no such header or the product overflows.
fn announced_body_len(data: &[u8], magic: u32) -> Option<u64> {
    let header = data.get(..header_len(magic))?;
    if be_u32(header) != magic {
        return None;
    }
    header[4..]
        .chunks_exact(4)
        .try_fold(1u64, |n, d| n.checked_mul(u64::from(be_u32(d))))
}

/// Checks the magic number and returns the dimensions and the bytes after the header.
fn parse<'a>(path: &Path, data: &'a [u8], magic: u32) -> Result<(Vec<usize>, &'a [u8])> {
    let header = header_len(magic);
    if data.len() < 4 {
        return Err(DataError::decode(
            path,
            format!("file has {} bytes, too short for an IDX header", data.len()),
        ));
    }
    let found = be_u32(&data[0..4]);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    if data.len() < header {
        return Err(DataError::decode(
            path,
            format!(
                "the header needs {header} bytes but the file has {}",
                data.len()
            ),
        ));
    }
    let dims = data[4..header]
        .chunks_exact(4)
        .map(|c| be_u32(c) as usize)
        .collect();
    Ok((dims, &data[header..]))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks that the values after the header are exactly `count` records of `per_record` bytes.
///
/// `found` may stop one byte past the expected length (gzip files are read no further), so an
/// excess is reported without its size.
fn check_body_len(path: &Path, count: usize, per_record: usize, found: usize) -> Result<()> {
    let Some(expected) = count.checked_mul(per_record) else {
        return Err(DataError::decode(
            path,
            format!(
                "the header announces {count} records of {per_record} bytes, more than this \
                 machine can address"
            ),
        ));
    };
    if found == expected {
        return Ok(());
    }
    if found > expected {
        return Err(DataError::decode(
            path,
            format!(
                "the header announces {count} records of {per_record} bytes ({expected} bytes) \
                 but more bytes follow them"
            ),
        ));
    }
    Err(DataError::Truncated {
        path: path.to_path_buf(),
        record: found / per_record,
        expected: per_record,
        found: found % per_record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// 5 images of 3 rows × 4 columns, with values that differ between neighbours.
    fn pixels() -> Vec<u8> {
        (0..5 * 12).map(|p| (p * 7 % 251) as u8).collect()
    }

    const LABELS: [u8; 5] = [3, 0, 9, 1, 3];

    fn write_pair(dir: &Path, images_name: &str, labels_name: &str, compress: bool) {
        let wrap = |d: Vec<u8>| if compress { gzip(&d) } else { d };
        let images = idx(IDX_IMAGES_MAGIC, &[5, 3, 4], &pixels());
        let labels = idx(IDX_LABELS_MAGIC, &[5], &LABELS);
        fs::write(dir.join(images_name), wrap(images)).unwrap();
        fs::write(dir.join(labels_name), wrap(labels)).unwrap();
    }

    #[test]
    fn raw_and_gzip_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        // Deliberately misleading names: detection must go by content.
        write_pair(tmp.path(), "raw.gz", "raw-labels", false);
        write_pair(tmp.path(), "packed", "packed-labels.bin", true);
        for (img, lab) in [("raw.gz", "raw-labels"), ("packed", "packed-labels.bin")] {
            let set = load_idx(&tmp.path().join(img), &tmp.path().join(lab), vec![]).unwrap();
            assert_eq!(set.len(), 5);
            assert_eq!(
                set.shape(),
                &ImageShape {
                    channels: 1,
                    height: 3,
                    width: 4
                }
            );
            assert_eq!(set.pixels(), pixels().as_slice());
            assert_eq!(set.image(2), &pixels()[24..36]);
            assert_eq!(set.labels(), &[3, 0, 9, 1, 3]);
            assert_eq!(set.num_classes(), 10);
            assert_eq!(set.class_names()[9], "9");
        }
    }

    #[test]
    fn wrong_magic_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(tmp.path(), "i", "l", false);
        // Images and labels given the wrong way round.
        let e = load_idx(&tmp.path().join("l"), &tmp.path().join("i"), vec![]).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::BadMagic {
                    expected: IDX_IMAGES_MAGIC,
                    found: IDX_LABELS_MAGIC,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains(&*tmp.path().join("l").to_string_lossy()),
            "{e}"
        );
    }

    #[test]
    fn truncated_images_name_the_record() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(tmp.path(), "i", "l", false);
        let path = tmp.path().join("i");
        let full = fs::read(&path).unwrap();
        // Header (16 bytes) + 3 whole images + 5 bytes of the fourth.
        fs::write(&path, gzip(&full[..16 + 3 * 12 + 5])).unwrap();
        let e = load_idx(&path, &tmp.path().join("l"), vec![]).unwrap_err();
        match &e {
            DataError::Truncated {
                path: p,
                record,
                expected,
                found,
            } => {
                assert_eq!(p, &path);
                assert_eq!((*record, *expected, *found), (3, 12, 5));
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
        assert!(e.to_string().contains("record 3"), "{e}");

        // A header cut short is a decode error naming the file, not a panic.
        fs::write(&path, &full[..10]).unwrap();
        let e = load_idx(&path, &tmp.path().join("l"), vec![]).unwrap_err();
        assert!(matches!(e, DataError::Decode { .. }), "{e:?}");

        // A damaged gzip stream too.
        let mut packed = gzip(&full);
        packed.truncate(packed.len() / 2);
        fs::write(&path, packed).unwrap();
        let e = load_idx(&path, &tmp.path().join("l"), vec![]).unwrap_err();
        assert!(e.to_string().contains("gzip"), "{e}");
    }

    #[test]
    fn gzip_is_inflated_no_further_than_the_header_announces() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(tmp.path(), "i", "l", false);
        let path = tmp.path().join("i");
        // A valid file followed by 16 MiB of zeros: about 16 KiB once compressed.
        let mut padded = fs::read(&path).unwrap();
        let valid_len = padded.len();
        padded.resize(valid_len + (16 << 20), 0);
        fs::write(&path, gzip(&padded)).unwrap();
        assert!(fs::metadata(&path).unwrap().len() < 1 << 20);
        // Header, the 60 announced bytes, and the one byte that shows more follows.
        let read = read_maybe_gzip(&path, IDX_IMAGES_MAGIC).unwrap();
        assert_eq!(read.len(), valid_len + 1);
        let e = load_idx(&path, &tmp.path().join("l"), vec![]).unwrap_err();
        assert!(matches!(e, DataError::Decode { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("(60 bytes) but more bytes follow"), "{msg}");

        // A wrong magic number: only the header is inflated.
        let read = read_maybe_gzip(&path, IDX_LABELS_MAGIC).unwrap();
        assert_eq!(read.len(), 8);

        // Dimensions whose product overflows: nothing past the header, and a clear error.
        let huge = idx(
            IDX_IMAGES_MAGIC,
            &[u32::MAX, u32::MAX, u32::MAX],
            &[0; 4096],
        );
        fs::write(&path, gzip(&huge)).unwrap();
        assert_eq!(read_maybe_gzip(&path, IDX_IMAGES_MAGIC).unwrap().len(), 16);
        let e = load_idx(&path, &tmp.path().join("l"), vec![]).unwrap_err();
        assert!(
            e.to_string().contains("more than this machine can address"),
            "{e}"
        );

        // A stream of exactly the announced length is read to its end: its checksum still counts.
        let mut packed = gzip(&padded[..valid_len]);
        let crc_at = packed.len() - 8;
        packed[crc_at] ^= 1;
        fs::write(&path, packed).unwrap();
        let e = load_idx(&path, &tmp.path().join("l"), vec![]).unwrap_err();
        assert!(e.to_string().contains("corrupt gzip stream"), "{e}");
    }

    #[test]
    fn label_count_and_range_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(tmp.path(), "i", "l", false);
        let labels = tmp.path().join("l");
        fs::write(&labels, idx(IDX_LABELS_MAGIC, &[4], &LABELS[..4])).unwrap();
        let e = load_idx(&tmp.path().join("i"), &labels, vec![]).unwrap_err();
        assert!(matches!(e, DataError::Layout { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("4 labels") && msg.contains("5 images"),
            "{msg}"
        );

        fs::write(&labels, idx(IDX_LABELS_MAGIC, &[5], &[0, 1, 2, 3, 4])).unwrap();
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let e = load_idx(&tmp.path().join("i"), &labels, three).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::BadLabel {
                    record: 3,
                    label: 3,
                    num_classes: 3,
                    ..
                }
            ),
            "{e:?}"
        );

        // Labels beyond 9 widen the inferred class count.
        fs::write(&labels, idx(IDX_LABELS_MAGIC, &[5], &[0, 1, 12, 3, 4])).unwrap();
        let set = load_idx(&tmp.path().join("i"), &labels, vec![]).unwrap();
        assert_eq!(set.num_classes(), 13);
    }

    #[test]
    fn fashion_mnist_folder_with_mixed_compression() {
        let tmp = tempfile::tempdir().unwrap();
        write_pair(
            tmp.path(),
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte",
            true,
        );
        // The label file above is gzip data without .gz: still fine.
        write_pair(
            tmp.path(),
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte.gz",
            false,
        );
        let split = load_fashion_mnist(tmp.path()).unwrap();
        assert_eq!(split.train.len(), 5);
        assert_eq!(split.test.labels(), &LABELS.map(u16::from));
        assert_eq!(split.train.class_names()[9], "Ankle boot");

        fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let e = load_fashion_mnist(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("t10k-labels-idx1-ubyte"), "{e}");
    }

    /// Smoke test on the real files; skipped (with a note) where the package is not installed.
    #[test]
    fn real_fashion_mnist_if_installed() {
        let dir = Path::new(FASHION_MNIST_SYSTEM_DIR);
        if !dir.is_dir() {
            eprintln!("skipping: {FASHION_MNIST_SYSTEM_DIR} not present");
            return;
        }
        let split = load_fashion_mnist(dir).unwrap();
        assert_eq!((split.train.len(), split.test.len()), (60_000, 10_000));
        assert_eq!(split.train.shape().pixels(), 28 * 28);
        assert_eq!(split.train.class_counts(), vec![6000; 10]);
        assert_eq!(split.test.class_counts(), vec![1000; 10]);
        let mean = split.test.pixels().iter().map(|&p| p as f64).sum::<f64>()
            / split.test.pixels().len() as f64;
        assert!((50.0..100.0).contains(&mean), "mean pixel {mean}");
    }
}
