//! Ember's training machinery: device selection, the training loop, metrics, checkpoints, the
//! learning-rate range test, plots, and the specs that describe a run. The command line is a thin
//! layer over this crate.

mod atomic;
mod checkpoint;
mod compare;
mod device;
mod guard;
mod lr_find;
mod metrics;
mod objective;
mod plot;
mod run_dir;
pub mod signgd_study;
mod spec;
mod step_rule;
mod trainer;

pub use atomic::{write_atomically, AtomicFile};
pub use checkpoint::{CheckpointError, CheckpointStore, LoopState, Restored};
pub use compare::{
    collect_results, render_results, write_plots, ArmResult, ArmSpec, CompareSpec,
    CompareSpecError, DataSection, EpochPoint, MeanStd, ModelSection, ReportError, Spread,
    TrainSection,
};
pub use device::{DeviceChoice, DeviceError};
pub use guard::{
    first_non_finite_parameter, step_is_finite, NonFinitePolicy, MAX_CONSECUTIVE_SKIPS,
};
pub use lr_find::{
    lr_find, lr_find_curve, round_significant, write_lr_find, write_lr_find_data,
    write_lr_find_plot, LossTracker, LrFindCurve, LrFindError, LrFindFiles, LrFindPoint,
    LrFindSettings, LrSuggestion, MAX_LR_FRACTION, MIN_LR_RATIO,
};
pub use metrics::{read_metrics, MetricsRecord, MetricsWriter};
pub use objective::{BatchObjective, PassCounts};
pub use plot::{LegendPosition, LinePlot, Marker, PlotError, PlotFormat, Series};
pub use run_dir::{existing_runs, NoSuchRun, RunDir};
pub use signgd_study::{run_signgd_study, SignGdStudyConfig, StudyArm, StudyError, StudyRun};
pub use spec::{DatasetSpec, OptimizerSpec, SchedulerSpec, SpecError};
pub use step_rule::StepRule;
pub use trainer::{
    differing_fields, evaluate, train, TrainData, TrainError, TrainParts, TrainSettings,
    TrainSummary,
};
