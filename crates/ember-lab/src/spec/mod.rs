//! Typed descriptions of a run: its model, data, optimizer and learning-rate schedule. The same
//! types come from `ember train`'s flags ([`crate::flags`]) and from an experiment spec's tables
//! ([`crate::spec::table`]), and are recorded in a run's `config.json`. Each validates itself and names the
//! bad field.

mod any_run;
mod dataset;
mod model;
mod optimizer;
mod run;
mod scheduler;
pub mod table;
mod text_run;

pub use any_run::AnyRunSpec;
pub use dataset::{DataSpec, DatasetSpec, Holdout};
pub use model::{ModelSpec, TokenPoolSpec, TransformerSpec};
pub use optimizer::{muon_group, OptimizerSpec};
pub use run::{Prepared, RunSpec};
pub use scheduler::SchedulerSpec;
pub use text_run::{
    read_vocabulary, DecoderSpec, TextDataSpec, TextRunSpec, TextStart, VOCABULARY_FILE,
};

use ember_optim::OptimConfigError;
use ember_train::SettingsError;

/// A hyper-parameter that cannot be used, naming its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct SpecError {
    /// The field's name as a spec or flag spells it (e.g. `lr`, `weight_decay`).
    pub field: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

impl From<OptimConfigError> for SpecError {
    fn from(e: OptimConfigError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}

impl SpecError {
    /// An error naming `field`, with `message` saying what is wrong.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

pub(crate) fn check_positive(field: &'static str, value: f64) -> Result<(), SpecError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            format!("must be finite and > 0, got {value}"),
        ))
    }
}

pub(crate) fn check_non_negative(field: &'static str, value: f64) -> Result<(), SpecError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            format!("must be finite and >= 0, got {value}"),
        ))
    }
}

pub(crate) fn check_unit(field: &'static str, value: f64) -> Result<(), SpecError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            format!("must be in [0, 1), got {value}"),
        ))
    }
}

impl From<SettingsError> for SpecError {
    fn from(e: SettingsError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}
