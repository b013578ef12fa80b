//! Range checks shared by the configs of the root-free methods, producing [`OptimConfigError`]s
//! whose message names the config, the field, the value and the accepted range.

use std::fmt;

use crate::OptimConfigError;

/// Checks the fields of one config, naming it in every error, e.g.
/// `RfRmsPropConfig.beta2 = 1.5: expected a number in (0, 1]`.
#[derive(Clone, Copy)]
pub(crate) struct FieldCheck {
    config: &'static str,
}

impl FieldCheck {
    pub(crate) fn new(config: &'static str) -> Self {
        Self { config }
    }

    pub(crate) fn fail(
        &self,
        field: &'static str,
        value: impl fmt::Display,
        expected: &str,
    ) -> OptimConfigError {
        OptimConfigError::new(
            field,
            format!("{}.{field} = {value}: expected {expected}", self.config),
        )
    }

    fn require(
        &self,
        ok: bool,
        field: &'static str,
        value: impl fmt::Display,
        expected: &str,
    ) -> Result<(), OptimConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.fail(field, value, expected))
        }
    }

    /// `value ∈ (0, 1]`: a step toward new evidence that may replace the old estimate entirely.
    pub(crate) fn step_fraction(
        &self,
        field: &'static str,
        value: f64,
    ) -> Result<(), OptimConfigError> {
        let ok = value > 0.0 && value <= 1.0;
        self.require(ok, field, value, "a number in (0, 1]")
    }

    /// `value ∈ (0, 1)`.
    pub(crate) fn open_unit(
        &self,
        field: &'static str,
        value: f64,
    ) -> Result<(), OptimConfigError> {
        let ok = value > 0.0 && value < 1.0;
        self.require(ok, field, value, "a number in (0, 1)")
    }

    /// `value ∈ [0, 1]`: a mixing weight.
    pub(crate) fn closed_unit(
        &self,
        field: &'static str,
        value: f64,
    ) -> Result<(), OptimConfigError> {
        let ok = (0.0..=1.0).contains(&value);
        self.require(ok, field, value, "a number in [0, 1]")
    }

    /// `value ∈ [0, 1)`: the decay of a moving average or momentum buffer.
    pub(crate) fn decay(&self, field: &'static str, value: f64) -> Result<(), OptimConfigError> {
        let ok = (0.0..1.0).contains(&value);
        self.require(ok, field, value, "a number in [0, 1)")
    }

    /// Finite and `≥ 0`.
    pub(crate) fn non_negative(
        &self,
        field: &'static str,
        value: f64,
    ) -> Result<(), OptimConfigError> {
        let ok = value.is_finite() && value >= 0.0;
        self.require(ok, field, value, "a finite number >= 0")
    }

    /// Finite and `> 0`.
    pub(crate) fn positive(&self, field: &'static str, value: f64) -> Result<(), OptimConfigError> {
        let ok = value.is_finite() && value > 0.0;
        self.require(ok, field, value, "a finite number > 0")
    }

    /// An integer `≥ 1`.
    pub(crate) fn at_least_one(
        &self,
        field: &'static str,
        value: usize,
    ) -> Result<(), OptimConfigError> {
        self.require(value >= 1, field, value, "an integer >= 1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_config_field_value_and_range() {
        let err = FieldCheck::new("RfRmsPropConfig")
            .step_fraction("beta2", 1.5)
            .unwrap_err();
        assert_eq!(err.field, "beta2");
        assert!(
            err.to_string()
                .contains("RfRmsPropConfig.beta2 = 1.5: expected a number in (0, 1]"),
            "{err}"
        );
    }

    #[test]
    fn nan_and_infinity_are_rejected() {
        let check = FieldCheck::new("X");
        assert!(check.step_fraction("a", f64::NAN).is_err());
        assert!(check.open_unit("a", f64::NAN).is_err());
        assert!(check.decay("a", f64::NAN).is_err());
        assert!(check.non_negative("a", f64::NAN).is_err());
        assert!(check.positive("a", f64::NAN).is_err());
        assert!(check.non_negative("a", f64::INFINITY).is_err());
    }

    #[test]
    fn boundaries() {
        let check = FieldCheck::new("X");
        assert!(check.step_fraction("a", 1.0).is_ok());
        assert!(check.step_fraction("a", 0.0).is_err());
        assert!(check.open_unit("a", 1.0).is_err());
        assert!(check.open_unit("a", 0.5).is_ok());
        assert!(check.closed_unit("a", 1.0).is_ok());
        assert!(check.closed_unit("a", 1.01).is_err());
        assert!(check.closed_unit("a", f64::NAN).is_err());
        assert!(check.decay("a", 0.0).is_ok());
        assert!(check.decay("a", 1.0).is_err());
        assert!(check.non_negative("a", 0.0).is_ok());
        assert!(check.positive("a", 0.0).is_err());
        assert!(check.at_least_one("a", 0).is_err());
        assert!(check.at_least_one("a", 1).is_ok());
    }
}
