//! Sample-ratio-mismatch check.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::error::StatsError;
use crate::frequentist::{all_finite, numerical_limit};
use crate::outcome::{InsufficientReason, Method, Outcome};

/// p-value below which [`SrmResult::warning`] is set.
pub const SRM_P_VALUE_THRESHOLD: f64 = 0.001;

/// Result of a sample-ratio-mismatch check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrmResult {
    /// Always [`Method::PearsonChiSquare`].
    pub method: Method,
    /// Pearson statistic `Σ (observed - expected)² / expected`.
    pub statistic: f64,
    /// Number of variants minus one.
    pub degrees_of_freedom: u64,
    /// `P(χ²_df >= statistic)`.
    pub p_value: f64,
    /// `true` when `p_value < threshold`: the assignment is probably broken
    /// and the experiment's results should not be trusted.
    pub warning: bool,
    /// The threshold used ([`SRM_P_VALUE_THRESHOLD`]).
    pub threshold: f64,
    /// Expected exposures per variant, `total · weight / Σ weights`.
    pub expected_counts: Vec<f64>,
}

/// Chi-square goodness-of-fit test of observed exposure counts against the
/// configured traffic split. `expected_weights` may be percentages or any
/// positive weights; they are normalised to sum to one.
///
/// Not enough data: no exposures at all.
///
/// # Errors
/// [`StatsError::InvalidArgument`] when the slices differ in length, have
/// fewer than two variants, or a weight is not a positive finite number.
pub fn srm_check(
    counts: &[u64],
    expected_weights: &[f64],
) -> Result<Outcome<SrmResult>, StatsError> {
    if counts.len() != expected_weights.len() {
        return Err(StatsError::InvalidArgument(format!(
            "{} counts but {} weights",
            counts.len(),
            expected_weights.len()
        )));
    }
    if counts.len() < 2 {
        return Err(StatsError::InvalidArgument(
            "an SRM check needs at least two variants".into(),
        ));
    }
    if let Some(w) = expected_weights
        .iter()
        .find(|w| !(w.is_finite() && **w > 0.0))
    {
        return Err(StatsError::InvalidArgument(format!(
            "traffic weights must be positive and finite, got {w}"
        )));
    }
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Ok(Outcome::insufficient(
            InsufficientReason::TooFewUsers,
            "no exposures recorded yet",
        ));
    }
    let weight_sum: f64 = expected_weights.iter().sum();
    let expected_counts: Vec<f64> = expected_weights
        .iter()
        .map(|w| total as f64 * (w / weight_sum))
        .collect();
    let statistic: f64 = counts
        .iter()
        .zip(&expected_counts)
        .map(|(&o, &e)| {
            let d = o as f64 - e;
            d * d / e
        })
        .sum();
    let degrees_of_freedom = counts.len() as u64 - 1;
    let chi2 = ChiSquared::new(degrees_of_freedom as f64)
        .map_err(|e| StatsError::InvalidArgument(e.to_string()))?;
    let p_value = chi2.sf(statistic).clamp(0.0, 1.0);
    if !all_finite(&[statistic, p_value]) || !all_finite(&expected_counts) {
        return Ok(numerical_limit());
    }
    Ok(Outcome::Computed(SrmResult {
        method: Method::PearsonChiSquare,
        statistic,
        degrees_of_freedom,
        p_value,
        warning: p_value < SRM_P_VALUE_THRESHOLD,
        threshold: SRM_P_VALUE_THRESHOLD,
        expected_counts,
    }))
}
