//! Atomic file writes: a reader (or a crash) sees either the old file or the complete new one.
//!
//! Every report, summary, JSON file and checkpoint file Ember writes goes through [`AtomicFile`]
//! (or its one-shot form [`write_atomically`]): the bytes go to a uniquely named temporary file in
//! the destination's folder (`tempfile::NamedTempFile`, so two writers of the same path never share
//! a temporary file), which is fsynced, renamed over the destination, and then the folder itself is
//! fsynced so that the rename survives a crash.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file being written to a temporary name beside `path`; [`AtomicFile::commit`] makes it
/// appear at `path` in one step. Dropped without a commit, it leaves nothing behind (the temporary
/// file is deleted) and `path` untouched.
pub struct AtomicFile {
    path: PathBuf,
    out: BufWriter<NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing the new contents of `path`. Its folder must exist.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let dir = parent_dir(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // `.name.XXXXXX.tmp`: hidden, unique, and recognisably ours if a crash leaves it behind.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| with_path(e, dir))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(tmp),
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and fsyncs the temporary file, renames it over the destination and fsyncs the
    /// folder.
    pub fn commit(self) -> std::io::Result<()> {
        let tmp = self.out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(parent_dir(&self.path))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An I/O error that says which folder it concerns (tempfile's own errors name no path).
fn with_path(e: std::io::Error, dir: &Path) -> std::io::Error {
    std::io::Error::new(
        e.kind(),
        format!("cannot create a file in {}: {e}", dir.display()),
    )
}

/// Flushes a directory entry (a rename or a new file) to disk. A no-op where directories cannot be
/// opened for syncing.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        write_atomically(&path, b"old").unwrap();
        write_atomically(&path, b"new contents").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new contents");
        assert_eq!(names(dir.path()), ["summary.json"]);
    }

    #[test]
    fn an_abandoned_write_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.md");
        write_atomically(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"half of the new").unwrap();
        drop(file);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["results.md"]);
    }

    /// Two writers of the same path at the same time (two processes writing one report): every
    /// read sees one writer's complete contents, never a mix or a truncated file, and no temporary
    /// file is left. With one fixed `<path>.tmp` the writers truncate and rename each other's
    /// temporary file, which this catches.
    #[test]
    fn concurrent_writers_of_one_path_never_leave_a_torn_or_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        // Large enough that a write takes several syscalls.
        let contents = |writer: u8, round: usize| -> Vec<u8> {
            let mut bytes = format!("writer {writer} round {round}\n").into_bytes();
            bytes.resize(256 * 1024, b'a' + writer);
            bytes
        };
        let valid = |bytes: &[u8]| -> bool {
            (0..2u8).any(|w| {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
                text.starts_with(&format!("writer {w} round "))
                    && bytes.len() == 256 * 1024
                    && bytes[40..].iter().all(|&b| b == b'a' + w)
            })
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..2u8)
                .map(|w| {
                    let path = &path;
                    scope.spawn(move || {
                        let mut errors = Vec::new();
                        for round in 0..60 {
                            if let Err(e) = write_atomically(path, &contents(w, round)) {
                                errors.push(e.to_string());
                            }
                        }
                        errors
                    })
                })
                .collect();
            let reader = scope.spawn(|| {
                let mut bad = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(bytes) = fs::read(&path) {
                        if !valid(&bytes) {
                            bad += 1;
                        }
                    }
                }
                bad
            });
            // Join everything before asserting: a panic here would leave the reader spinning.
            let errors: Vec<String> = writers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|_| vec!["panicked".into()]))
                .collect();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let torn_reads = reader.join().unwrap();
            assert!(errors.is_empty(), "a writer failed: {errors:?}");
            assert_eq!(torn_reads, 0, "a reader saw a torn file");
        });
        assert!(valid(&fs::read(&path).unwrap()), "the final file is torn");
        assert_eq!(names(dir.path()), ["report.json"], "temporary files left");
    }

    #[test]
    fn a_folder_that_does_not_exist_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("summary.json");
        let err = write_atomically(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
