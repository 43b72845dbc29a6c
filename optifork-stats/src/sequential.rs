//! Always-valid (sequential) confidence intervals.

use serde::{Deserialize, Serialize};

use crate::compare::Metric;
use crate::error::{StatsError, check_confidence};
use crate::frequentist::{all_finite, numerical_limit, too_few_users};
use crate::outcome::{InsufficientReason, Method, Outcome};
use crate::summary::MIN_USERS_PER_VARIANT;

/// Default tuning parameter `N*` (total users at which the boundary is
/// tightest), as in GrowthBook.
pub const DEFAULT_SEQUENTIAL_TUNING: f64 = 5000.0;

/// An always-valid confidence interval for the absolute lift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialInterval {
    /// Always [`Method::MsprtNormalMixture`].
    pub method: Method,
    /// Point estimate `mean_t - mean_c`.
    pub estimate: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Standard error of the estimate.
    pub std_error: f64,
    /// Confidence level `1 - α`.
    pub confidence: f64,
    /// Total users `N = n_c + n_t` at this look.
    pub n_total: u64,
    /// Tuning parameter `N*`.
    pub tuning_sample_size: f64,
    /// Mixture variance in standardised units,
    /// `ρ² = (-2 ln α + ln(1 - 2 ln α)) / N*`.
    pub rho_squared: f64,
    /// `min(1, 1/Λ)` for the mSPRT statistic `Λ` at this look; it is `<= α`
    /// exactly when the interval excludes 0. The always-valid p-value is the
    /// running minimum of this number over all looks.
    pub msprt_p_value: f64,
}

/// Always-valid interval from the normal-mixture boundary (Howard et al.
/// 2021; Waudby-Smith et al. 2023, eq. 9; GrowthBook's implementation):
///
/// `estimate ± sqrt(V · 2(Nρ² + 1)/(Nρ²) · ln(sqrt(Nρ² + 1)/α))`
///
/// where `V` is the variance of the estimate, `N` the total sample size,
/// `α = 1 - confidence` and `ρ² = (-2 ln α + ln(1 - 2 ln α)) / N*`. This is
/// the set of effects not rejected by the mSPRT with a `N(0, ρ²σ²)` mixture
/// over the effect (`σ² = N·V`), so it is valid however often one peeks.
///
/// Not enough data: `V = 0` or `n_total < 2·MIN_USERS_PER_VARIANT`.
///
/// # Errors
/// [`StatsError`] for an invalid confidence level, non-finite estimate,
/// negative or non-finite variance, or a tuning parameter that is not
/// positive and finite.
pub fn sequential_interval(
    estimate: f64,
    variance: f64,
    n_total: u64,
    confidence: f64,
    tuning_sample_size: f64,
) -> Result<Outcome<SequentialInterval>, StatsError> {
    check_confidence(confidence)?;
    if !estimate.is_finite() || !variance.is_finite() || variance < 0.0 {
        return Err(StatsError::InvalidArgument(
            "estimate must be finite and variance finite and non-negative".into(),
        ));
    }
    if !(tuning_sample_size.is_finite() && tuning_sample_size > 0.0) {
        return Err(StatsError::InvalidArgument(format!(
            "sequential tuning sample size must be positive, got {tuning_sample_size}"
        )));
    }
    if n_total < 2 * MIN_USERS_PER_VARIANT {
        return Ok(Outcome::insufficient(
            InsufficientReason::TooFewUsers,
            format!("need at least {} users in total", 2 * MIN_USERS_PER_VARIANT),
        ));
    }
    if variance == 0.0 {
        return Ok(Outcome::insufficient(
            InsufficientReason::ZeroVariance,
            "the lift estimate has zero variance",
        ));
    }
    let alpha = 1.0 - confidence;
    let ln_inv_alpha = -alpha.ln();
    let rho_squared = (2.0 * ln_inv_alpha + (1.0 + 2.0 * ln_inv_alpha).ln()) / tuning_sample_size;
    let n_rho2 = n_total as f64 * rho_squared;
    let half =
        (variance * 2.0 * (n_rho2 + 1.0) / n_rho2 * (0.5 * n_rho2.ln_1p() + ln_inv_alpha)).sqrt();
    // ln Λ = -½ ln(1 + Nρ²) + (z²/2) · Nρ²/(1 + Nρ²), z = estimate/sqrt(V).
    let z2 = estimate * estimate / variance;
    let ln_lambda = -0.5 * n_rho2.ln_1p() + 0.5 * z2 * n_rho2 / (1.0 + n_rho2);
    let msprt_p_value = (-ln_lambda.max(0.0)).exp();
    let interval = SequentialInterval {
        method: Method::MsprtNormalMixture,
        estimate,
        lower: estimate - half,
        upper: estimate + half,
        std_error: variance.sqrt(),
        confidence,
        n_total,
        tuning_sample_size,
        rho_squared,
        msprt_p_value,
    };
    if !all_finite(&[half, interval.lower, interval.upper, msprt_p_value]) {
        return Ok(numerical_limit());
    }
    Ok(Outcome::Computed(interval))
}

/// [`sequential_interval`] for `mean_t - mean_c` of a metric, with
/// `V = se_c² + se_t²` from the variant summaries (unpooled) and
/// `N = n_c + n_t`.
///
/// # Errors
/// As [`sequential_interval`], plus invalid statistics.
pub fn sequential_lift<M: Metric>(
    control: &M,
    treatment: &M,
    confidence: f64,
    tuning_sample_size: f64,
) -> Result<Outcome<SequentialInterval>, StatsError> {
    check_confidence(confidence)?;
    let c = control.summary()?;
    let t = treatment.summary()?;
    let (Some(mean_c), Some(se_c), Some(mean_t), Some(se_t)) =
        (c.mean, c.std_error, t.mean, t.std_error)
    else {
        return Ok(too_few_users(c.n, t.n));
    };
    sequential_interval(
        mean_t - mean_c,
        se_c * se_c + se_t * se_t,
        c.n + t.n,
        confidence,
        tuning_sample_size,
    )
}
