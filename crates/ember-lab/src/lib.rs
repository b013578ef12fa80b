//! Ember's lab: everything that runs many trainings and explains them, on top of the training
//! library `ember-train`. The `ember` command line is a thin layer over this crate. Its floor plan:
//!
//! - [`spec`]: typed run specs, built from `ember train`'s flags (in the `ember` crate) or an
//!   experiment's tables ([`spec::table`]), one type per run kind (images, language modelling);
//! - [`compare`]: experiments — arms × seeds, tuned by a sweep on validation first
//!   ([`compare::sweep`]), run by one process or many workers, and their reports;
//! - [`report`]: the parts of every report (Markdown tables, plots, statistics, provenance);
//! - [`tools`]: one-purpose tools (the LR range test, benchmarks, the SignGD study, sampling, the
//!   replay kit).

#![warn(missing_docs)]

pub mod compare;
pub mod report;
pub mod spec;
pub mod tools;

pub use compare::{CompareSpec, CompareSpecError};
pub use report::plot::{LegendPosition, LinePlot, Marker, PlotError, PlotFormat, Series};
pub use spec::{
    DataSpec, DatasetSpec, ModelSpec, OptimizerSpec, Prepared, RunSpec, SchedulerSpec, SpecError,
    TextRunSpec,
};
pub use tools::lr_find::{lr_find, LrFindCurve, LrFindError, LrFindSettings, LrSuggestion};
pub use tools::signgd_study::{
    run_signgd_study, SignGdStudyConfig, StudyArm, StudyError, StudyRun,
};
