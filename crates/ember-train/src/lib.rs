//! Ember's training machinery: device selection, the training loop, metrics, checkpoints, and the
//! specs that describe a run. The command line is a thin layer over this crate.

mod atomic;
mod checkpoint;
mod device;
mod guard;
mod metrics;
mod objective;
mod run_dir;
mod spec;
mod step_rule;
mod trainer;

pub use atomic::write_atomically;
pub use checkpoint::{CheckpointError, CheckpointStore, LoopState, Restored};
pub use device::{DeviceChoice, DeviceError};
pub use guard::{
    first_non_finite_parameter, step_is_finite, NonFinitePolicy, MAX_CONSECUTIVE_SKIPS,
};
pub use metrics::{read_metrics, MetricsRecord, MetricsWriter};
pub use objective::{BatchObjective, PassCounts};
pub use run_dir::RunDir;
pub use spec::{DatasetSpec, OptimizerSpec, SchedulerSpec, SpecError};
pub use step_rule::StepRule;
pub use trainer::{
    evaluate, train, TrainData, TrainError, TrainParts, TrainSettings, TrainSummary,
};
