//! Per-variant sufficient statistics and their summaries.

use serde::{Deserialize, Serialize};

use crate::error::StatsError;
use crate::outcome::Method;

/// The smallest number of users per variant for which any comparison is
/// computed. A sample variance needs two observations.
pub const MIN_USERS_PER_VARIANT: u64 = 2;

/// Relative tolerance below which `sum_sq - sum²/n` is treated as rounding
/// noise, i.e. the variance as exactly zero (see [`ValueStats::variance`]).
pub const ZERO_VARIANCE_TOLERANCE: f64 = 1e-10;

/// Sufficient statistics of a conversion metric for one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionStats {
    /// Users exposed to the variant.
    pub n: u64,
    /// Users who converted (at most `n`).
    pub conversions: u64,
}

impl ConversionStats {
    /// Builds conversion statistics (not validated until used).
    #[must_use]
    pub const fn new(n: u64, conversions: u64) -> Self {
        Self { n, conversions }
    }

    /// Checks `conversions <= n`.
    pub(crate) fn validate(&self) -> Result<(), StatsError> {
        if self.conversions > self.n {
            return Err(StatsError::InvalidStats(format!(
                "conversions ({}) exceed users ({})",
                self.conversions, self.n
            )));
        }
        Ok(())
    }

    /// Conversion rate `conversions / n`; `None` when `n = 0`.
    #[must_use]
    pub fn rate(&self) -> Option<f64> {
        (self.n > 0).then(|| self.conversions as f64 / self.n as f64)
    }

    /// Summary (rate, sample variance, standard error).
    ///
    /// # Errors
    /// [`StatsError::InvalidStats`] when `conversions > n`.
    pub fn summary(&self) -> Result<VariantSummary, StatsError> {
        self.validate()?;
        let n = self.n as f64;
        let rate = self.rate();
        let (variance, std_error) = match rate {
            Some(p) if self.n >= 2 => {
                let bernoulli = p * (1.0 - p);
                (
                    Some(bernoulli * n / (n - 1.0)),
                    Some((bernoulli / n).sqrt()),
                )
            }
            _ => (None, None),
        };
        Ok(VariantSummary {
            method: Method::BernoulliProportion,
            n: self.n,
            conversions: Some(self.conversions),
            mean: rate,
            variance,
            std_error,
        })
    }
}

/// Sufficient statistics of a value (sum or count) metric for one variant.
/// Users without events count as 0 and are included in `n`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValueStats {
    /// Users exposed to the variant.
    pub n: u64,
    /// Sum of per-user values.
    pub sum: f64,
    /// Sum of squared per-user values.
    pub sum_sq: f64,
}

impl ValueStats {
    /// Builds value statistics (not validated until used).
    #[must_use]
    pub const fn new(n: u64, sum: f64, sum_sq: f64) -> Self {
        Self { n, sum, sum_sq }
    }

    /// Checks finiteness, `sum_sq >= 0`, `n = 0 ⇒ sums = 0`, and
    /// `sum² <= n · sum_sq` (Cauchy–Schwarz) up to rounding.
    pub(crate) fn validate(&self) -> Result<(), StatsError> {
        if !self.sum.is_finite() || !self.sum_sq.is_finite() {
            return Err(StatsError::InvalidStats(
                "sum and sum_sq must be finite".into(),
            ));
        }
        if self.sum_sq < 0.0 {
            return Err(StatsError::InvalidStats(format!(
                "sum_sq must be non-negative, got {}",
                self.sum_sq
            )));
        }
        if self.n == 0 {
            if self.sum != 0.0 || self.sum_sq != 0.0 {
                return Err(StatsError::InvalidStats(
                    "n = 0 but sum or sum_sq is non-zero".into(),
                ));
            }
            return Ok(());
        }
        let mean = self.sum / self.n as f64;
        let centered = self.sum_sq - self.sum * mean;
        if centered < -1e-9 * self.sum_sq {
            return Err(StatsError::InvalidStats(format!(
                "sum_sq ({}) is smaller than sum²/n ({}): no data set has these sums",
                self.sum_sq,
                self.sum * mean
            )));
        }
        Ok(())
    }

    /// Mean `sum / n`; `None` when `n = 0`.
    #[must_use]
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// Sample variance `(sum_sq - sum²/n) / (n - 1)`; `None` when `n < 2`.
    /// When `sum_sq - sum²/n <= ZERO_VARIANCE_TOLERANCE · sum_sq` (a
    /// coefficient of variation below 1e-5) the difference is rounding error
    /// of the summed aggregates, and the variance is reported as exactly 0.
    #[must_use]
    pub fn variance(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let centered = self.sum_sq - self.sum * (self.sum / n);
        let noise = ZERO_VARIANCE_TOLERANCE * self.sum_sq;
        Some(if centered <= noise {
            0.0
        } else {
            centered / (n - 1.0)
        })
    }

    /// Summary (mean, sample variance, standard error).
    ///
    /// # Errors
    /// [`StatsError::InvalidStats`] for impossible sums.
    pub fn summary(&self) -> Result<VariantSummary, StatsError> {
        self.validate()?;
        let variance = self.variance();
        Ok(VariantSummary {
            method: Method::SampleMoments,
            n: self.n,
            conversions: None,
            mean: self.mean(),
            variance,
            std_error: variance.map(|v| (v / self.n as f64).sqrt()),
        })
    }
}

/// Per-variant summary. Optional fields are omitted from JSON (never
/// `null`) when undefined: `mean` needs `n >= 1`, `variance` and
/// `std_error` need `n >= 2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    /// How the numbers were computed ([`Method::SampleMoments`] or
    /// [`Method::BernoulliProportion`]).
    pub method: Method,
    /// Users exposed.
    pub n: u64,
    /// Converted users (conversion metrics only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<u64>,
    /// Mean per user, or conversion rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Sample variance (divisor `n - 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variance: Option<f64>,
    /// Standard error of the mean (see [`Method`] for the formula).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std_error: Option<f64>,
}
