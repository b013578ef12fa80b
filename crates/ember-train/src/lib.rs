//! Ember's training library: one loop over a [`Task`] (what a batch is, the loss, what an
//! evaluation reports), a [`StepRule`] (a burn optimizer, or a closure optimizer that evaluates the
//! loss itself) and a learning-rate schedule, with metrics, atomic checkpoints, exact resume,
//! non-finite guards and device selection. Run folders have one typed contract, [`RunDir`].
//!
//! What to train is given as built parts ([`TrainParts`]) and a task ([`ImageClassification`],
//! or your own [`Task`]); the declarative specs that build them from a file or the command line,
//! and everything that runs many trainings and explains them, live in `ember-lab`. This crate
//! pulls in neither plots nor spec files.

#![warn(missing_docs)]

mod atomic;
mod checkpoint;
mod device;
mod driver;
mod guard;
mod image_task;
mod lm_task;
mod objective;
mod parameters;
mod resume;
mod run_dir;
mod step_rule;
mod task;
mod trainer;

pub use atomic::{write_atomically, AtomicFile};
pub use checkpoint::{CheckpointError, CheckpointStore, LoopState, Restored};
pub use device::{DeviceChoice, DeviceError};
pub use driver::{GaveUp, StepDriver, Stepped};
pub use guard::{
    first_non_finite_parameter, step_is_finite, NonFinitePolicy, MAX_CONSECUTIVE_SKIPS,
};
pub use image_task::{evaluate, ImageClassification, TrainData};
pub use lm_task::{LanguageModelling, TokenBatch};
pub use objective::{PassCounts, TaskObjective};
pub use parameters::for_each_float_parameter;
pub use resume::differing_fields;
pub use run_dir::{
    existing_runs, is_folder_name, read_metrics_file, EvalSplit, Evaluation, MetricsRecord,
    MetricsWriter, NoSuchRun, RecordKind, RunDir, RunFileError, RunSummary, Selection,
};
pub use step_rule::StepRule;
pub use task::{BatchPosition, Budget, Fingerprint, RoundPlan, Task};
pub use trainer::{train, SettingsError, TrainError, TrainParts, TrainSettings};
