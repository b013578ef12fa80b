use std::fmt;
use std::path::{Path, PathBuf};

/// The files of one run, `runs/<name>/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The run's full configuration, written once at the start.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    /// Final numbers, written atomically when the run ends.
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Checks that there is a run here to resume: its folder exists. Otherwise the error lists the
    /// runs that do exist beside it, so a misspelt `--run-name` is caught before any training.
    pub fn ensure_resumable(&self) -> Result<(), NoSuchRun> {
        if self.root.is_dir() {
            return Ok(());
        }
        let runs_dir = match self.root.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Err(NoSuchRun {
            path: self.root.clone(),
            runs: existing_runs(&runs_dir),
            runs_dir,
        })
    }
}

/// The names of the run folders in `runs_dir` (folders holding a `config.json`), sorted.
pub fn existing_runs(runs_dir: &Path) -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_dir(runs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("config.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    runs.sort();
    runs
}

/// `--resume` of a run that does not exist.
#[derive(Debug, thiserror::Error)]
pub struct NoSuchRun {
    /// The run folder asked for.
    pub path: PathBuf,
    /// Where runs were looked for.
    pub runs_dir: PathBuf,
    /// The runs that do exist there.
    pub runs: Vec<String>,
}

impl fmt::Display for NoSuchRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 40;
        write!(
            f,
            "nothing to resume: there is no run folder {}; ",
            self.path.display()
        )?;
        if self.runs.is_empty() {
            return write!(f, "{} holds no runs", self.runs_dir.display());
        }
        write!(
            f,
            "runs in {}: {}",
            self.runs_dir.display(),
            self.runs[..self.runs.len().min(SHOWN)].join(", ")
        )?;
        if self.runs.len() > SHOWN {
            write!(f, " and {} more", self.runs.len() - SHOWN)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_run_lists_the_runs_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["beta", "alpha"] {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("config.json"), "{}").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("not-a-run")).unwrap();
        let err = RunDir::new(dir.path().join("alpah"))
            .ensure_resumable()
            .unwrap_err();
        assert_eq!(err.runs, ["alpha", "beta"]);
        let message = err.to_string();
        assert!(
            message.contains("alpah") && message.contains("alpha, beta"),
            "{message}"
        );
        assert!(RunDir::new(dir.path().join("alpha"))
            .ensure_resumable()
            .is_ok());
        let empty = tempfile::tempdir().unwrap();
        let message = RunDir::new(empty.path().join("x"))
            .ensure_resumable()
            .unwrap_err()
            .to_string();
        assert!(message.contains("holds no runs"), "{message}");
    }
}
