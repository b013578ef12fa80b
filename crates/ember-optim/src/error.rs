//! The error every optimizer config returns when it rejects a field.

use std::fmt;

/// An optimizer config was rejected by `build()` / `init()`: `field` names the offending config
/// field, `message` says what was wrong with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimConfigError {
    /// Name of the config field that holds the bad value, e.g. `"weight_decay"`.
    pub field: &'static str,
    /// What is wrong with the value, including the value itself.
    pub message: String,
}

impl OptimConfigError {
    /// An error for `field`, with a message that should quote the rejected value.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for OptimConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid optimizer config field `{}`: {}",
            self.field, self.message
        )
    }
}

impl std::error::Error for OptimConfigError {}
