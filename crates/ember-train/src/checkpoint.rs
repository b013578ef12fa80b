//! Per-epoch checkpoints of model, optimizer and scheduler, written so that a crash at any moment
//! leaves the previous checkpoint intact.

use std::fs;
use std::path::{Path, PathBuf};

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::LrSchedulerRecord;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::atomic::{sync_dir, write_atomically};
use crate::StepRule;

const MODEL_FILE: &str = "model.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const SCHEDULER_FILE: &str = "scheduler.bpk";
const STATE_FILE: &str = "state.json";

/// Where the loop stood when a checkpoint was taken: enough to continue exactly.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LoopState {
    /// Rounds (epochs for image classification) fully completed: the next round to run, 0-based.
    #[serde(alias = "epochs_done")]
    pub rounds_done: usize,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Training wall time so far, in seconds (resumed runs keep counting from here).
    pub wall_time_s: f64,
    /// Length in bytes of `metrics.jsonl` at this point; lines after it are dropped on resume.
    pub metrics_len: u64,
    /// Sizes of the three record files, to detect a file cut short after the fact.
    pub file_sizes: [u64; 3],
    /// Steps undone so far by the skip policy (absent in checkpoints written before it was kept).
    #[serde(default)]
    pub skipped_steps: u64,
    /// Best value of the task's selection metric over the evaluations so far (`None` before the
    /// first); checkpoints written before tasks existed hold the best test accuracy.
    #[serde(default, alias = "best_test_accuracy")]
    pub best_value: Option<f64>,
    /// Fingerprint of the training and test data the run trains on (images, labels, shape), so
    /// that a resume on different data is refused (absent in checkpoints written before it was
    /// kept).
    #[serde(default)]
    pub data_fingerprint: Option<String>,
}

impl LoopState {
    /// The state of a run that has not trained yet, on data with this fingerprint.
    pub fn fresh(data_fingerprint: String) -> Self {
        Self {
            rounds_done: 0,
            step: 0,
            wall_time_s: 0.0,
            metrics_len: 0,
            file_sizes: [0; 3],
            skipped_steps: 0,
            best_value: None,
            data_fingerprint: Some(data_fingerprint),
        }
    }
}

/// A checkpoint that failed to load, and why.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint {path}: {message}")]
pub struct CheckpointError {
    /// The checkpoint folder or file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

/// The checkpoints of one run: `checkpoints/epoch-NNNN/{model,optimizer,scheduler}.bpk + state.json`,
/// NNNN the rounds done (the folders kept their name from when every round was an epoch).
pub struct CheckpointStore {
    dir: PathBuf,
    keep: usize,
}

/// What a successful restore hands back to the loop.
pub struct Restored<M> {
    /// The model as checkpointed.
    pub model: M,
    /// The step rule with its optimizer state restored.
    pub optimizer: StepRule<M>,
    /// The learning-rate schedule at the checkpointed step.
    pub scheduler: ModuleLrScheduler,
    /// Where the loop stood: rounds and steps done, wall time, the metrics file's length.
    pub state: LoopState,
    /// The checkpoint folder it was read from.
    pub path: PathBuf,
}

impl CheckpointStore {
    /// A store in `dir` that keeps the newest `keep` (at least 1) checkpoints.
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Self {
        Self {
            dir: dir.into(),
            keep: keep.max(1),
        }
    }

    /// Saves a checkpoint after round `state.rounds_done`.
    ///
    /// Every file goes into `epoch-NNNN.partial/` and is fsynced; only then is the folder renamed to
    /// `epoch-NNNN/`. A folder without the suffix is therefore always complete.
    pub fn save<M: Module + 'static>(
        &self,
        model: &M,
        optimizer: &StepRule<M>,
        scheduler: &ModuleLrScheduler,
        mut state: LoopState,
    ) -> Result<PathBuf, CheckpointError> {
        let name = format!("epoch-{:04}", state.rounds_done);
        let partial = self.dir.join(format!("{name}.partial"));
        let done = self.dir.join(&name);
        let fail = |path: &Path, e: &dyn std::fmt::Display| CheckpointError {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(|e| fail(&partial, &e))?;
        }
        fs::create_dir_all(&partial).map_err(|e| fail(&partial, &e))?;

        let model_bytes = model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| fail(&partial, &e))?;
        let optimizer_bytes = optimizer.to_bytes().map_err(|e| fail(&partial, &e))?;
        let scheduler_bytes = scheduler
            .to_record()
            .into_bytes()
            .map_err(|e| fail(&partial, &e))?;
        state.file_sizes = [
            model_bytes.len() as u64,
            optimizer_bytes.len() as u64,
            scheduler_bytes.len() as u64,
        ];
        for (file, bytes) in [
            (MODEL_FILE, &model_bytes[..]),
            (OPTIMIZER_FILE, &optimizer_bytes[..]),
            (SCHEDULER_FILE, &scheduler_bytes[..]),
        ] {
            let path = partial.join(file);
            write_atomically(&path, bytes).map_err(|e| fail(&path, &e))?;
        }
        let state_json = serde_json::to_vec_pretty(&state).map_err(|e| fail(&partial, &e))?;
        write_atomically(&partial.join(STATE_FILE), &state_json).map_err(|e| fail(&partial, &e))?;

        if done.exists() {
            remove_checkpoint(&done).map_err(|e| fail(&done, &e))?;
        }
        fs::rename(&partial, &done).map_err(|e| fail(&done, &e))?;
        sync_dir(&self.dir).map_err(|e| fail(&self.dir, &e))?;
        self.prune();
        Ok(done)
    }

    /// Complete checkpoint folders, newest first.
    pub fn list(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(usize, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let epoch = name.strip_prefix("epoch-")?.parse().ok()?;
                Some((epoch, e.path()))
            })
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        found.into_iter().map(|(_, p)| p).collect()
    }

    /// Restores the newest checkpoint that loads. A damaged one (truncated, unreadable) is reported
    /// through `on_skip` and the next older one is tried, so one bad write never loses the run.
    pub fn restore_latest<M: Module + 'static>(
        &self,
        model: &M,
        optimizer: &StepRule<M>,
        scheduler: &ModuleLrScheduler,
        mut on_skip: impl FnMut(&CheckpointError),
    ) -> Option<Restored<M>> {
        for path in self.list() {
            match Self::restore(&path, model, optimizer, scheduler) {
                Ok(restored) => return Some(restored),
                Err(e) => on_skip(&e),
            }
        }
        None
    }

    /// The model of the newest checkpoint whose model file loads onto `model` (for inference:
    /// the optimizer's state is not read). `None` when no checkpoint has one.
    pub fn latest_model<M: Module + 'static>(&self, model: &M) -> Option<(PathBuf, M)> {
        self.list().into_iter().find_map(|path| {
            let state: LoopState =
                serde_json::from_slice(&fs::read(path.join(STATE_FILE)).ok()?).ok()?;
            let bytes = fs::read(path.join(MODEL_FILE)).ok()?;
            if bytes.len() as u64 != state.file_sizes[0] {
                return None;
            }
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).ok()?;
            let loaded = model.clone().try_load_record(record).ok()?;
            Some((path, loaded))
        })
    }

    /// Loads one checkpoint folder onto the given (freshly initialised) model, optimizer and
    /// scheduler.
    pub fn restore<M: Module + 'static>(
        path: &Path,
        model: &M,
        optimizer: &StepRule<M>,
        scheduler: &ModuleLrScheduler,
    ) -> Result<Restored<M>, CheckpointError> {
        let fail = |file: &str, message: String| CheckpointError {
            path: path.join(file),
            message,
        };
        let state_bytes =
            fs::read(path.join(STATE_FILE)).map_err(|e| fail(STATE_FILE, e.to_string()))?;
        let state: LoopState = serde_json::from_slice(&state_bytes)
            .map_err(|e| fail(STATE_FILE, format!("unreadable state: {e}")))?;
        let read = |file: &str, expected: u64| -> Result<Vec<u8>, CheckpointError> {
            let bytes = fs::read(path.join(file)).map_err(|e| fail(file, e.to_string()))?;
            if bytes.len() as u64 != expected {
                return Err(fail(
                    file,
                    format!(
                        "truncated or altered: expected {expected} bytes, found {}",
                        bytes.len()
                    ),
                ));
            }
            Ok(bytes)
        };
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(
            MODEL_FILE,
            state.file_sizes[0],
        )?))
        .map_err(|e| fail(MODEL_FILE, e.to_string()))?;
        let model = model
            .clone()
            .try_load_record(record)
            .map_err(|e| fail(MODEL_FILE, e.to_string()))?;
        let optimizer = optimizer
            .clone()
            .load_bytes(read(OPTIMIZER_FILE, state.file_sizes[1])?)
            .map_err(|e| fail(OPTIMIZER_FILE, e))?;
        let record = LrSchedulerRecord::from_bytes(Bytes::from_bytes_vec(read(
            SCHEDULER_FILE,
            state.file_sizes[2],
        )?))
        .map_err(|e| fail(SCHEDULER_FILE, e.to_string()))?;
        let scheduler = scheduler.clone().load_record(record);
        Ok(Restored {
            model,
            optimizer,
            scheduler,
            state,
            path: path.to_path_buf(),
        })
    }

    /// Removes all but the newest `keep` checkpoints and any leftover `.partial` or `.removing`
    /// folders.
    fn prune(&self) {
        for old in self.list().into_iter().skip(self.keep) {
            let _ = remove_checkpoint(&old);
        }
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".partial") || name.ends_with(".removing") {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// Deletes a checkpoint folder without ever leaving a half-deleted one under a complete name: it is
/// first renamed to `<name>.removing` (which [`CheckpointStore::list`] ignores), then removed.
fn remove_checkpoint(path: &Path) -> std::io::Result<()> {
    let mut doomed = path.as_os_str().to_owned();
    doomed.push(".removing");
    let doomed = PathBuf::from(doomed);
    if doomed.exists() {
        fs::remove_dir_all(&doomed)?;
    }
    fs::rename(path, &doomed)?;
    fs::remove_dir_all(&doomed)
}
