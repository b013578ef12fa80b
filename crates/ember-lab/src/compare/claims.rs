//! Leases on runs, so that many worker processes (on one machine or many sharing a folder) never
//! train the same run at once, and a crashed worker's run is taken over once its lease expires.
//!
//! A run's claims live in a folder of their own, `<claims>/<run key>/`, as numbered lease files
//! `lease-0`, `lease-1`, …; the highest number is the current lease. A worker claims a run by
//! creating the next number with an exclusive create (`O_CREAT | O_EXCL`): of any number of
//! workers racing for it exactly one succeeds, and because numbers only grow, a worker that saw
//! an old lease can never take over a newer one. The holder renews its lease (rewrites the file
//! atomically, with a later expiry) every quarter of the lease from a background thread; a lease
//! whose expiry has passed belongs to a dead or stalled worker and the next number may be
//! created. A holder that finds a higher number than its own has lost the run (it stalled for a
//! whole lease) and is told so ([`Held::lost`]).
//!
//! What the shared folder must guarantee: exclusive create and atomic rename within a folder
//! (local file systems, NFSv3 and later, SMB and the cluster file systems do), and that a file
//! written and closed by one machine is read whole by the others afterwards (close-to-open
//! consistency). No `flock`/`fcntl` locks are used. The machines' clocks must agree to within a
//! small part of the lease (NTP): a lease's expiry is its holder's clock.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ember_train::write_atomically;
use serde::{Deserialize, Serialize};

/// The claims of one experiment, made by one worker.
#[derive(Clone, Debug)]
pub struct Claims {
    dir: PathBuf,
    lease: Duration,
    worker: String,
}

/// What a lease file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    worker: String,
    /// Milliseconds since the Unix epoch, by the holder's clock; 0 once released.
    expires_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Claims {
    /// Claims under `dir` (created when needed) for `worker` (a name unique to the process),
    /// each held for `lease` between renewals.
    pub fn new(dir: impl Into<PathBuf>, worker: impl Into<String>, lease: Duration) -> Self {
        Self {
            dir: dir.into(),
            lease,
            worker: worker.into(),
        }
    }

    /// A name for this process that no other process shares: host, process id, start time.
    pub fn worker_name() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        format!("{host}-{}-{}", std::process::id(), now_ms())
    }

    /// The folder of the run `key` (`adamw-s0`, `trials/adamw-t3`: `/` becomes `--`).
    pub fn folder(&self, key: &str) -> PathBuf {
        self.dir.join(key.replace('/', "--"))
    }

    /// Claims run `key`: `Some` (renewed in the background until dropped or released) when no
    /// live worker holds it and this worker won the race for the next lease, else `None`.
    pub fn try_claim(&self, key: &str) -> anyhow::Result<Option<Held>> {
        let folder = self.folder(key);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let next = match latest_lease(&folder)? {
            Some(n) => {
                if is_live(&folder.join(lease_name(n)), self.lease)? {
                    return Ok(None);
                }
                n + 1
            }
            None => 0,
        };
        let path = folder.join(lease_name(next));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        write_lease(
            &path,
            &self.worker,
            now_ms() + self.lease.as_millis() as u64,
        )?;
        Ok(Some(Held::renewing(
            folder,
            next,
            self.worker.clone(),
            self.lease,
        )))
    }
}

fn lease_name(n: u64) -> String {
    format!("lease-{n}")
}

/// The highest lease number in `folder`.
fn latest_lease(folder: &Path) -> anyhow::Result<Option<u64>> {
    let mut latest = None;
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))?
    {
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("lease-"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            latest = latest.max(Some(n));
        }
    }
    Ok(latest)
}

/// Whether the lease at `path` is held: its expiry is in the future. A file that is still empty
/// (its creator has not written it yet) counts as held until it is a whole lease old.
fn is_live(path: &Path, lease: Duration) -> anyhow::Result<bool> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        // Gone between the listing and the read: someone is replacing it right now.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    match serde_json::from_str::<Lease>(&text) {
        Ok(held) => Ok(held.expires_ms > now_ms()),
        Err(_) => {
            let age = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            Ok(age < lease)
        }
    }
}

fn write_lease(path: &Path, worker: &str, expires_ms: u64) -> anyhow::Result<()> {
    let lease = Lease {
        worker: worker.to_string(),
        expires_ms,
    };
    write_atomically(path, serde_json::to_string(&lease)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// A lease this worker holds, renewed in the background until [`Held::release`] (or drop).
pub struct Held {
    folder: PathBuf,
    number: u64,
    worker: String,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    renewer: Option<JoinHandle<()>>,
}

impl Held {
    fn renewing(folder: PathBuf, number: u64, worker: String, lease: Duration) -> Self {
        let (stop, lost) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let renewer = {
            let (folder, worker, stop, lost) =
                (folder.clone(), worker.clone(), stop.clone(), lost.clone());
            std::thread::spawn(move || {
                let beat = (lease / 4).max(Duration::from_millis(50));
                let path = folder.join(lease_name(number));
                while !stop.load(Ordering::Relaxed) {
                    // Sleep in short slices so that a release does not wait for a whole beat.
                    let woke = std::time::Instant::now();
                    while woke.elapsed() < beat && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20).min(beat));
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if folder.join(lease_name(number + 1)).exists() {
                        tracing::error!(
                            "{}: lease {number} was taken over (this worker stalled for longer \
                             than the lease)",
                            folder.display()
                        );
                        lost.store(true, Ordering::Relaxed);
                        break;
                    }
                    let expires = now_ms() + lease.as_millis() as u64;
                    if let Err(e) = write_lease(&path, &worker, expires) {
                        tracing::warn!("renewing {}: {e:#}", path.display());
                    }
                }
            })
        };
        Self {
            folder,
            number,
            worker,
            stop,
            lost,
            renewer: Some(renewer),
        }
    }

    /// Whether another worker took the run over (this one stalled for longer than the lease).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Stops renewing and marks the lease expired, so that another worker may claim the run at
    /// once (a finished run is skipped by its summary before any claim).
    pub fn release(mut self) -> anyhow::Result<()> {
        self.stop_renewing();
        if !self.lost() {
            write_lease(&self.folder.join(lease_name(self.number)), &self.worker, 0)?;
        }
        Ok(())
    }

    fn stop_renewing(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop_renewing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_holds_a_run_until_it_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let lease = Duration::from_secs(30);
        let (a, b) = (
            Claims::new(dir.path(), "a", lease),
            Claims::new(dir.path(), "b", lease),
        );
        let held = a.try_claim("trials/x-t0").unwrap().expect("free");
        assert!(dir.path().join("trials--x-t0/lease-0").is_file());
        assert!(b.try_claim("trials/x-t0").unwrap().is_none(), "held by a");
        assert!(
            b.try_claim("x-s0").unwrap().is_some(),
            "another run is free"
        );
        held.release().unwrap();
        let again = b.try_claim("trials/x-t0").unwrap().expect("released");
        assert_eq!(again.number, 1);
    }

    #[test]
    fn an_expired_lease_is_taken_over_and_its_holder_told() {
        let dir = tempfile::tempdir().unwrap();
        let short = Duration::from_millis(200);
        let a = Claims::new(dir.path(), "a", short);
        let held = a.try_claim("r").unwrap().unwrap();
        // A live holder keeps renewing: still held after several leases.
        std::thread::sleep(Duration::from_millis(600));
        let b = Claims::new(dir.path(), "b", short);
        assert!(
            b.try_claim("r").unwrap().is_none(),
            "renewed, so still held"
        );
        // A dead holder (its renewals stop; the process is gone) loses the run after one lease.
        let mut dead = held;
        dead.stop_renewing();
        std::thread::sleep(Duration::from_millis(300));
        let taken = b.try_claim("r").unwrap().expect("expired");
        assert_eq!(taken.number, 1);
        assert!(a.try_claim("r").unwrap().is_none(), "b holds it now");
        drop(taken);
    }

    #[test]
    fn many_racing_workers_get_one_claim() {
        let dir = tempfile::tempdir().unwrap();
        let held: Vec<Option<Held>> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8)
                .map(|i| {
                    let claims = Claims::new(dir.path(), format!("w{i}"), Duration::from_secs(30));
                    s.spawn(move || claims.try_claim("r").unwrap())
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(held.iter().filter(|h| h.is_some()).count(), 1);
    }
}
