//! A run of either task kind, as an experiment arm becomes it for one seed: what `ember compare`
//! and its sweeps check, record and train without caring which kind it is.

use ember_train::{RunDir, RunSummary};

use super::{RunSpec, SchedulerSpec, SpecError, TextRunSpec};

/// An image-classification or a language-modelling run.
#[derive(Clone, Debug)]
pub enum AnyRunSpec {
    /// An image-classification run.
    Image(RunSpec),
    /// A language-modelling run.
    Text(TextRunSpec),
}

impl AnyRunSpec {
    /// Checks everything that can be checked without loading data, naming the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            AnyRunSpec::Image(run) => run.validate(),
            AnyRunSpec::Text(run) => run.validate(),
        }
    }

    /// The run's `config.json`.
    pub fn config_json(&self) -> serde_json::Value {
        match self {
            AnyRunSpec::Image(run) => run.config_json(),
            AnyRunSpec::Text(run) => run.config_json(),
        }
    }

    /// The run's learning-rate schedule.
    pub fn scheduler(&self) -> &SchedulerSpec {
        match self {
            AnyRunSpec::Image(run) => &run.scheduler,
            AnyRunSpec::Text(run) => &run.scheduler,
        }
    }

    /// Trains the run into `run` (continuing it from its newest checkpoint with `resume`).
    ///
    /// # Errors
    /// What the run's own `train` returns: bad settings, unreadable data, a failed step or write.
    pub fn train(&self, run: &RunDir, resume: bool) -> anyhow::Result<RunSummary> {
        match self {
            AnyRunSpec::Image(spec) => spec.train(run, resume),
            AnyRunSpec::Text(spec) => spec.train(run, resume),
        }
    }
}
