//! Frequentist tests: Welch's t-test, the two-proportion z-test and the
//! delta-method relative lift.

use serde::{Deserialize, Serialize};

use crate::error::{StatsError, check_confidence};
use crate::multiple::AdjustedPValue;
use crate::outcome::{InsufficientReason, Method, Outcome};
use crate::special::{normal_quantile, normal_sf, student_t_quantile, student_t_two_sided_p};
use crate::summary::{ConversionStats, MIN_USERS_PER_VARIANT, ValueStats};

/// A point estimate with a two-sided confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// How the interval was computed.
    pub method: Method,
    /// Point estimate (always inside `[lower, upper]`).
    pub estimate: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Standard error used for the interval.
    pub std_error: f64,
    /// Confidence level, e.g. 0.95.
    pub confidence: f64,
}

/// Result of a frequentist comparison of treatment against control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrequentistResult {
    /// [`Method::WelchTTest`] or [`Method::TwoProportionZTestPooled`].
    pub method: Method,
    /// Test statistic (`t` or `z`), positive when treatment is higher.
    pub statistic: f64,
    /// Welch–Satterthwaite degrees of freedom (t-test only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degrees_of_freedom: Option<f64>,
    /// Standard error in the denominator of the statistic.
    pub std_error: f64,
    /// Two-sided p-value, in `[0, 1]`.
    pub p_value: f64,
    /// Multiplicity-adjusted p-value, filled in by
    /// [`crate::apply_correction`]; absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjusted_p_value: Option<AdjustedPValue>,
    /// `mean_t - mean_c` with its confidence interval.
    pub absolute_lift: Interval,
    /// `(mean_t - mean_c) / mean_c` with a delta-method interval, or the
    /// reason it is undefined (control mean 0).
    pub relative_lift: Outcome<Interval>,
}

/// `true` when every value is finite.
pub(crate) fn all_finite(values: &[f64]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// The outcome used when a valid computation would leave double range.
pub(crate) fn numerical_limit<T>() -> Outcome<T> {
    Outcome::insufficient(
        InsufficientReason::NumericalLimit,
        "inputs are too extreme for double-precision arithmetic",
    )
}

/// The outcome used when a variant has fewer than the minimum users.
pub(crate) fn too_few_users<T>(n_control: u64, n_treatment: u64) -> Outcome<T> {
    Outcome::insufficient(
        InsufficientReason::TooFewUsers,
        format!(
            "need at least {MIN_USERS_PER_VARIANT} users per variant \
             (control {n_control}, treatment {n_treatment})"
        ),
    )
}

/// Delta-method interval for the relative lift `r = m_t/m_c - 1`:
/// `Var(r) ≈ se_t²/m_c² + m_t²·se_c²/m_c⁴`, interval `r ± z_{(1+c)/2}·sqrt(Var)`.
///
/// Returns [`InsufficientReason::ZeroControlMean`] when `mean_c = 0`.
///
/// # Errors
/// [`StatsError::InvalidConfidence`] or [`StatsError::InvalidArgument`] for
/// non-finite inputs or negative standard errors.
pub fn relative_lift_delta_method(
    mean_control: f64,
    se_control: f64,
    mean_treatment: f64,
    se_treatment: f64,
    confidence: f64,
) -> Result<Outcome<Interval>, StatsError> {
    check_confidence(confidence)?;
    if !all_finite(&[mean_control, se_control, mean_treatment, se_treatment])
        || se_control < 0.0
        || se_treatment < 0.0
    {
        return Err(StatsError::InvalidArgument(
            "means and standard errors must be finite, standard errors non-negative".into(),
        ));
    }
    if mean_control == 0.0 {
        return Ok(Outcome::insufficient(
            InsufficientReason::ZeroControlMean,
            "control mean is 0, so the relative lift is undefined",
        ));
    }
    let ratio = mean_treatment / mean_control;
    let estimate = ratio - 1.0;
    let std_error = (se_treatment / mean_control).hypot(ratio * se_control / mean_control);
    let half = normal_quantile(0.5 * (1.0 + confidence)) * std_error;
    let interval = Interval {
        method: Method::DeltaMethodNormal,
        estimate,
        lower: estimate - half,
        upper: estimate + half,
        std_error,
        confidence,
    };
    if !all_finite(&[estimate, std_error, interval.lower, interval.upper]) {
        return Ok(numerical_limit());
    }
    Ok(Outcome::Computed(interval))
}

/// Welch's unequal-variance t-test of `treatment - control` for a value
/// metric, with a Welch t interval for the absolute lift and a delta-method
/// interval for the relative lift.
///
/// Not enough data: fewer than [`MIN_USERS_PER_VARIANT`] users in a
/// variant, or both sample variances zero.
///
/// # Errors
/// [`StatsError`] for an invalid confidence level or impossible sums.
pub fn welch_t_test(
    control: &ValueStats,
    treatment: &ValueStats,
    confidence: f64,
) -> Result<Outcome<FrequentistResult>, StatsError> {
    check_confidence(confidence)?;
    control.validate()?;
    treatment.validate()?;
    let (Some(var_c), Some(var_t), Some(mean_c), Some(mean_t)) = (
        control.variance(),
        treatment.variance(),
        control.mean(),
        treatment.mean(),
    ) else {
        return Ok(too_few_users(control.n, treatment.n));
    };
    let (n_c, n_t) = (control.n as f64, treatment.n as f64);
    let (a, b) = (var_c / n_c, var_t / n_t);
    let se2 = a + b;
    if se2 <= 0.0 {
        return Ok(Outcome::insufficient(
            InsufficientReason::ZeroVariance,
            "every user in both variants has the same value; no variance to test against",
        ));
    }
    let std_error = se2.sqrt();
    let diff = mean_t - mean_c;
    let statistic = diff / std_error;
    // Welch–Satterthwaite: (a + b)² / (a²/(n_c-1) + b²/(n_t-1)), written in
    // shares of a + b so that nothing overflows.
    let (ra, rb) = (a / se2, b / se2);
    let df = 1.0 / (ra * ra / (n_c - 1.0) + rb * rb / (n_t - 1.0));
    let p_value = student_t_two_sided_p(statistic, df).clamp(0.0, 1.0);
    let half = student_t_quantile(0.5 * (1.0 + confidence), df) * std_error;
    let absolute_lift = Interval {
        method: Method::WelchTInterval,
        estimate: diff,
        lower: diff - half,
        upper: diff + half,
        std_error,
        confidence,
    };
    if !all_finite(&[
        statistic,
        df,
        p_value,
        absolute_lift.lower,
        absolute_lift.upper,
    ]) {
        return Ok(numerical_limit());
    }
    let relative_lift = relative_lift_delta_method(mean_c, a.sqrt(), mean_t, b.sqrt(), confidence)?;
    Ok(Outcome::Computed(FrequentistResult {
        method: Method::WelchTTest,
        statistic,
        degrees_of_freedom: Some(df),
        std_error,
        p_value,
        adjusted_p_value: None,
        absolute_lift,
        relative_lift,
    }))
}

/// Two-proportion z-test of `rate_t - rate_c`: the statistic uses the
/// pooled standard error `sqrt(p̄(1-p̄)(1/n_c + 1/n_t))` (the null hypothesis
/// is equal rates); the interval is the unpooled Wald interval
/// `diff ± z·sqrt(p_c(1-p_c)/n_c + p_t(1-p_t)/n_t)`; the relative lift uses
/// the delta method with the same unpooled standard errors.
///
/// Not enough data: fewer than [`MIN_USERS_PER_VARIANT`] users in a
/// variant, or a pooled rate of exactly 0 or 1.
///
/// # Errors
/// [`StatsError`] for an invalid confidence level or `conversions > n`.
pub fn two_proportion_z_test(
    control: &ConversionStats,
    treatment: &ConversionStats,
    confidence: f64,
) -> Result<Outcome<FrequentistResult>, StatsError> {
    check_confidence(confidence)?;
    control.validate()?;
    treatment.validate()?;
    if control.n < MIN_USERS_PER_VARIANT || treatment.n < MIN_USERS_PER_VARIANT {
        return Ok(too_few_users(control.n, treatment.n));
    }
    let (n_c, n_t) = (control.n as f64, treatment.n as f64);
    let p_c = control.conversions as f64 / n_c;
    let p_t = treatment.conversions as f64 / n_t;
    let pooled = (control.conversions + treatment.conversions) as f64 / (n_c + n_t);
    let pooled_se = (pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)).sqrt();
    if pooled_se <= 0.0 {
        return Ok(Outcome::insufficient(
            InsufficientReason::ZeroVariance,
            if pooled == 0.0 {
                "no user converted in either variant"
            } else {
                "every user converted in both variants"
            },
        ));
    }
    let diff = p_t - p_c;
    let statistic = diff / pooled_se;
    let p_value = (2.0 * normal_sf(statistic.abs())).clamp(0.0, 1.0);
    let se_c = (p_c * (1.0 - p_c) / n_c).sqrt();
    let se_t = (p_t * (1.0 - p_t) / n_t).sqrt();
    let unpooled_se = se_c.hypot(se_t);
    let half = normal_quantile(0.5 * (1.0 + confidence)) * unpooled_se;
    let absolute_lift = Interval {
        method: Method::WaldUnpooled,
        estimate: diff,
        lower: diff - half,
        upper: diff + half,
        std_error: unpooled_se,
        confidence,
    };
    if !all_finite(&[statistic, p_value, absolute_lift.lower, absolute_lift.upper]) {
        return Ok(numerical_limit());
    }
    let relative_lift = relative_lift_delta_method(p_c, se_c, p_t, se_t, confidence)?;
    Ok(Outcome::Computed(FrequentistResult {
        method: Method::TwoProportionZTestPooled,
        statistic,
        degrees_of_freedom: None,
        std_error: pooled_se,
        p_value,
        adjusted_p_value: None,
        absolute_lift,
        relative_lift,
    }))
}
