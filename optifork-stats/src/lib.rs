//! # optifork-stats
//!
//! Experiment statistics for OptiFork's `GET /experiments/{name}/results`:
//! pure functions (no I/O, no async) from per-variant sufficient statistics
//! to serializable results. Every number carries the [`Method`] that
//! produced it, and nothing ever returns NaN or infinity: when the data
//! cannot support a computation the result is
//! [`Outcome::NotEnoughData`] with a machine-readable
//! [`InsufficientReason`] and a human-readable `detail`
//! (`{"status": "not_enough_data", "reason": "zero_variance", ...}`).
//! Invalid input (NaN sums, more conversions than users, a confidence level
//! outside (0, 1)) is a [`StatsError`] instead. Serialized results never
//! contain `null`: undefined optional fields are omitted.
//!
//! ## Inputs
//!
//! * [`ConversionStats`] `{ n, conversions }`: users exposed, users converted.
//! * [`ValueStats`] `{ n, sum, sum_sq }`: users exposed, sum and sum of
//!   squares of per-user values (users without events count as 0).
//!
//! One variant is the control; each other variant is compared with it by
//! [`compare`], which bundles everything below for one metric. Every
//! comparison needs at least [`MIN_USERS_PER_VARIANT`] = 2 users in each
//! variant (a sample variance needs two observations).
//!
//! ## Per-variant summary ([`VariantSummary`])
//!
//! * Value metrics ([`Method::SampleMoments`]): mean `x̄ = sum/n`, sample
//!   variance `s² = (sum_sq - sum·x̄)/(n - 1)`, standard error `sqrt(s²/n)`.
//!   A difference `sum_sq - sum·x̄ <= 1e-10·sum_sq`
//!   ([`ZERO_VARIANCE_TOLERANCE`], a coefficient of variation below 1e-5)
//!   is rounding noise of the aggregates and gives variance exactly 0.
//! * Conversion metrics ([`Method::BernoulliProportion`]): rate
//!   `p = conversions/n`, sample variance `n/(n-1)·p(1-p)` (the `n - 1`
//!   variance of the 0/1 values), standard error `sqrt(p(1-p)/n)` (the one
//!   used by the z-test's interval and by the Bayesian and sequential
//!   methods).
//!
//! ## Frequentist tests ([`FrequentistResult`])
//!
//! Value metrics, [`welch_t_test`]: `d = x̄_t - x̄_c`,
//! `se = sqrt(s_c²/n_c + s_t²/n_t)`, `t = d/se`, Welch–Satterthwaite
//! `df = se⁴ / ((s_c²/n_c)²/(n_c-1) + (s_t²/n_t)²/(n_t-1))`, two-sided
//! `p = 2·P(T_df > |t|)`, interval `d ± t_{(1+c)/2, df}·se`
//! ([`Method::WelchTInterval`]). Not enough data when both variances are 0.
//!
//! Conversion metrics, [`two_proportion_z_test`]: `d = p_t - p_c`; the
//! statistic uses the **pooled** standard error
//! `sqrt(p̄(1-p̄)(1/n_c + 1/n_t))`, `p̄ = (x_c + x_t)/(n_c + n_t)` (the
//! standard error under the null of equal rates; this is
//! `statsmodels.stats.proportion.proportions_ztest`), with
//! `p = 2·(1 - Φ(|z|))`; the interval is the **unpooled** Wald interval
//! `d ± z_{(1+c)/2}·sqrt(p_c(1-p_c)/n_c + p_t(1-p_t)/n_t)`
//! ([`Method::WaldUnpooled`], statsmodels' `confint_proportions_2indep`
//! with `method="wald"`), because away from the null the rates differ.
//! Not enough data when `p̄` is 0 or 1. (The Wald interval has zero width
//! when both rates are 0 or 1.)
//!
//! Relative lift, [`relative_lift_delta_method`] ([`Method::DeltaMethodNormal`]):
//! `r = (m_t - m_c)/m_c` with
//! `Var(r) ≈ se_t²/m_c² + m_t²·se_c²/m_c⁴` (first-order Taylor expansion of
//! `m_t/m_c`, independent variants) and interval `r ± z_{(1+c)/2}·sqrt(Var)`
//! (normal quantile: the delta method is itself asymptotic). Not enough data
//! when `m_c = 0`. For a negative control mean the sign of `r` is opposite
//! to that of the absolute lift.
//!
//! The default confidence level is 0.95; every function takes it as an
//! argument.
//!
//! ## Bayesian ([`BayesResult`])
//!
//! Expected loss is the risk of choosing treatment,
//! `E[max(mean_c - mean_t, 0)]` in metric units (`expected_loss`); the
//! risk of keeping control `E[max(mean_t - mean_c, 0)]` is reported too
//! (`expected_loss_control`). Their difference is `E[mean_c - mean_t]`.
//!
//! * Conversions, [`bayes_conversion`]: independent **Beta(1, 1)** (uniform)
//!   priors ([`CONVERSION_PRIOR`]), posteriors
//!   `Beta(1 + conversions, 1 + n - conversions)`. Chance to beat control
//!   `P(T > C) = ∫ f_C(x)·P(T > x) dx`; expected loss
//!   `E[C]·P(C⁺ > T) - E[T]·P(C > T⁺)`, where `X⁺` has α increased by 1
//!   (since `x·f_X(x) = E[X]·f_{X⁺}(x)`). Each probability is computed
//!   deterministically by adaptive Gauss–Kronrod (7, 15) quadrature over
//!   `[0, 1]`, split at `mean ± k·sd` of both posteriors so narrow
//!   posteriors are never missed; agrees with SciPy and the exact
//!   closed-form sum to about 1e-12. No Monte Carlo, so results are
//!   reproducible bit for bit.
//! * Values, [`bayes_value`]: **flat (improper) prior** on each mean and the
//!   normal approximation to its posterior, `N(x̄, s²/n)` with the sample
//!   variance plugged in. Then `Δ ~ N(d, σ²)`, `σ² = s_c²/n_c + s_t²/n_t`,
//!   `z = d/σ`: chance to beat `Φ(z)`, expected loss
//!   `σφ(z) - d·Φ(-z)`, control's expected loss `σφ(z) + d·Φ(z)`.
//!
//! ## Sample-ratio mismatch ([`srm_check`])
//!
//! Pearson chi-square goodness of fit of the exposure counts against
//! `total · weight/Σweights` (weights are percentages or any positive
//! numbers), `k - 1` degrees of freedom; `warning` when
//! `p < 0.001` ([`SRM_P_VALUE_THRESHOLD`]).
//!
//! ## Multiple comparisons
//!
//! [`holm`] (family-wise error rate) and [`benjamini_hochberg`] (false
//! discovery rate) take a slice of p-values and return adjusted ones in the
//! same order, identical to statsmodels' `multipletests`. [`adjust_p_values`]
//! records the [`Correction`] applied ([`Correction::None`] for a single
//! p-value), and [`apply_correction`] adjusts every computed p-value of a
//! set of [`Comparison`]s (all variants × metrics) as one family and stores
//! the [`AdjustedPValue`] (with correction and family size) in each result.
//!
//! ## Sequential, always-valid intervals ([`sequential_interval`])
//!
//! For teams who look at results every day. The normal-mixture boundary of
//! Howard et al. (2021), in the asymptotic form of Waudby-Smith et al.
//! (2023, eq. 9) used by GrowthBook, equivalent to inverting the mSPRT of
//! Johari et al. (Optimizely):
//!
//! `d ± sqrt(V · 2(Nρ² + 1)/(Nρ²) · ln(sqrt(Nρ² + 1)/α))`,
//!
//! with `V` the variance of `d` (unpooled, as in the Wald/Welch interval),
//! `N = n_c + n_t`, `α = 1 - confidence`, and mixture variance
//! `ρ² = (-2 ln α + ln(1 - 2 ln α)) / N*`. The **tuning parameter** `N*`
//! ([`SequentialOptions::tuning_sample_size`], default 5000 as in
//! GrowthBook) is the total sample size at which the interval is tightest;
//! set it near the expected final sample size. The interval is wider than
//! the fixed-horizon one but its coverage holds at every look. The
//! per-look mSPRT p-value `min(1, 1/Λ)` is reported; the always-valid
//! p-value is its running minimum over looks.
//!
//! ## Numerical notes
//!
//! Normal and chi-square distributions and `ln Γ` come from `statrs`. The
//! Student t tail, the t quantile and the regularized incomplete beta
//! function are implemented in [`special`], because `statrs` 0.19 loses
//! accuracy at experiment-sized samples (its t quantile is wrong by 0.13 at
//! 1e7 degrees of freedom); see that module. All reference values in
//! `tests/reference/expected.json` come from SciPy/statsmodels
//! (`tests/reference/generate.py`) and are matched to 1e-6.

mod bayes;
mod compare;
mod error;
mod frequentist;
mod multiple;
mod outcome;
mod sequential;
pub mod special;
mod srm;
mod summary;

pub use bayes::{BayesResult, CONVERSION_PRIOR, Prior, bayes_conversion, bayes_value};
pub use compare::{CompareOptions, Comparison, Metric, MetricType, SequentialOptions, compare};
pub use error::StatsError;
pub use frequentist::{
    FrequentistResult, Interval, relative_lift_delta_method, two_proportion_z_test, welch_t_test,
};
pub use multiple::{
    AdjustedPValue, AdjustedPValues, Correction, adjust_p_values, apply_correction,
    benjamini_hochberg, holm,
};
pub use outcome::{InsufficientReason, Method, NotEnoughData, Outcome};
pub use sequential::{
    DEFAULT_SEQUENTIAL_TUNING, SequentialInterval, sequential_interval, sequential_lift,
};
pub use srm::{SRM_P_VALUE_THRESHOLD, SrmResult, srm_check};
pub use summary::{
    ConversionStats, MIN_USERS_PER_VARIANT, ValueStats, VariantSummary, ZERO_VARIANCE_TOLERANCE,
};
