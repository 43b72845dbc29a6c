//! Errors for inputs that are invalid (as opposed to merely too small).

use thiserror::Error;

/// Invalid input: a caller bug or corrupt aggregate, never "not enough data"
/// (that is reported as [`crate::Outcome::NotEnoughData`]).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    /// A confidence level outside the open interval (0, 1), or not finite.
    #[error("confidence level must be in (0, 1), got {0}")]
    InvalidConfidence(f64),
    /// Sufficient statistics that no data set could produce (NaN, negative
    /// sum of squares, more conversions than users, ...).
    #[error("invalid statistics: {0}")]
    InvalidStats(String),
    /// Invalid argument to a multiple-comparison, SRM or sequential function.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Checks that `confidence` is a usable confidence level.
pub(crate) fn check_confidence(confidence: f64) -> Result<(), StatsError> {
    if confidence.is_finite() && confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidConfidence(confidence))
    }
}
