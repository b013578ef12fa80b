//! Ember's lab: everything that runs many trainings and explains them, on top of the training
//! library `ember-train`. Typed run specs (from `ember train`'s flags or an experiment's tables),
//! experiment comparisons over seeds, the learning-rate range test, plots, Markdown/JSON reports,
//! benchmarks and paper studies. The `ember` command line is a thin layer over this crate.

pub mod bench;
pub mod compare;
pub mod flags;
pub mod lr_find;
pub mod markdown;
pub mod plot;
pub mod provenance;
pub mod sample;
pub mod signgd_study;
pub mod spec;
pub mod stats;
pub mod sweep;
pub mod table;

pub use compare::{CompareSpec, CompareSpecError};
pub use flags::{TextFlags, TrainFlags};
pub use lr_find::{lr_find, LrFindCurve, LrFindError, LrFindSettings, LrSuggestion};
pub use plot::{LegendPosition, LinePlot, Marker, PlotError, PlotFormat, Series};
pub use signgd_study::{run_signgd_study, SignGdStudyConfig, StudyArm, StudyError, StudyRun};
pub use spec::{
    DataSpec, DatasetSpec, ModelSpec, OptimizerSpec, Prepared, RunSpec, SchedulerSpec, SpecError,
    TextRunSpec,
};
