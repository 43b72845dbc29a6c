//! One-call comparison of a treatment against control for one metric.

use serde::{Deserialize, Serialize};

use crate::bayes::{BayesResult, bayes_conversion, bayes_value};
use crate::error::{StatsError, check_confidence};
use crate::frequentist::{FrequentistResult, two_proportion_z_test, welch_t_test};
use crate::outcome::Outcome;
use crate::sequential::{DEFAULT_SEQUENTIAL_TUNING, SequentialInterval, sequential_lift};
use crate::summary::{ConversionStats, ValueStats, VariantSummary};

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::ConversionStats {}
    impl Sealed for crate::ValueStats {}
}

/// Kind of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// Share of users who converted ([`ConversionStats`]).
    Conversion,
    /// Mean of a per-user value or count ([`ValueStats`]).
    Value,
}

/// A metric's per-variant sufficient statistics: implemented by
/// [`ConversionStats`] and [`ValueStats`] only.
pub trait Metric: sealed::Sealed {
    /// The kind of metric.
    const METRIC_TYPE: MetricType;

    /// Per-variant summary.
    ///
    /// # Errors
    /// [`StatsError::InvalidStats`] for impossible statistics.
    fn summary(&self) -> Result<VariantSummary, StatsError>;

    /// The frequentist test for this metric type.
    ///
    /// # Errors
    /// As [`welch_t_test`] / [`two_proportion_z_test`].
    fn frequentist(
        control: &Self,
        treatment: &Self,
        confidence: f64,
    ) -> Result<Outcome<FrequentistResult>, StatsError>;

    /// The Bayesian comparison for this metric type.
    ///
    /// # Errors
    /// As [`bayes_value`] / [`bayes_conversion`].
    fn bayesian(control: &Self, treatment: &Self) -> Result<Outcome<BayesResult>, StatsError>;
}

impl Metric for ConversionStats {
    const METRIC_TYPE: MetricType = MetricType::Conversion;

    fn summary(&self) -> Result<VariantSummary, StatsError> {
        ConversionStats::summary(self)
    }

    fn frequentist(
        control: &Self,
        treatment: &Self,
        confidence: f64,
    ) -> Result<Outcome<FrequentistResult>, StatsError> {
        two_proportion_z_test(control, treatment, confidence)
    }

    fn bayesian(control: &Self, treatment: &Self) -> Result<Outcome<BayesResult>, StatsError> {
        bayes_conversion(control, treatment)
    }
}

impl Metric for ValueStats {
    const METRIC_TYPE: MetricType = MetricType::Value;

    fn summary(&self) -> Result<VariantSummary, StatsError> {
        ValueStats::summary(self)
    }

    fn frequentist(
        control: &Self,
        treatment: &Self,
        confidence: f64,
    ) -> Result<Outcome<FrequentistResult>, StatsError> {
        welch_t_test(control, treatment, confidence)
    }

    fn bayesian(control: &Self, treatment: &Self) -> Result<Outcome<BayesResult>, StatsError> {
        bayes_value(control, treatment)
    }
}

/// Settings for the sequential interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialOptions {
    /// Tuning parameter `N*`: the total sample size at which the interval is
    /// tightest (default [`DEFAULT_SEQUENTIAL_TUNING`]).
    pub tuning_sample_size: f64,
}

impl Default for SequentialOptions {
    fn default() -> Self {
        Self {
            tuning_sample_size: DEFAULT_SEQUENTIAL_TUNING,
        }
    }
}

/// Options for [`compare`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Confidence level for every interval (default 0.95).
    pub confidence: f64,
    /// Also compute an always-valid interval (default: no).
    pub sequential: Option<SequentialOptions>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            confidence: 0.95,
            sequential: None,
        }
    }
}

/// Everything computed for one treatment against control on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Kind of metric.
    pub metric_type: MetricType,
    /// Confidence level of every interval.
    pub confidence: f64,
    /// Control summary.
    pub control: VariantSummary,
    /// Treatment summary.
    pub treatment: VariantSummary,
    /// Frequentist test, absolute and relative lift.
    pub frequentist: Outcome<FrequentistResult>,
    /// Chance to beat control and expected loss.
    pub bayesian: Outcome<BayesResult>,
    /// Always-valid interval, when requested in [`CompareOptions`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<Outcome<SequentialInterval>>,
}

/// Compares `treatment` against `control` on one metric: summaries,
/// frequentist test with absolute and relative lift, Bayesian chance to beat
/// and expected loss, and (optionally) the sequential interval.
///
/// # Errors
/// [`StatsError`] for an invalid confidence level, tuning parameter, or
/// impossible statistics. Too little data is never an error: it shows up as
/// [`Outcome::NotEnoughData`] in the affected parts.
pub fn compare<M: Metric>(
    control: &M,
    treatment: &M,
    options: &CompareOptions,
) -> Result<Comparison, StatsError> {
    check_confidence(options.confidence)?;
    let sequential = match options.sequential {
        Some(s) => Some(sequential_lift(
            control,
            treatment,
            options.confidence,
            s.tuning_sample_size,
        )?),
        None => None,
    };
    Ok(Comparison {
        metric_type: M::METRIC_TYPE,
        confidence: options.confidence,
        control: control.summary()?,
        treatment: treatment.summary()?,
        frequentist: M::frequentist(control, treatment, options.confidence)?,
        bayesian: M::bayesian(control, treatment)?,
        sequential,
    })
}
