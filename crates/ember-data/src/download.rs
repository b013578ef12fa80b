//! Downloading the official CIFAR archives (feature `download`): HTTP over `ureq`, an MD5 check
//! of the bytes received, and unpacking the `.tar.gz` with `tar` and `flate2`.
//!
//! Download writes to temporary names inside the data folder and renames the extracted folder
//! into place last, so an interrupted download never leaves a folder that looks complete.
//! Reading the unpacked files is [`crate::cifar`]'s job.

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flate2::read::GzDecoder;
use md5::{Digest, Md5};

use crate::cifar::{load_cifar, CifarKind};
use crate::error::{DataError, Result};

/// Official address of the CIFAR-10 binary archive.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Published MD5 of [`CIFAR10_URL`].
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// Official address of the CIFAR-100 binary archive.
pub const CIFAR100_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz";
/// Published MD5 of [`CIFAR100_URL`].
pub const CIFAR100_MD5: &str = "03b5dce01913d631647c71ecec9e9cb8";

impl CifarKind {
    /// Address of the official binary archive.
    pub fn url(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => CIFAR10_URL,
            CifarKind::Cifar100 => CIFAR100_URL,
        }
    }

    /// Published MD5 of the archive at [`CifarKind::url`].
    pub fn md5(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => CIFAR10_MD5,
            CifarKind::Cifar100 => CIFAR100_MD5,
        }
    }
}

/// Downloads and unpacks the official binary archive into `data_dir`, returning the batch folder.
///
/// If `data_dir/cifar-10-batches-bin/` (or `cifar-100-binary/`) already exists and loads, nothing
/// is downloaded. If it exists but does not load, it is left alone and an error says so: it may
/// hold someone's data, and a download never leaves a broken folder under that name.
pub fn download_cifar(kind: CifarKind, data_dir: &Path) -> Result<PathBuf> {
    let folder = data_dir.join(kind.folder_name());
    if folder.is_dir() {
        return match load_cifar(kind, data_dir) {
            Ok(_) => Ok(folder),
            Err(e) => Err(DataError::layout(
                folder,
                format!("already exists but does not load ({e}); delete it to download again"),
            )),
        };
    }
    let folder = download_archive(kind.url(), kind.md5(), data_dir, kind.folder_name())?;
    load_cifar(kind, data_dir)?;
    Ok(folder)
}

/// Downloads the `.tar.gz` at `url`, checks its MD5 against `md5_hex`, and installs the folder
/// `folder_name` it contains as `data_dir/folder_name`.
///
/// The archive goes to a hidden temporary file in `data_dir` and is unpacked into a hidden
/// temporary folder there (same file system, so the final rename is atomic); both are removed
/// whatever happens. If `data_dir/folder_name` already exists it is returned untouched.
/// [`download_cifar`] calls it with the official address and checksum; call it directly to use a
/// mirror. A process killed mid-download can leave a hidden `.<folder>.*.tmp` entry behind; it is
/// never mistaken for the data and can be deleted.
pub fn download_archive(
    url: &str,
    md5_hex: &str,
    data_dir: &Path,
    folder_name: &str,
) -> Result<PathBuf> {
    let target = data_dir.join(folder_name);
    if target.exists() {
        return Ok(target);
    }
    fs::create_dir_all(data_dir).map_err(DataError::io(data_dir))?;
    let stamp = unique_stamp();

    let archive = TempPath(data_dir.join(format!(".{folder_name}.{stamp}.download.tmp")));
    tracing::info!(url, to = %archive.0.display(), "downloading");
    let found = fetch(url, &archive.0)?;
    let expected = md5_hex.trim().to_ascii_lowercase();
    if found != expected {
        return Err(DataError::Checksum {
            path: archive.0.clone(),
            expected,
            found,
        });
    }

    let extract = TempPath(data_dir.join(format!(".{folder_name}.{stamp}.extract.tmp")));
    fs::create_dir(&extract.0).map_err(DataError::io(&extract.0))?;
    let file = File::open(&archive.0).map_err(DataError::io(&archive.0))?;
    tar::Archive::new(GzDecoder::new(BufReader::new(file)))
        .unpack(&extract.0)
        .map_err(|e| DataError::decode(&archive.0, format!("cannot unpack the tar.gz: {e}")))?;

    let unpacked = extract.0.join(folder_name);
    if !unpacked.is_dir() {
        return Err(DataError::Download {
            url: url.to_owned(),
            message: format!("the archive does not contain the folder {folder_name}/"),
        });
    }
    if let Err(e) = fs::rename(&unpacked, &target) {
        // Another process may have finished the same download first; its folder is as good.
        if !target.is_dir() {
            return Err(DataError::io(&target)(e));
        }
    }
    tracing::info!(folder = %target.display(), "installed");
    Ok(target)
}

/// Streams `url` into `dest`, returning the lowercase hex MD5 of the bytes received.
fn fetch(url: &str, dest: &Path) -> Result<String> {
    let download_err = |message: String| DataError::Download {
        url: url.to_owned(),
        message,
    };
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let response = agent
        .get(url)
        .call()
        .map_err(|e| download_err(e.to_string()))?;
    let mut reader = response.into_body().into_reader();
    let mut out = File::create(dest).map_err(DataError::io(dest))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(download_err(format!("after {total} bytes: {e}"))),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(DataError::io(dest))?;
        total += n as u64;
    }
    out.flush().map_err(DataError::io(dest))?;
    tracing::info!(url, bytes = total, "download complete");
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A suffix no other download (in this or another process) uses at the same time.
fn unique_stamp() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary file or folder that is deleted when dropped, on success and error alike.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let result = if self.0.is_dir() {
            fs::remove_dir_all(&self.0)
        } else {
            fs::remove_file(&self.0)
        };
        if let Err(e) = result {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.0.display(), error = %e, "cannot remove temporary");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cifar::tests::{pixel, write_tree};
    use std::io::{BufRead, BufReader as StdBufReader};
    use std::net::TcpListener;
    use std::thread;
    use std::time::Instant;

    /// Serves `routes` over HTTP/1.1 on 127.0.0.1 for at most `max_requests` requests (or 20 s),
    /// then exits, returning how many requests it answered.
    fn serve(
        routes: Vec<(&'static str, Vec<u8>)>,
        max_requests: usize,
    ) -> (String, thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let handle = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut served = 0;
            while served < max_requests && Instant::now() < deadline {
                let stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => break,
                };
                served += 1;
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = StdBufReader::new(&stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Skip the headers up to the blank line.
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" || line == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let mut out = &stream;
                match routes.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = out.write_all(head.as_bytes());
                        let _ = out.write_all(body);
                    }
                    None => {
                        let _ = out.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\
                              Connection: close\r\n\r\n",
                        );
                    }
                }
                let _ = out.flush();
            }
            served
        });
        (base, handle)
    }

    fn tar_gz_of(root: &Path, folder: &str) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        builder.append_dir_all(folder, root.join(folder)).unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn md5_hex(bytes: &[u8]) -> String {
        Md5::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn download_checks_md5_and_installs_atomically() {
        let src = tempfile::tempdir().unwrap();
        write_tree(CifarKind::Cifar10, src.path(), 2);
        let archive = tar_gz_of(src.path(), "cifar-10-batches-bin");
        let good_md5 = md5_hex(&archive);
        let folder = "cifar-10-batches-bin";

        let (base, server) = serve(vec![("/cifar.tar.gz", archive)], 4);
        let url = format!("{base}/cifar.tar.gz");
        let data = tempfile::tempdir().unwrap();
        let data_dir = data.path().join("datasets");

        // Wrong checksum: error, and nothing left behind (not even temporaries).
        let e = download_archive(&url, "00112233445566778899aabbccddeeff", &data_dir, folder)
            .unwrap_err();
        match &e {
            DataError::Checksum {
                expected, found, ..
            } => {
                assert_eq!(expected, "00112233445566778899aabbccddeeff");
                assert_eq!(found, &good_md5);
            }
            other => panic!("expected Checksum, got {other:?}"),
        }
        assert!(entries(&data_dir).is_empty(), "{:?}", entries(&data_dir));

        // Not found on the server: a Download error naming the address.
        let missing = format!("{base}/nope.tar.gz");
        let e = download_archive(&missing, &good_md5, &data_dir, folder).unwrap_err();
        assert!(matches!(e, DataError::Download { .. }), "{e:?}");
        assert!(e.to_string().contains("nope.tar.gz"), "{e}");
        assert!(entries(&data_dir).is_empty(), "{:?}", entries(&data_dir));

        // An archive without the expected folder is refused and cleaned up.
        let e = download_archive(&url, &good_md5, &data_dir, "cifar-100-binary").unwrap_err();
        assert!(e.to_string().contains("cifar-100-binary"), "{e}");
        assert!(entries(&data_dir).is_empty(), "{:?}", entries(&data_dir));

        // Right checksum (given in upper case): the folder appears and loads.
        let dir = download_archive(&url, &good_md5.to_uppercase(), &data_dir, folder).unwrap();
        assert_eq!(dir, data_dir.join(folder));
        assert_eq!(entries(&data_dir), vec![folder.to_string()]);
        let split = load_cifar(CifarKind::Cifar10, &data_dir).unwrap();
        assert_eq!(split.train.len(), 10);
        assert_eq!(split.test.image(1)[7], pixel(5, 1, 7));

        // Already there: neither function touches the network again.
        assert_eq!(
            download_archive(&url, &good_md5, &data_dir, folder).unwrap(),
            dir
        );
        assert_eq!(download_cifar(CifarKind::Cifar10, &data_dir).unwrap(), dir);
        assert_eq!(server.join().unwrap(), 4);
    }

    #[test]
    fn download_refuses_an_existing_broken_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_tree(CifarKind::Cifar100, tmp.path(), 1);
        fs::remove_file(dir.join("test.bin")).unwrap();
        let e = download_cifar(CifarKind::Cifar100, tmp.path()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("already exists") && msg.contains("test.bin"),
            "{msg}"
        );
        assert!(dir.join("train.bin").is_file());
    }
}
