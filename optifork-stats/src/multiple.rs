//! Multiple-comparison corrections (Holm, Benjamini–Hochberg).

use serde::{Deserialize, Serialize};

use crate::compare::Comparison;
use crate::error::StatsError;
use crate::outcome::Outcome;

/// A multiple-comparison correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// No correction (also what is recorded when there is only one comparison).
    #[default]
    None,
    /// Holm–Bonferroni step-down; controls the family-wise error rate.
    Holm,
    /// Benjamini–Hochberg step-up; controls the false discovery rate.
    BenjaminiHochberg,
}

/// One adjusted p-value and how it was adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdjustedPValue {
    /// The correction that was applied ([`Correction::None`] when there was
    /// a single comparison).
    pub correction: Correction,
    /// Number of p-values in the family.
    pub comparisons: usize,
    /// The adjusted p-value, in `[0, 1]`.
    pub value: f64,
}

/// A family of adjusted p-values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdjustedPValues {
    /// The correction that was applied ([`Correction::None`] for fewer than
    /// two p-values, where every correction is the identity).
    pub correction: Correction,
    /// The p-values as given.
    pub raw: Vec<f64>,
    /// Adjusted p-values, in the same order as `raw`.
    pub adjusted: Vec<f64>,
}

fn check_p_values(p_values: &[f64]) -> Result<(), StatsError> {
    match p_values.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        Some(p) => Err(StatsError::InvalidArgument(format!(
            "p-values must be in [0, 1], got {p}"
        ))),
        None => Ok(()),
    }
}

/// Indices of `p_values` in ascending order of p-value.
fn ascending_order(p_values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    order
}

/// Holm step-down adjusted p-values: with `p₍₁₎ <= … <= p₍ₘ₎`,
/// `adj₍ᵢ₎ = min(1, max_{j<=i} (m - j + 1)·p₍ⱼ₎)`; returned in input order.
/// Matches `statsmodels.stats.multitest.multipletests(method="holm")`.
///
/// # Errors
/// [`StatsError::InvalidArgument`] when a p-value is outside `[0, 1]` or NaN.
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>, StatsError> {
    check_p_values(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running_max: f64 = 0.0;
    for (rank, &i) in ascending_order(p_values).iter().enumerate() {
        let scaled = ((m - rank) as f64 * p_values[i]).min(1.0);
        running_max = running_max.max(scaled);
        adjusted[i] = running_max;
    }
    Ok(adjusted)
}

/// Benjamini–Hochberg step-up adjusted p-values: with `p₍₁₎ <= … <= p₍ₘ₎`,
/// `adj₍ᵢ₎ = min(1, min_{j>=i} m·p₍ⱼ₎/j)`; returned in input order.
/// Matches `statsmodels.stats.multitest.multipletests(method="fdr_bh")`.
///
/// # Errors
/// [`StatsError::InvalidArgument`] when a p-value is outside `[0, 1]` or NaN.
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>, StatsError> {
    check_p_values(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running_min: f64 = 1.0;
    for (rank, &i) in ascending_order(p_values).iter().enumerate().rev() {
        let scaled = m as f64 * p_values[i] / (rank + 1) as f64;
        running_min = running_min.min(scaled);
        adjusted[i] = running_min;
    }
    Ok(adjusted)
}

/// Adjusts a family of p-values. With fewer than two p-values nothing is
/// adjusted and the result records [`Correction::None`].
///
/// # Errors
/// [`StatsError::InvalidArgument`] when a p-value is outside `[0, 1]` or NaN.
pub fn adjust_p_values(
    p_values: &[f64],
    correction: Correction,
) -> Result<AdjustedPValues, StatsError> {
    check_p_values(p_values)?;
    let applied = if p_values.len() < 2 {
        Correction::None
    } else {
        correction
    };
    let adjusted = match applied {
        Correction::None => p_values.to_vec(),
        Correction::Holm => holm(p_values)?,
        Correction::BenjaminiHochberg => benjamini_hochberg(p_values)?,
    };
    Ok(AdjustedPValues {
        correction: applied,
        raw: p_values.to_vec(),
        adjusted,
    })
}

/// Treats every computed frequentist p-value in `comparisons` (all
/// variants × metrics of one experiment) as one family, adjusts it, and
/// stores the result in each [`crate::FrequentistResult::adjusted_p_value`].
/// Comparisons without a p-value (not enough data) are not part of the
/// family. Returns the correction actually applied.
///
/// # Errors
/// Only if a stored p-value is outside `[0, 1]` (impossible for results
/// produced by this crate).
pub fn apply_correction(
    comparisons: &mut [Comparison],
    correction: Correction,
) -> Result<Correction, StatsError> {
    let p_values: Vec<f64> = comparisons
        .iter()
        .filter_map(|c| c.frequentist.computed().map(|f| f.p_value))
        .collect();
    let adjusted = adjust_p_values(&p_values, correction)?;
    let family = p_values.len();
    let computed = comparisons
        .iter_mut()
        .filter_map(|c| match &mut c.frequentist {
            Outcome::Computed(f) => Some(f),
            Outcome::NotEnoughData(_) => None,
        });
    for (result, &value) in computed.zip(&adjusted.adjusted) {
        result.adjusted_p_value = Some(AdjustedPValue {
            correction: adjusted.correction,
            comparisons: family,
            value,
        });
    }
    Ok(adjusted.correction)
}
