//! Bayesian comparisons: chance to beat control and expected loss.

use serde::{Deserialize, Serialize};

use crate::error::StatsError;
use crate::frequentist::{all_finite, numerical_limit, too_few_users};
use crate::outcome::{InsufficientReason, Method, Outcome};
use crate::special::{BetaDist, beta_prob_greater, normal_cdf, normal_pdf, normal_sf};
use crate::summary::{ConversionStats, MIN_USERS_PER_VARIANT, ValueStats};

/// Shape parameters of the Beta prior used for conversion rates: Beta(1, 1),
/// the uniform distribution on `[0, 1]`.
pub const CONVERSION_PRIOR: (f64, f64) = (1.0, 1.0);

/// The prior a Bayesian result was computed with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Prior {
    /// Beta(alpha, beta) on each variant's conversion rate.
    Beta {
        /// First shape parameter (prior "successes").
        alpha: f64,
        /// Second shape parameter (prior "failures").
        beta: f64,
    },
    /// Flat, improper prior on each variant's mean.
    FlatImproper,
}

/// Bayesian comparison of treatment against control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesResult {
    /// [`Method::BetaBinomialQuadrature`] or
    /// [`Method::NormalApproximationFlatPrior`].
    pub method: Method,
    /// Prior on each variant's mean or rate.
    pub prior: Prior,
    /// Posterior probability `P(mean_t > mean_c)`.
    pub chance_to_beat_control: f64,
    /// Risk of choosing treatment: `E[max(mean_c - mean_t, 0)]`, in metric units.
    pub expected_loss: f64,
    /// Risk of keeping control: `E[max(mean_t - mean_c, 0)]`, in metric units.
    pub expected_loss_control: f64,
    /// Posterior mean of `mean_t - mean_c`.
    pub expected_lift: f64,
}

/// Beta-Binomial comparison of conversion rates with independent Beta(1, 1)
/// priors: posterior `Beta(1 + conversions, 1 + n - conversions)` per
/// variant. With `C`, `T` the posteriors of control and treatment:
///
/// * chance to beat control `P(T > C) = ∫ f_C(x) P(T > x) dx`;
/// * expected loss `E[max(C - T, 0)] = E[C]·P(C⁺ > T) - E[T]·P(C > T⁺)`,
///   where `X⁺` is `X` with α increased by one (because `x·f_X(x) =
///   E[X]·f_{X⁺}(x)`); symmetrically for the control's expected loss.
///
/// Each probability is a one-dimensional integral evaluated by adaptive
/// Gauss–Kronrod quadrature (deterministic; agrees with SciPy to ~1e-12).
///
/// Not enough data: fewer than [`MIN_USERS_PER_VARIANT`] users in a variant.
///
/// # Errors
/// [`StatsError::InvalidStats`] when `conversions > n`.
pub fn bayes_conversion(
    control: &ConversionStats,
    treatment: &ConversionStats,
) -> Result<Outcome<BayesResult>, StatsError> {
    control.validate()?;
    treatment.validate()?;
    if control.n < MIN_USERS_PER_VARIANT || treatment.n < MIN_USERS_PER_VARIANT {
        return Ok(too_few_users(control.n, treatment.n));
    }
    let (alpha0, beta0) = CONVERSION_PRIOR;
    let posterior = |s: &ConversionStats| BetaDist {
        alpha: alpha0 + s.conversions as f64,
        beta: beta0 + (s.n - s.conversions) as f64,
    };
    let c = posterior(control);
    let t = posterior(treatment);
    let chance = beta_prob_greater(&t, &c);
    let loss_treatment = (c.mean() * beta_prob_greater(&c.size_biased(), &t)
        - t.mean() * beta_prob_greater(&c, &t.size_biased()))
    .max(0.0);
    let loss_control = (t.mean() * beta_prob_greater(&t.size_biased(), &c)
        - c.mean() * beta_prob_greater(&t, &c.size_biased()))
    .max(0.0);
    let result = BayesResult {
        method: Method::BetaBinomialQuadrature,
        prior: Prior::Beta {
            alpha: alpha0,
            beta: beta0,
        },
        chance_to_beat_control: chance,
        expected_loss: loss_treatment,
        expected_loss_control: loss_control,
        expected_lift: t.mean() - c.mean(),
    };
    if !all_finite(&[chance, loss_treatment, loss_control]) {
        return Ok(numerical_limit());
    }
    Ok(Outcome::Computed(result))
}

/// Bayesian comparison of means with a flat (improper) prior and the normal
/// approximation: each posterior mean is `N(x̄, s²/n)` (sample variance
/// plugged in), so `Δ = mean_t - mean_c ~ N(d, σ²)` with `d = x̄_t - x̄_c`,
/// `σ² = s_c²/n_c + s_t²/n_t`. Then, with `z = d/σ`,
///
/// * chance to beat control `Φ(z)`;
/// * expected loss `E[max(-Δ, 0)] = σ·φ(z) - d·Φ(-z)`;
/// * control's expected loss `E[max(Δ, 0)] = σ·φ(z) + d·Φ(z)`.
///
/// Not enough data: fewer than [`MIN_USERS_PER_VARIANT`] users in a
/// variant, or `σ = 0`.
///
/// # Errors
/// [`StatsError::InvalidStats`] for impossible sums.
pub fn bayes_value(
    control: &ValueStats,
    treatment: &ValueStats,
) -> Result<Outcome<BayesResult>, StatsError> {
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
    let sigma2 = var_c / control.n as f64 + var_t / treatment.n as f64;
    if sigma2 <= 0.0 {
        return Ok(Outcome::insufficient(
            InsufficientReason::ZeroVariance,
            "every user in both variants has the same value; the posterior is degenerate",
        ));
    }
    let sigma = sigma2.sqrt();
    let d = mean_t - mean_c;
    let z = d / sigma;
    let density = sigma * normal_pdf(z);
    let chance = normal_cdf(z);
    let loss_treatment = (density - d * normal_sf(z)).max(0.0);
    let loss_control = (density + d * normal_cdf(z)).max(0.0);
    if !all_finite(&[z, chance, loss_treatment, loss_control]) {
        return Ok(numerical_limit());
    }
    Ok(Outcome::Computed(BayesResult {
        method: Method::NormalApproximationFlatPrior,
        prior: Prior::FlatImproper,
        chance_to_beat_control: chance,
        expected_loss: loss_treatment,
        expected_loss_control: loss_control,
        expected_lift: d,
    }))
}
