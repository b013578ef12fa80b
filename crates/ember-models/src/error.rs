/// A model configuration that cannot be built, naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfigError {
    /// The config field that holds the bad value (e.g. `stage_widths`).
    pub field: &'static str,
    /// What was wrong with it.
    pub message: String,
}

impl ModelConfigError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ModelConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid model config field `{}`: {}",
            self.field, self.message
        )
    }
}

impl std::error::Error for ModelConfigError {}
