//! The typed "computed or not enough data" outcome and method labels.

use serde::{Deserialize, Serialize};

/// Either a computed result or an explicit reason why it could not be
/// computed. Serialized with a `status` tag:
/// `{"status": "computed", ...fields}` or
/// `{"status": "not_enough_data", "reason": "zero_variance", "detail": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome<T> {
    /// The result, with every number finite.
    Computed(T),
    /// The data cannot support the computation (never NaN or infinity).
    NotEnoughData(NotEnoughData),
}

impl<T> Outcome<T> {
    /// The computed value, if any.
    #[must_use]
    pub fn computed(&self) -> Option<&T> {
        match self {
            Self::Computed(value) => Some(value),
            Self::NotEnoughData(_) => None,
        }
    }

    /// Consumes the outcome, returning the computed value, if any.
    #[must_use]
    pub fn into_computed(self) -> Option<T> {
        match self {
            Self::Computed(value) => Some(value),
            Self::NotEnoughData(_) => None,
        }
    }

    /// The reason the value is missing, if it is.
    #[must_use]
    pub fn not_enough_data(&self) -> Option<&NotEnoughData> {
        match self {
            Self::Computed(_) => None,
            Self::NotEnoughData(reason) => Some(reason),
        }
    }

    /// `true` when a value was computed.
    #[must_use]
    pub fn is_computed(&self) -> bool {
        matches!(self, Self::Computed(_))
    }

    /// Shorthand for building the "not enough data" case.
    pub(crate) fn insufficient(reason: InsufficientReason, detail: impl Into<String>) -> Self {
        Self::NotEnoughData(NotEnoughData {
            reason,
            detail: detail.into(),
        })
    }
}

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotEnoughData {
    /// Machine-readable reason.
    pub reason: InsufficientReason,
    /// Human-readable explanation for the results page.
    pub detail: String,
}

/// Machine-readable reasons for [`Outcome::NotEnoughData`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsufficientReason {
    /// A variant has fewer than [`crate::MIN_USERS_PER_VARIANT`] users.
    TooFewUsers,
    /// The variance of the lift estimate is zero (e.g. every user has the
    /// same value, or nobody / everybody converted), so no test is possible.
    ZeroVariance,
    /// The control mean is zero, so a relative lift is undefined.
    ZeroControlMean,
    /// The inputs are valid but so extreme that a result would overflow
    /// double precision; reported instead of returning NaN or infinity.
    NumericalLimit,
}

/// The method that produced a number; every result struct carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Value-metric summary: mean `sum/n`, sample variance with `n - 1`,
    /// standard error `sqrt(variance / n)`.
    SampleMoments,
    /// Conversion summary: rate `p = conversions/n`, sample variance
    /// `n/(n-1)·p(1-p)`, standard error `sqrt(p(1-p)/n)` (the one the
    /// z-test interval uses).
    BernoulliProportion,
    /// Welch's unequal-variance t-test, Welch–Satterthwaite degrees of freedom.
    WelchTTest,
    /// Two-proportion z-test with the pooled standard error.
    TwoProportionZTestPooled,
    /// `diff ± t_{(1+c)/2, df} · se`, Welch–Satterthwaite df.
    WelchTInterval,
    /// Wald interval `diff ± z_{(1+c)/2} · se` with the unpooled standard error.
    WaldUnpooled,
    /// Delta-method interval for the relative lift, normal quantile.
    DeltaMethodNormal,
    /// Beta-Binomial posterior, exact by deterministic numerical integration.
    BetaBinomialQuadrature,
    /// Normal approximation to the posterior of each mean with a flat prior.
    NormalApproximationFlatPrior,
    /// Pearson chi-square goodness-of-fit test.
    PearsonChiSquare,
    /// Always-valid interval from the normal-mixture mSPRT boundary.
    MsprtNormalMixture,
}
