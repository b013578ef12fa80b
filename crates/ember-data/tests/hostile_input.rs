//! Hostile input (issue #8): the CIFAR, IDX and image-folder readers are given arbitrary,
//! truncated and deliberately damaged files. Each must return `Ok` or a [`DataError`] whose message
//! names a damaged file, and must neither panic nor allocate memory out of proportion to the input
//! (a header claiming 2^31 images must not make the reader reserve room for them).
//!
//! Every property runs a fixed number of cases ([`CASES`]) and writes no failure-persistence
//! files, so this is a bounded run in CI. Cases are random each run: a failure prints the
//! shrunken input that caused it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ember_data::idx::{IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
use ember_data::{
    load_cifar, load_fashion_mnist, load_idx, CifarKind, DataError, FASHION_MNIST_CLASSES,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

/// Cases per property: enough to reach every mutation kind on every file many times, while the
/// whole file runs in a few seconds in release.
const CASES: u32 = 256;

/// Allocation slack every reader gets whatever its input: decoder state, buffers, paths.
const SLACK: usize = 256 << 10;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Largest single allocation made by the current thread, to catch header-driven reservations.
// Thread-local because the test harness runs tests on several threads at once; every reader
// here runs on the calling thread (the image-folder reader only spawns threads from 32 files
// up, and these folders hold four).

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation(size: usize) {
    // `try_with`: the allocator is also called while thread-locals are being torn down.
    let _ = LARGEST.try_with(|largest| {
        if size > largest.get() {
            largest.set(size);
        }
    });
}

struct LargestAllocation;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------------------------------
// Damage applied to a file's bytes.

/// One edit of a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    /// Cut the file at a position.
    Truncate(Index),
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite the big-endian `u32` at byte `4 * word` (IDX: word 0 is the magic number,
    /// words 1.. the dimensions).
    SetWord(usize, u32),
    /// Append bytes.
    Append(Vec<u8>),
    /// Append this many zero bytes: in a gzip stream, a small file that inflates ~1000-fold.
    AppendZeros(usize),
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
            Mutation::Flip(at, mask) => {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            Mutation::SetWord(word, value) => {
                if let Some(slot) = bytes.get_mut(4 * word..4 * word + 4) {
                    slot.copy_from_slice(&value.to_be_bytes());
                }
            }
            Mutation::Append(tail) => bytes.extend_from_slice(tail),
            Mutation::AppendZeros(n) => bytes.resize(bytes.len() + n, 0),
        }
    }
}

fn apply_all(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        m.apply(&mut bytes);
    }
    bytes
}

/// Sizes and counts that break arithmetic: zero, one, 2^16, 2^31, all ones, and anything else.
fn awkward_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(1 << 16),
        Just(1 << 31),
        Just(u32::MAX),
        any::<u32>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), 1..=u8::MAX).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        3 => (0..4usize, awkward_u32()).prop_map(|(word, v)| Mutation::SetWord(word, v)),
        1 => vec(any::<u8>(), 1..32).prop_map(Mutation::Append),
        1 => (1usize << 16..1 << 20).prop_map(Mutation::AppendZeros),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    vec(mutation(), 1..4)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// How an IDX file is stored: plain, or gzip-compressed with the damage done before or after
/// compression (after: the gzip stream itself is corrupt).
#[derive(Clone, Copy, Debug)]
enum Packing {
    Plain,
    GzipOfDamaged,
    DamagedGzip,
}

fn packing() -> impl Strategy<Value = Packing> {
    prop_oneof![
        Just(Packing::Plain),
        Just(Packing::GzipOfDamaged),
        Just(Packing::DamagedGzip),
    ]
}

/// A file as written to disk, with what the reader may legitimately need to hold in memory.
struct Stored {
    bytes: Vec<u8>,
    /// What the reader may hold in memory: the uncompressed length, but for a gzip file no more
    /// than its header announces (it is inflated no further).
    content: usize,
}

/// Length of the body an IDX header announces (product of its dimensions), if it has a header.
fn announced_body(plain: &[u8]) -> Option<u128> {
    let ndims = usize::from(*plain.get(3)?);
    let dims = plain.get(4..4 + 4 * ndims)?;
    Some(dims.chunks_exact(4).fold(1u128, |n, d| {
        n.saturating_mul(u128::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]])))
    }))
}

fn store_idx(plain: Vec<u8>, mutations: &[Mutation], packing: Packing) -> Stored {
    let held = |content: &[u8]| match announced_body(content) {
        Some(n) => content.len().min(usize::try_from(n).unwrap_or(usize::MAX)),
        None => content.len(),
    };
    match packing {
        Packing::Plain => {
            let bytes = apply_all(plain, mutations);
            let content = bytes.len();
            Stored { bytes, content }
        }
        Packing::GzipOfDamaged => {
            let damaged = apply_all(plain, mutations);
            Stored {
                bytes: gzip(&damaged),
                content: held(&damaged),
            }
        }
        // A damaged stream inflates to about what it held (the factor 2 below leaves room).
        Packing::DamagedGzip => Stored {
            bytes: apply_all(gzip(&plain), mutations),
            content: plain.len(),
        },
    }
}

/// Memory a reader may use at once for files of these sizes: a few times what is really there.
fn allowance(files: &[&Stored]) -> usize {
    let disk: usize = files.iter().map(|f| f.bytes.len()).sum();
    let content: usize = files.iter().map(|f| f.content).sum();
    SLACK + 4 * disk + 2 * content
}

/// Checks an `Err` names one of `suspects` (the damaged files), and the allocation bound.
fn check<T>(
    result: &Result<T, DataError>,
    suspects: &[PathBuf],
    largest: usize,
    allowed: usize,
) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        let msg = e.to_string();
        prop_assert!(
            suspects.iter().any(|p| msg.contains(&*p.to_string_lossy())),
            "the error names none of the damaged files {suspects:?}: {msg}"
        );
    }
    prop_assert!(
        largest <= allowed,
        "largest allocation {largest} bytes exceeds the {allowed} bytes such input may need \
         (result: {:?})",
        result.as_ref().err()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// IDX

fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

/// A valid pair: 3 images of 2 rows x 3 columns, labelled 7, 0 and 9.
fn valid_idx_images() -> Vec<u8> {
    let pixels: Vec<u8> = (0..18).map(|p| (p * 37 % 256) as u8).collect();
    idx(IDX_IMAGES_MAGIC, &[3, 2, 3], &pixels)
}

fn valid_idx_labels() -> Vec<u8> {
    idx(IDX_LABELS_MAGIC, &[3], &[7, 0, 9])
}

fn fashion_names() -> Vec<String> {
    FASHION_MNIST_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Arbitrary bytes, half the time behind the right magic number so the header parser is reached.
fn arbitrary_idx(magic: u32) -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), vec(any::<u8>(), 0..96)).prop_map(move |(with_magic, tail)| {
        let mut v = if with_magic {
            magic.to_be_bytes().to_vec()
        } else {
            Vec::new()
        };
        v.extend(tail);
        v
    })
}

/// Writes the pair and loads it; the damaged files are the suspects.
fn load_idx_pair(
    images: &Stored,
    labels: &Stored,
    suspects: [bool; 2],
    named_classes: bool,
) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let (ip, lp) = (
        tmp.path().join("images-idx3"),
        tmp.path().join("labels-idx1"),
    );
    fs::write(&ip, &images.bytes).unwrap();
    fs::write(&lp, &labels.bytes).unwrap();
    let names = if named_classes {
        fashion_names()
    } else {
        Vec::new()
    };
    let (result, largest) = largest_allocation(|| load_idx(&ip, &lp, names));
    let suspects: Vec<PathBuf> = [ip, lp]
        .into_iter()
        .zip(suspects)
        .filter_map(|(p, s)| s.then_some(p))
        .collect();
    check(&result, &suspects, largest, allowance(&[images, labels]))
}

#[test]
fn valid_fixtures_load() {
    let tmp = tempfile::tempdir().unwrap();
    let (ip, lp) = (tmp.path().join("i"), tmp.path().join("l"));
    fs::write(&ip, gzip(&valid_idx_images())).unwrap();
    fs::write(&lp, valid_idx_labels()).unwrap();
    let set = load_idx(&ip, &lp, fashion_names()).unwrap();
    assert_eq!((set.len(), set.shape().pixels()), (3, 6));

    write_cifar_tree(CifarKind::Cifar10, tmp.path(), 2, true);
    assert_eq!(
        load_cifar(CifarKind::Cifar10, tmp.path())
            .unwrap()
            .train
            .len(),
        10
    );
    write_cifar_tree(CifarKind::Cifar100, tmp.path(), 1, true);
    assert_eq!(
        load_cifar(CifarKind::Cifar100, tmp.path())
            .unwrap()
            .test
            .len(),
        1
    );
}

proptest! {
    #![proptest_config(config())]

    /// Both files arbitrary bytes (plain or gzip), with or without the right magic number.
    #[test]
    fn idx_arbitrary_bytes(
        images in arbitrary_idx(IDX_IMAGES_MAGIC),
        labels in arbitrary_idx(IDX_LABELS_MAGIC),
        packing in (packing(), packing()),
        named_classes in any::<bool>(),
    ) {
        let images = store_idx(images, &[], packing.0);
        let labels = store_idx(labels, &[], packing.1);
        load_idx_pair(&images, &labels, [true, true], named_classes)?;
    }

    /// A valid pair with one or both files truncated, bit-flipped, given absurd dimensions,
    /// extended, or padded with a long run of zeros; plain or gzip-compressed.
    #[test]
    fn idx_damaged_pair(
        which in 0..3usize,
        image_damage in mutations(),
        label_damage in mutations(),
        packing in (packing(), packing()),
        named_classes in any::<bool>(),
    ) {
        let damage = [which != 1, which != 0];
        let none: &[Mutation] = &[];
        let images = store_idx(
            valid_idx_images(),
            if damage[0] { &image_damage } else { none },
            packing.0,
        );
        let labels = store_idx(
            valid_idx_labels(),
            if damage[1] { &label_damage } else { none },
            packing.1,
        );
        load_idx_pair(&images, &labels, damage, named_classes)?;
    }

    /// A Fashion-MNIST folder (each file with or without `.gz`) where one of the four files is
    /// damaged.
    #[test]
    fn fashion_mnist_folder_with_one_damaged_file(
        damaged in 0..4usize,
        damage in mutations(),
        packing in packing(),
        gz_names in any::<[bool; 4]>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let bases = [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ];
        let mut stored = Vec::new();
        let mut suspect = PathBuf::new();
        for (i, base) in bases.iter().enumerate() {
            let plain = if i % 2 == 0 { valid_idx_images() } else { valid_idx_labels() };
            let file = if i == damaged {
                store_idx(plain, &damage, packing)
            } else {
                store_idx(plain, &[], Packing::GzipOfDamaged)
            };
            let name = if gz_names[i] { format!("{base}.gz") } else { base.to_string() };
            let path = tmp.path().join(name);
            fs::write(&path, &file.bytes).unwrap();
            if i == damaged {
                suspect = path;
            }
            stored.push(file);
        }
        let (result, largest) = largest_allocation(|| load_fashion_mnist(tmp.path()));
        let all: Vec<&Stored> = stored.iter().collect();
        check(&result, &[suspect], largest, allowance(&all))?;
    }
}

// ---------------------------------------------------------------------------------------------
// CIFAR binary

fn cifar_files(kind: CifarKind) -> Vec<&'static str> {
    match kind {
        CifarKind::Cifar10 => vec![
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
            "test_batch.bin",
            "batches.meta.txt",
        ],
        CifarKind::Cifar100 => vec!["train.bin", "test.bin", "fine_label_names.txt"],
    }
}

/// A valid tree under `root/<folder_name>/`: `records` records per batch file, the class-name
/// file if `names`. Returns the paths and contents, class-name file last.
fn write_cifar_tree(
    kind: CifarKind,
    root: &Path,
    records: usize,
    names: bool,
) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root.join(kind.folder_name());
    fs::create_dir_all(&dir).unwrap();
    let files = cifar_files(kind);
    let (batches, names_file) = files.split_at(files.len() - 1);
    let mut out = Vec::new();
    for (f, name) in batches.iter().enumerate() {
        let mut bytes = Vec::new();
        for r in 0..records {
            let label = ((f * 3 + r * 7) % kind.num_classes()) as u8;
            if kind == CifarKind::Cifar100 {
                bytes.push(label / 5); // coarse label
            }
            bytes.push(label);
            bytes.extend((0..3072).map(|p| (f * 53 + r * 17 + p * 3) as u8));
        }
        out.push((dir.join(name), bytes));
    }
    let text: String = (0..kind.num_classes())
        .map(|i| format!("class {i}\n"))
        .collect();
    out.push((dir.join(names_file[0]), text.into_bytes()));
    for (path, bytes) in &out[..out.len() - usize::from(!names)] {
        fs::write(path, bytes).unwrap();
    }
    out
}

/// What is done to one CIFAR file.
#[derive(Clone, Debug)]
enum FileDamage {
    Mutate(Vec<Mutation>),
    Replace(Vec<u8>),
    Delete,
}

fn file_damage() -> impl Strategy<Value = FileDamage> {
    prop_oneof![
        6 => mutations().prop_map(FileDamage::Mutate),
        2 => vec(any::<u8>(), 0..64).prop_map(FileDamage::Replace),
        1 => Just(FileDamage::Delete),
    ]
}

/// Class-name files: a few short lines, some blank, some names repeated.
fn names_text() -> impl Strategy<Value = Vec<u8>> {
    vec("[a-z ]{0,3}", 0..120).prop_map(|lines| lines.join("\n").into_bytes())
}

proptest! {
    #![proptest_config(config())]

    /// A valid CIFAR-10 or CIFAR-100 tree with one to three files (batches or the class-name
    /// file) damaged, replaced by arbitrary bytes, or deleted.
    #[test]
    fn cifar_damaged_tree(
        cifar100 in any::<bool>(),
        records in 1..3usize,
        with_names in any::<bool>(),
        damages in vec((any::<Index>(), file_damage()), 1..4),
        names_replacement in names_text(),
        pass_batch_folder in any::<bool>(),
    ) {
        let kind = if cifar100 { CifarKind::Cifar100 } else { CifarKind::Cifar10 };
        let tmp = tempfile::tempdir().unwrap();
        let mut files = write_cifar_tree(kind, tmp.path(), records, with_names);
        let names_index = files.len() - 1;
        let mut suspects = Vec::new();
        for (which, damage) in &damages {
            let i = which.index(files.len());
            let (path, bytes) = &mut files[i];
            match damage {
                FileDamage::Mutate(m) => *bytes = apply_all(std::mem::take(bytes), m),
                // The class-name file gets text-like replacements, batches arbitrary bytes.
                FileDamage::Replace(_) if i == names_index => *bytes = names_replacement.clone(),
                FileDamage::Replace(b) => *bytes = b.clone(),
                FileDamage::Delete => bytes.clear(),
            }
            if matches!(damage, FileDamage::Delete) {
                let _ = fs::remove_file(&*path);
            } else {
                fs::write(&*path, &*bytes).unwrap();
            }
            suspects.push(path.clone());
        }
        let batch_folder = tmp.path().join(kind.folder_name());
        let data_dir = if pass_batch_folder {
            batch_folder.clone()
        } else {
            tmp.path().to_path_buf()
        };
        // With every batch file deleted from the folder given, that folder is what is wrong.
        if pass_batch_folder && files[..names_index].iter().all(|(p, _)| !p.exists()) {
            suspects.push(batch_folder);
        }
        let (result, largest) = largest_allocation(|| load_cifar(kind, &data_dir));
        let disk: usize = files.iter().map(|(_, b)| b.len()).sum();
        check(&result, &suspects, largest, SLACK + 4 * disk)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Image folders (feature `image-folder`: the reader and the `image` crate that writes the fixtures)

#[cfg(feature = "image-folder")]
mod image_folders {
    use ember_data::load_image_folder;

    use super::*;

    fn encode(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn pattern(w: u32, h: u32, seed: u8) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                seed.wrapping_add((x * 40 + y) as u8),
                seed.wrapping_mul(7),
                (y * 60) as u8,
            ])
        })
    }

    #[test]
    fn valid_fixture_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("folder");
        for (path, bytes) in image_folder_files(&root) {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        let set = load_image_folder(&root).unwrap();
        assert_eq!(
            (set.len(), set.num_classes(), set.shape().pixels()),
            (4, 2, 36)
        );
    }

    const FOLDER_W: u32 = 4;
    const FOLDER_H: u32 = 3;

    /// A valid folder of two classes of 4x3 images: RGB PNG, RGB JPEG, grey PNG, RGBA PNG.
    fn image_folder_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        use image::{DynamicImage, ImageFormat};
        let (w, h) = (FOLDER_W, FOLDER_H);
        vec![
            (
                root.join("cats/0.png"),
                encode(DynamicImage::ImageRgb8(pattern(w, h, 1)), ImageFormat::Png),
            ),
            (
                root.join("cats/1.jpg"),
                encode(DynamicImage::ImageRgb8(pattern(w, h, 2)), ImageFormat::Jpeg),
            ),
            (
                root.join("dogs/0.png"),
                encode(
                    DynamicImage::ImageRgb8(pattern(w, h, 3)).grayscale(),
                    ImageFormat::Png,
                ),
            ),
            (
                root.join("dogs/1.png"),
                encode(
                    DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(pattern(w, h, 4)).to_rgba8()),
                    ImageFormat::Png,
                ),
            ),
        ]
    }

    /// Rewrites the width and height a PNG or JPEG header declares, keeping the PNG header's CRC
    /// valid, so that the decoder believes them.
    fn set_declared_size(bytes: &mut [u8], w: u32, h: u32) {
        const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        if bytes.starts_with(&PNG_SIGNATURE) && bytes.len() >= 33 && &bytes[12..16] == b"IHDR" {
            bytes[16..20].copy_from_slice(&w.to_be_bytes());
            bytes[20..24].copy_from_slice(&h.to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(&bytes[12..29]);
            bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
            return;
        }
        // JPEG start-of-frame (baseline or progressive): FF Cx, length, precision, height, width.
        if let Some(p) = bytes
            .windows(2)
            .position(|m| m[0] == 0xff && (m[1] == 0xc0 || m[1] == 0xc2))
        {
            if p + 9 <= bytes.len() {
                bytes[p + 5..p + 7].copy_from_slice(&(h as u16).to_be_bytes());
                bytes[p + 7..p + 9].copy_from_slice(&(w as u16).to_be_bytes());
            }
        }
    }

    /// What is done to one image file.
    #[derive(Clone, Debug)]
    enum ImageDamage {
        Mutate(Vec<Mutation>),
        Replace(Vec<u8>),
        /// A valid image of another size (or the same size by chance).
        Resize(u32, u32),
        /// The header declares another size; the pixel data stays as it was.
        DeclareSize(u32, u32),
    }

    fn declared_side() -> impl Strategy<Value = u32> {
        // 13,000 x 13,000 x 3 is just under the image crate's default 512 MiB allocation limit.
        prop_oneof![
            Just(0),
            Just(1),
            Just(13_000),
            Just(65_535),
            Just(1 << 31),
            Just(u32::MAX),
            1..64u32,
        ]
    }

    fn image_damage() -> impl Strategy<Value = ImageDamage> {
        prop_oneof![
            5 => mutations().prop_map(ImageDamage::Mutate),
            1 => vec(any::<u8>(), 0..64).prop_map(ImageDamage::Replace),
            2 => (1..6u32, 1..6u32).prop_map(|(w, h)| ImageDamage::Resize(w, h)),
            2 => (declared_side(), declared_side())
                .prop_map(|(w, h)| ImageDamage::DeclareSize(w, h)),
        ]
    }

    proptest! {
        #![proptest_config(config())]

        /// A valid two-class folder with one to three image files damaged, replaced by arbitrary
        /// bytes or by an image of another size, or declaring a size its data does not have.
        #[test]
        fn image_folder_damaged_files(
            damages in vec((any::<Index>(), image_damage()), 1..4),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path();
            let mut files = image_folder_files(root);
            let mut suspects = Vec::new();
            for (which, damage) in &damages {
                let i = which.index(files.len());
                let (path, bytes) = &mut files[i];
                match damage {
                    ImageDamage::Mutate(m) => *bytes = apply_all(std::mem::take(bytes), m),
                    ImageDamage::Replace(b) => *bytes = b.clone(),
                    ImageDamage::Resize(w, h) => {
                        let format = image::ImageFormat::from_path(&*path).unwrap();
                        *bytes = encode(image::DynamicImage::ImageRgb8(pattern(*w, *h, 9)), format);
                    }
                    ImageDamage::DeclareSize(w, h) => set_declared_size(bytes, *w, *h),
                }
                suspects.push(path.clone());
            }
            for (path, bytes) in &files {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, bytes).unwrap();
            }
            let (result, largest) = largest_allocation(|| load_image_folder(root));
            // The first image's header may make the decoder reserve room for what it declares,
            // up to the image crate's 512 MiB limit; every later file is checked against its size
            // first.
            check(&result, &suspects, largest, 512 << 20)?;
        }
    }

    /// A JPEG decoder fills in missing data, so a 700-byte JPEG declaring 13,000 x 13,000 pixels
    /// decodes into 507 MB; the reader must reject it from its header, as its size differs from the
    /// first image's.
    #[test]
    fn declared_size_is_checked_before_decoding() {
        let tmp = tempfile::tempdir().unwrap();
        let mut files = image_folder_files(tmp.path());
        assert!(files[1].0.ends_with("cats/1.jpg"));
        set_declared_size(&mut files[1].1, 13_000, 13_000);
        for (path, bytes) in &files {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        let (result, largest) = largest_allocation(|| load_image_folder(tmp.path()));
        let msg = result.unwrap_err().to_string();
        assert!(
            msg.contains("1.jpg") && msg.contains("13000x13000"),
            "{msg}"
        );
        assert!(largest < 1 << 20, "largest allocation {largest} bytes");
    }
}
