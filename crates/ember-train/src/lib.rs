//! Ember's training library: the loop over a model, a [`StepRule`] (a burn optimizer, or a closure
//! optimizer that evaluates the loss itself) and a learning-rate schedule, with metrics, atomic
//! checkpoints, exact resume, non-finite guards and device selection.
//!
//! What to train is given as built parts ([`TrainParts`]); the declarative specs that build them
//! from a file or the command line, and everything that runs many trainings and explains them,
//! live in `ember-lab`. This crate pulls in neither plots nor spec files.

mod atomic;
mod checkpoint;
mod device;
mod guard;
mod metrics;
mod objective;
mod run_dir;
mod step_rule;
mod trainer;

pub use atomic::{write_atomically, AtomicFile};
pub use checkpoint::{CheckpointError, CheckpointStore, LoopState, Restored};
pub use device::{DeviceChoice, DeviceError};
pub use guard::{
    first_non_finite_parameter, step_is_finite, NonFinitePolicy, MAX_CONSECUTIVE_SKIPS,
};
pub use metrics::{read_metrics, MetricsRecord, MetricsWriter};
pub use objective::{BatchObjective, PassCounts};
pub use run_dir::{existing_runs, NoSuchRun, RunDir};
pub use step_rule::StepRule;
pub use trainer::{
    differing_fields, evaluate, train, SettingsError, TrainData, TrainError, TrainParts,
    TrainSettings, TrainSummary,
};
