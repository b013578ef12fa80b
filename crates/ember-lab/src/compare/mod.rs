//! Experiments: a spec of arms × seeds ([`CompareSpec`]), each arm tuned first when the spec has a
//! `[sweep]` ([`sweep`]: trials on a validation split, the choice), running it ([`Experiment`]), its numbers
//! ([`Results`]: means with intervals, differences to a reference arm, time to target) and its
//! report (`results.md`, `results.json`, plots, and the runs' small files beside them); many
//! worker processes on one experiment ([`Experiment::work`]).

mod archive;
mod claims;
mod report;
mod results;
mod run;
mod spec;
pub mod sweep;
mod worker;

pub use archive::{archive_runs, archived_runs};
pub use claims::{Claims, Held};
pub use report::{render_results, write_plots, write_results_json};
pub use results::{
    collect_results, ArmBudget, ArmResult, Band, Reached, ReportError, Results, RoundPoint,
    SeedRun, TimeToTarget, VersusReference,
};
pub use run::{default_out, Experiment, Written};
pub use spec::{
    ArmChoice, ArmSpec, CompareSpec, CompareSpecError, DataSection, Target, TextSection,
    TrainSection, Workload,
};
pub use worker::{Shard, WorkerOptions};
