//! Image folders: one sub-folder per class, holding PNG or JPEG files.
//!
//! This is the layout most data sets can be exported to, and the one the shared CIFAR-10 copy on
//! these machines uses (`train/<class>/NNNN.jpg`). Class folders are sorted by name to give class
//! indices and files are sorted by name, so the same folder always loads to the same bytes.
//! Decoding is the slow part (60,000 JPEGs), so files are decoded on up to four threads.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::image_set::{ImageSet, ImageShape, Split};

/// File extensions (compared case-insensitively) that are read; other files are ignored.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Below this many files a single thread decodes them all (threads would cost more than they save).
const MIN_FILES_PER_THREAD: usize = 32;
/// Upper bound on decoding threads: enough to use a small machine, not to swamp a big one.
const MAX_THREADS: usize = 4;

/// Loads `root/<class>/<image>` where each sub-folder of `root` is a class.
///
/// Class index = position of the folder name in sorted (byte-wise) order; images within a class are
/// taken in sorted file-name order. Hidden entries (names starting with `.`) and files without a
/// PNG/JPEG extension are ignored. If every image is grey the set has 1 channel, otherwise 3 (grey
/// images are then repeated on the three planes, alpha is dropped). All images must have the same
/// width and height; the first file that differs from the first image is named in the error.
pub fn load_image_folder(root: &Path) -> Result<ImageSet> {
    let listing = scan(root)?;
    let set = decode_listing(&listing)?;
    tracing::info!(root = %root.display(), images = set.len(), classes = set.num_classes(), "loaded image folder");
    Ok(set)
}

/// Loads `root/train/<class>/*` and `root/test/<class>/*` as the two halves of a data set.
///
/// Both halves must have the same class folders (so labels mean the same thing) and images of the
/// same size; if one half is all grey and the other has colour, the grey half is converted to RGB.
pub fn load_image_folder_split(root: &Path) -> Result<Split> {
    let train_root = root.join("train");
    let test_root = root.join("test");
    for dir in [&train_root, &test_root] {
        if !dir.is_dir() {
            return Err(DataError::layout(
                dir,
                "folder not found (expected train/<class>/* and test/<class>/*)",
            ));
        }
    }
    let train_listing = scan(&train_root)?;
    let test_listing = scan(&test_root)?;
    if train_listing.classes != test_listing.classes {
        let missing: Vec<&str> = train_listing
            .classes
            .iter()
            .filter(|c| !test_listing.classes.contains(c))
            .map(String::as_str)
            .collect();
        let extra: Vec<&str> = test_listing
            .classes
            .iter()
            .filter(|c| !train_listing.classes.contains(c))
            .map(String::as_str)
            .collect();
        return Err(DataError::layout(
            &test_root,
            format!(
                "class folders differ from {}: missing {missing:?}, extra {extra:?}",
                train_root.display()
            ),
        ));
    }
    let mut train = decode_listing(&train_listing)?;
    let mut test = decode_listing(&test_listing)?;
    let (a, b) = (train.shape(), test.shape());
    if (a.height, a.width) != (b.height, b.width) {
        return Err(DataError::layout(
            &test_root,
            format!(
                "images are {}x{} pixels but those in {} are {}x{}",
                b.width,
                b.height,
                train_root.display(),
                a.width,
                a.height
            ),
        ));
    }
    if a.channels != b.channels {
        train = train.to_rgb();
        test = test.to_rgb();
    }
    tracing::info!(root = %root.display(), train = train.len(), test = test.len(), "loaded image folders");
    Ok(Split { train, test })
}

/// What a folder holds, before any image is decoded.
struct Listing {
    classes: Vec<String>,
    /// Every image file with its class index, in load order.
    files: Vec<(PathBuf, u16)>,
}

/// A decoded image: `planes` holds 1 (grey) or 3 (RGB) planes of `width * height` bytes.
struct Decoded {
    width: u32,
    height: u32,
    grey: bool,
    planes: Vec<u8>,
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Sorted names of the entries of `dir` that satisfy `keep`, ignoring hidden ones.
fn sorted_entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(DataError::io(dir))? {
        let entry = entry.map_err(DataError::io(dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(DataError::layout(path, "name is not valid UTF-8"));
        };
        if !is_hidden(&name) && keep(&path) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn scan(root: &Path) -> Result<Listing> {
    if !root.is_dir() {
        return Err(DataError::layout(root, "folder not found"));
    }
    let classes = sorted_entries(root, |p| p.is_dir())?;
    if classes.is_empty() {
        return Err(DataError::layout(
            root,
            "no class folders (expected one sub-folder per class)",
        ));
    }
    if classes.len() > usize::from(u16::MAX) + 1 {
        return Err(DataError::layout(
            root,
            format!("{} class folders, at most 65536 supported", classes.len()),
        ));
    }
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        let names = sorted_entries(&dir, |p| p.is_file() && has_image_extension(p))?;
        if names.is_empty() {
            tracing::warn!(folder = %dir.display(), "class folder holds no PNG or JPEG file");
        }
        // `label` fits: checked against the class count above.
        files.extend(names.into_iter().map(|n| (dir.join(n), label as u16)));
    }
    if files.is_empty() {
        return Err(DataError::layout(
            root,
            "no PNG or JPEG file in any class folder",
        ));
    }
    Ok(Listing { classes, files })
}

/// The first image of a folder, whose size every other image must have.
#[derive(Clone, Copy)]
struct Reference<'a> {
    path: &'a Path,
    width: u32,
    height: u32,
}

/// Decodes one file. A file whose header declares another size than `reference` is rejected
/// before its pixels are decoded: a hostile file of a few hundred bytes can declare (and, for
/// JPEG, decode into) an image of hundreds of megabytes.
fn decode_file(path: &Path, reference: Option<Reference>) -> Result<Decoded> {
    let bytes = fs::read(path).map_err(DataError::io(path))?;
    let reader = || {
        image::ImageReader::new(Cursor::new(bytes.as_slice()))
            .with_guessed_format()
            .map_err(|e| DataError::decode(path, e.to_string()))
    };
    if let Some(r) = reference {
        let (width, height) = reader()?
            .into_dimensions()
            .map_err(|e| DataError::decode(path, e.to_string()))?;
        if (width, height) != (r.width, r.height) {
            return Err(DataError::layout(
                path,
                format!(
                    "image is {width}x{height} pixels but {} is {}x{}; all images must have the \
                     same size",
                    r.path.display(),
                    r.width,
                    r.height
                ),
            ));
        }
    }
    let image = reader()?
        .decode()
        .map_err(|e| DataError::decode(path, e.to_string()))?;
    let (width, height) = (image.width(), image.height());
    if !image.color().has_color() {
        return Ok(Decoded {
            width,
            height,
            grey: true,
            planes: image.into_luma8().into_raw(),
        });
    }
    let rgb = image.into_rgb8().into_raw();
    let plane = rgb.len() / 3;
    let mut planes = vec![0u8; rgb.len()];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        planes[i] = px[0];
        planes[plane + i] = px[1];
        planes[2 * plane + i] = px[2];
    }
    Ok(Decoded {
        width,
        height,
        grey: false,
        planes,
    })
}

/// Decodes all files, in order: the first one alone, to fix the size, then the others on up to
/// [`MAX_THREADS`] threads, each checked against that size. The first failing file (in load
/// order) is the error reported.
fn decode_all(files: &[(PathBuf, u16)]) -> Result<Vec<Decoded>> {
    let Some(((first_path, _), rest)) = files.split_first() else {
        return Ok(Vec::new());
    };
    let first = decode_file(first_path, None)?;
    let reference = Reference {
        path: first_path,
        width: first.width,
        height: first.height,
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS)
        .min(rest.len().div_ceil(MIN_FILES_PER_THREAD))
        .max(1);
    let chunk = rest.len().div_ceil(threads).max(1);
    let decode_chunk = |chunk: &[(PathBuf, u16)]| -> Result<Vec<Decoded>> {
        chunk
            .iter()
            .map(|(p, _)| decode_file(p, Some(reference)))
            .collect()
    };
    let mut out = Vec::with_capacity(files.len());
    out.push(first);
    if threads == 1 {
        out.extend(decode_chunk(rest)?);
        return Ok(out);
    }
    let parts: Vec<Result<Vec<Decoded>>> = std::thread::scope(|s| {
        let handles: Vec<_> = rest
            .chunks(chunk)
            .map(|c| s.spawn(move || decode_chunk(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

fn decode_listing(listing: &Listing) -> Result<ImageSet> {
    // Every image has the first one's size: `decode_all` checks each header against it.
    let decoded = decode_all(&listing.files)?;
    let (w, h) = match decoded.first() {
        Some(d) => (d.width, d.height),
        None => return Err(DataError::layout(&listing.files[0].0, "no image decoded")),
    };
    let channels = if decoded.iter().all(|d| d.grey) { 1 } else { 3 };
    let shape = ImageShape {
        channels,
        height: h as usize,
        width: w as usize,
    };
    let mut images = Vec::with_capacity(decoded.len() * shape.pixels());
    for d in &decoded {
        if channels == 3 && d.grey {
            for _ in 0..3 {
                images.extend_from_slice(&d.planes);
            }
        } else {
            images.extend_from_slice(&d.planes);
        }
    }
    let labels = listing.files.iter().map(|(_, l)| *l).collect();
    ImageSet::new(shape, images, labels, listing.classes.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn rgb(w: u32, h: u32, seed: u8) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                seed.wrapping_add((10 * x + y) as u8),
                seed.wrapping_mul(3),
                (200 - 20 * y) as u8,
            ])
        })
    }

    fn mkdir(p: &Path) -> &Path {
        fs::create_dir_all(p).unwrap();
        p
    }

    #[test]
    fn classes_labels_and_png_pixels() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let cats = mkdir(&root.join("cats")).to_path_buf();
        let dogs = mkdir(&root.join("dogs")).to_path_buf();
        mkdir(&root.join(".cache"));
        rgb(4, 3, 7).save(dogs.join("b.png")).unwrap();
        rgb(4, 3, 1).save(cats.join("2.png")).unwrap();
        rgb(4, 3, 9).save(cats.join("10.PNG")).unwrap();
        // A flat colour survives JPEG compression almost exactly.
        RgbImage::from_pixel(4, 3, Rgb([200, 40, 90]))
            .save(dogs.join("a.jpg"))
            .unwrap();
        fs::write(dogs.join("notes.txt"), "not an image").unwrap();
        fs::write(root.join("README"), "ignored").unwrap();

        let set = load_image_folder(root).unwrap();
        assert_eq!(set.class_names(), &["cats".to_string(), "dogs".to_string()]);
        assert_eq!(set.len(), 4);
        assert_eq!(set.labels(), &[0, 0, 1, 1]);
        assert_eq!(
            set.shape(),
            &ImageShape {
                channels: 3,
                height: 3,
                width: 4
            }
        );
        // Files sorted by name: "10.PNG" before "2.png"; CHW with planes of 12 values.
        let expect = |img: &RgbImage| -> Vec<u8> {
            (0..3)
                .flat_map(|c| img.pixels().map(move |p| p.0[c]))
                .collect()
        };
        assert_eq!(set.image(0), expect(&rgb(4, 3, 9)).as_slice());
        assert_eq!(set.image(1), expect(&rgb(4, 3, 1)).as_slice());
        assert_eq!(set.image(3), expect(&rgb(4, 3, 7)).as_slice());
        // Red plane at (x=1, y=2) = 7 + 12, blue plane = 200 - 40.
        assert_eq!(set.image(3)[2 * 4 + 1], 19);
        assert_eq!(set.image(3)[24 + 2 * 4 + 1], 160);
        let jpeg = set.image(2);
        for (c, want) in [200i32, 40, 90].into_iter().enumerate() {
            for &v in &jpeg[c * 12..(c + 1) * 12] {
                assert!(
                    (i32::from(v) - want).abs() <= 4,
                    "channel {c}: {v} vs {want}"
                );
            }
        }
    }

    #[test]
    fn grey_sets_keep_one_channel_mixed_sets_get_three() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let a = mkdir(&root.join("a")).to_path_buf();
        let b = mkdir(&root.join("b")).to_path_buf();
        GrayImage::from_fn(3, 2, |x, y| Luma([(x * 10 + y) as u8]))
            .save(a.join("g.png"))
            .unwrap();
        GrayImage::from_pixel(3, 2, Luma([77]))
            .save(b.join("g.png"))
            .unwrap();
        let set = load_image_folder(root).unwrap();
        assert_eq!(set.shape().channels, 1);
        assert_eq!(set.image(0), &[0, 10, 20, 1, 11, 21]);

        rgb(3, 2, 5).save(b.join("h.png")).unwrap();
        let set = load_image_folder(root).unwrap();
        assert_eq!(set.shape().channels, 3);
        assert_eq!(
            set.image(0),
            &[0, 10, 20, 1, 11, 21, 0, 10, 20, 1, 11, 21, 0, 10, 20, 1, 11, 21]
        );
    }

    #[test]
    fn size_mismatch_and_corrupt_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let a = mkdir(&root.join("a")).to_path_buf();
        rgb(4, 3, 0).save(a.join("1.png")).unwrap();
        rgb(5, 3, 0).save(a.join("2_wide.png")).unwrap();
        let e = load_image_folder(root).unwrap_err();
        assert!(matches!(e, DataError::Layout { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("2_wide.png") && msg.contains("5x3") && msg.contains("4x3"),
            "{msg}"
        );

        fs::remove_file(a.join("2_wide.png")).unwrap();
        fs::write(a.join("0_bad.png"), b"definitely not a PNG").unwrap();
        let e = load_image_folder(root).unwrap_err();
        assert!(matches!(e, DataError::Decode { .. }), "{e:?}");
        assert!(e.to_string().contains("0_bad.png"), "{e}");

        let empty = tempfile::tempdir().unwrap();
        let e = load_image_folder(empty.path()).unwrap_err();
        assert!(e.to_string().contains("no class folders"), "{e}");
    }

    #[test]
    fn declared_size_is_checked_before_decoding() {
        let tmp = tempfile::tempdir().unwrap();
        let a = mkdir(&tmp.path().join("a")).to_path_buf();
        rgb(4, 3, 0).save(a.join("0.png")).unwrap();
        let path = a.join("1.jpg");
        rgb(4, 3, 0).save(&path).unwrap();
        // The JPEG's frame header claims 13,000 x 13,000 pixels (0x32c8). Decoded, the missing
        // data would be filled in: a 507 MB image and seconds of work from a 700-byte file.
        let mut bytes = fs::read(&path).unwrap();
        let sof = bytes.windows(2).position(|m| m == [0xff, 0xc0]).unwrap();
        bytes[sof + 5..sof + 9].copy_from_slice(&[0x32, 0xc8, 0x32, 0xc8]);
        fs::write(&path, bytes).unwrap();
        let e = load_image_folder(tmp.path()).unwrap_err();
        assert!(matches!(e, DataError::Layout { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("1.jpg") && msg.contains("13000x13000") && msg.contains("0.png"),
            "{msg}"
        );
    }

    #[test]
    fn many_files_decode_in_parallel_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let n = 100;
        for i in 0..n {
            let dir = mkdir(&tmp.path().join(format!("class{}", i % 3))).to_path_buf();
            GrayImage::from_pixel(2, 2, Luma([i as u8]))
                .save(dir.join(format!("{i:03}.png")))
                .unwrap();
        }
        let set = load_image_folder(tmp.path()).unwrap();
        assert_eq!(set.len(), n);
        // Load order: class0 files (0, 3, 6, ...), then class1, then class2.
        let order: Vec<usize> = (0..3).flat_map(|c| (c..n).step_by(3)).collect();
        for (k, &i) in order.iter().enumerate() {
            assert_eq!(set.image(k), &[i as u8; 4], "image {k}");
            assert_eq!(usize::from(set.label(k)), i % 3);
        }
    }

    #[test]
    fn split_needs_matching_classes_and_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for (split, class, seed) in [
            ("train", "x", 1),
            ("train", "y", 2),
            ("test", "x", 3),
            ("test", "y", 4),
        ] {
            let dir = mkdir(&root.join(split).join(class)).to_path_buf();
            rgb(4, 4, seed).save(dir.join("0.png")).unwrap();
        }
        let split = load_image_folder_split(root).unwrap();
        assert_eq!(split.train.len(), 2);
        assert_eq!(split.test.labels(), &[0, 1]);
        assert_eq!(split.test.class_names(), split.train.class_names());

        // A grey test half is widened to match the RGB train half.
        for class in ["x", "y"] {
            let dir = root.join("test").join(class);
            GrayImage::from_pixel(4, 4, Luma([9]))
                .save(dir.join("0.png"))
                .unwrap();
        }
        let split = load_image_folder_split(root).unwrap();
        assert_eq!(split.test.shape().channels, 3);
        assert_eq!(split.test.image(1), &[9; 48]);

        mkdir(&root.join("train").join("z"));
        rgb(4, 4, 5).save(root.join("train/z/0.png")).unwrap();
        let e = load_image_folder_split(root).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("\"z\"") && msg.contains("test"), "{msg}");

        let e = load_image_folder_split(&root.join("nowhere")).unwrap_err();
        assert!(e.to_string().contains("train"), "{e}");
    }
}
