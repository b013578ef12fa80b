//! Experiments: a spec of arms × seeds ([`CompareSpec`]), running it ([`Experiment`]) and its
//! report (`results.md` and plots with the spread over seeds).

mod report;
mod run;
mod spec;

pub use report::{
    collect_results, render_results, write_plots, ArmResult, EpochPoint, ReportError, Spread,
};
pub use run::{default_out, Experiment, Written};
pub use spec::{ArmChoice, ArmSpec, CompareSpec, CompareSpecError, DataSection, TrainSection};
