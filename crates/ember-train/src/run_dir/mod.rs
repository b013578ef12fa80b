//! A run folder, `runs/<name>/`, and the one typed contract for its files: `config.json` (the
//! resolved configuration), `metrics.jsonl` ([`MetricsRecord`] lines), `summary.json`
//! ([`RunSummary`] beside the configuration) and `checkpoints/`. Every crate reads and writes run
//! folders through [`RunDir`]; files written before this contract existed still read.

mod evaluation;
mod metrics;
mod summary;

pub use evaluation::{EvalSplit, Evaluation, Selection};
pub use metrics::{MetricsRecord, MetricsWriter, RecordKind};
pub use summary::RunSummary;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomically;

/// A run-folder file that cannot be read or written, naming it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct RunFileError {
    /// The file at fault.
    pub path: PathBuf,
    /// Why it cannot be read or written.
    pub message: String,
}

impl RunFileError {
    fn new(path: PathBuf, message: impl fmt::Display) -> Self {
        Self {
            path,
            message: message.to_string(),
        }
    }
}

/// Whether `name` can name a run (or an experiment, an arm) as one folder inside its parent:
/// letters, digits, `-`, `_` and `.`, not `.` or `..` — so no name reaches outside the runs folder.
pub fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The files of one run, `runs/<name>/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run folder at `root` (nothing is created until a file is written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The run folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The run's full configuration, written once at the start.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// One JSON record per line: step logs and evaluations, appended as the run goes.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    /// Final numbers, written atomically when the run ends.
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    /// The folder of the run's checkpoints (see [`CheckpointStore`](crate::CheckpointStore)).
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// The recorded configuration; `None` when the run has none yet.
    ///
    /// # Errors
    ///
    /// The file exists but cannot be read or is not JSON.
    pub fn read_config(&self) -> Result<Option<serde_json::Value>, RunFileError> {
        let path = self.config();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| RunFileError::new(path, format!("not a JSON configuration: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RunFileError::new(path, e)),
        }
    }

    /// Writes `config.json` atomically.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn write_config(&self, config: &serde_json::Value) -> Result<(), RunFileError> {
        let bytes = serde_json::to_vec_pretty(config).expect("JSON values serialise");
        write_atomically(&self.config(), &bytes).map_err(|e| RunFileError::new(self.config(), e))
    }

    /// The finished run's summary and the configuration recorded beside it; `None` when the run
    /// has not finished (no `summary.json`).
    ///
    /// # Errors
    ///
    /// The file exists but cannot be read or does not hold a summary.
    pub fn read_summary(&self) -> Result<Option<(RunSummary, serde_json::Value)>, RunFileError> {
        let path = self.summary();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RunFileError::new(path, e)),
        };
        serde_json::from_slice::<summary::SummaryFileIn>(&bytes)
            .and_then(summary::SummaryFileIn::into_parts)
            .map(Some)
            .map_err(|e| RunFileError::new(path, format!("unreadable summary: {e}")))
    }

    /// The rounds a finished run did, by its `summary.json`; `None` when it has not finished or
    /// the summary cannot be read.
    pub fn finished_rounds(&self) -> Option<usize> {
        self.read_summary().ok().flatten().map(|(s, _)| s.rounds)
    }

    /// Writes `summary.json` atomically, with the configuration beside the numbers.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn write_summary(
        &self,
        summary: &RunSummary,
        config: &serde_json::Value,
    ) -> Result<(), RunFileError> {
        let file = summary::SummaryFile { summary, config };
        let bytes = serde_json::to_vec_pretty(&file).expect("summaries serialise");
        write_atomically(&self.summary(), &bytes).map_err(|e| RunFileError::new(self.summary(), e))
    }

    /// Every line of `metrics.jsonl`. Lines written before evaluations named their split get the
    /// split the run's `config.json` records (`evaluate`; absent: test).
    ///
    /// # Errors
    ///
    /// The file cannot be read, or a line is not a metrics record (named by its number).
    pub fn read_metrics(&self) -> Result<Vec<MetricsRecord>, RunFileError> {
        let split = self
            .read_config()
            .ok()
            .flatten()
            .map(|c| summary::config_split(&c))
            .unwrap_or_default();
        read_metrics_file(&self.metrics(), split)
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

/// Every line of a metrics file on its own (outside a run folder); lines written before
/// evaluations named their split get `legacy_split`.
///
/// # Errors
///
/// The file cannot be read, or a line is not a metrics record (named by its number).
pub fn read_metrics_file(
    path: &Path,
    legacy_split: EvalSplit,
) -> Result<Vec<MetricsRecord>, RunFileError> {
    let path = path.to_path_buf();
    let text = std::fs::read_to_string(&path).map_err(|e| RunFileError::new(path.clone(), e))?;
    let mut records =
        metrics::parse_metrics(&path, &text).map_err(|e| RunFileError::new(path.clone(), e))?;
    if text.contains("\"test_loss\"") {
        for eval in records.iter_mut().filter_map(|r| r.eval.as_mut()) {
            eval.split = legacy_split;
        }
    }
    Ok(records)
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

    /// Files as Ember wrote them before the run folder had one contract (a sweep trial evaluated
    /// on its validation split, recorded only in config.json's `evaluate`).
    #[test]
    fn legacy_run_files_read_with_their_split() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("old"));
        std::fs::create_dir_all(run.root()).unwrap();
        let config =
            serde_json::json!({"model": "cnn", "evaluate": "validation", "train": {"epochs": 2}});
        std::fs::write(run.config(), config.to_string()).unwrap();
        std::fs::write(
            run.metrics(),
            concat!(
                r#"{"kind":"step","step":2,"epoch":1,"train_loss":2.0,"lr":0.1,"wall_time_s":1.0,"images_per_s":50.0}"#,
                "\n",
                r#"{"kind":"epoch","step":4,"epoch":1,"train_loss":1.5,"test_loss":1.25,"test_accuracy":0.5,"lr":0.1,"wall_time_s":2.0,"images_per_s":60.0}"#,
                "\n"
            ),
        )
        .unwrap();
        let summary = serde_json::json!({"summary": {"epochs": 2, "steps": 8, "final_train_loss": 1.0,
            "final_test_loss": 0.9, "final_test_accuracy": 0.625, "best_test_accuracy": 0.75,
            "wall_time_s": 4.0, "train_images_per_s": 55.0, "num_params": 100,
            "resumed_from_epoch": 0, "forward_passes_per_step": 1.0, "backward_passes_per_step": 1.0},
            "config": config});
        std::fs::write(run.summary(), summary.to_string()).unwrap();

        let records = run.read_metrics().unwrap();
        assert_eq!(records[1].kind, RecordKind::Eval);
        let eval = records[1].eval.as_ref().unwrap();
        assert_eq!((eval.split, eval.loss), (EvalSplit::Validation, 1.25));
        let (summary, read_config) = run.read_summary().unwrap().unwrap();
        assert_eq!(read_config, config);
        assert_eq!((summary.rounds, summary.steps), (2, 8));
        assert_eq!(summary.final_eval.split, EvalSplit::Validation);
        assert_eq!(summary.final_value(), 0.625);
        assert_eq!((summary.best_value, summary.items_per_s), (0.75, 55.0));
        assert_eq!(summary.selection, Selection::accuracy());
        assert_eq!(run.finished_rounds(), Some(2));

        // Written back in today's layout, it reads the same.
        run.write_summary(&summary, &config).unwrap();
        assert_eq!(run.read_summary().unwrap().unwrap().0, summary);
        std::fs::write(run.summary(), "{ not json").unwrap();
        let err = run.read_summary().unwrap_err().to_string();
        assert!(
            err.contains("summary.json") && err.contains("unreadable summary"),
            "{err}"
        );
        assert!(RunDir::new(dir.path().join("none"))
            .read_summary()
            .unwrap()
            .is_none());
    }

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
