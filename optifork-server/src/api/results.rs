//! `GET /experiments/{name}/results`: what happened in an experiment, with statistics a data
//! scientist would trust.
//!
//! An experiment declares its metrics:
//!
//! ```json
//! "metrics": [
//!   {"name": "purchase_rate", "event": "purchase", "type": "conversion"},
//!   {"name": "revenue", "event": "purchase", "type": "sum"},
//!   {"name": "order_value", "event": "purchase", "type": "mean"},
//!   {"name": "pageviews", "event": "pageview", "type": "count"}
//! ]
//! ```
//!
//! Per user, from the events after their first exposure: `conversion` is whether they fired
//! the event; `sum` the sum of its values (0 without events); `count` how many times they fired
//! it (0 without events); `mean` the mean of its values (users without valued events are left
//! out of that metric). Each variant is compared with control on each metric by
//! `optifork-stats` (frequentist test with absolute and relative lift, Bayesian chance to beat
//! control and expected loss, optionally an always-valid sequential interval), p-values are
//! corrected across the family of comparisons, and a sample-ratio-mismatch test checks the
//! users per variant against `traffic_splits`. Users exposed to more than one variant are
//! reported and excluded; events before exposure are reported and ignored.
//!
//! Query parameters: `confidence` (default 0.95), `correction` (`holm`, the default;
//! `benjamini_hochberg`; `none`), `sequential` (`true` adds always-valid intervals) and
//! `tuning` (the sequential tuning sample size, default 5000).

use optifork_stats::{
    CompareOptions, Comparison, ConversionStats, Correction, DEFAULT_SEQUENTIAL_TUNING,
    SequentialOptions, ValueStats, apply_correction, compare, srm_check,
};
use optifork_storage::{EntityKind, EntityRef, MetricAggregate};
use serde_json::{Value as Json, json};

use super::{Call, Reply};
use crate::web::{ApiError, ok};

/// Kinds of metric an experiment can declare.
pub const METRIC_TYPES: &[&str] = &["conversion", "sum", "mean", "count"];

/// Checks an experiment's `metrics` declaration; errors name the field.
pub fn check_metrics(metrics: &Json) -> Result<(), ApiError> {
    let bad = |path: String, msg: &str| {
        Err(ApiError::bad_request("invalid_metric", msg).with_field(path))
    };
    let Some(items) = metrics.as_array() else {
        return bad(
            "$.metrics".into(),
            "metrics must be an array of {name, event, type}",
        );
    };
    let mut names = Vec::new();
    for (i, m) in items.iter().enumerate() {
        let at = |f: &str| format!("$.metrics[{i}]{f}");
        let Some(obj) = m.as_object() else {
            return bad(at(""), "a metric is an object {name, event, type}");
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["name", "event", "type", "description"].contains(&k.as_str()))
        {
            return bad(
                at(&format!(".{k}")),
                "metrics have the fields name, event, type and description",
            );
        }
        match obj.get("name").and_then(Json::as_str) {
            Some(n) if !n.is_empty() && n.len() <= 128 => {
                if names.contains(&n) {
                    return bad(at(".name"), "metric names must be unique");
                }
                names.push(n);
            }
            _ => return bad(at(".name"), "a metric needs a name (1 to 128 characters)"),
        }
        if obj
            .get("event")
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            return bad(
                at(".event"),
                "a metric needs the name of the event it counts",
            );
        }
        if !obj
            .get("type")
            .and_then(Json::as_str)
            .is_some_and(|t| METRIC_TYPES.contains(&t))
        {
            return bad(
                at(".type"),
                "type must be one of conversion, sum, mean, count",
            );
        }
    }
    Ok(())
}

/// How results are computed: confidence, correction, sequential intervals.
pub struct Params {
    options: CompareOptions,
    correction: Correction,
}

/// Reads `confidence`, `correction`, `sequential` and `tuning` from query parameters; errors
/// name the parameter.
pub fn params(query: &[(String, String)]) -> Result<Params, ApiError> {
    let query_param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let confidence = match query_param("confidence") {
        None => 0.95,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|c| *c > 0.5 && *c < 1.0)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    "confidence must be a number between 0.5 and 1",
                )
                .with_field("confidence")
            })?,
    };
    let correction = match query_param("correction") {
        None | Some("holm") => Correction::Holm,
        Some("benjamini_hochberg" | "bh") => Correction::BenjaminiHochberg,
        Some("none") => Correction::None,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                "correction must be holm, benjamini_hochberg or none",
            )
            .with_field("correction"));
        }
    };
    let sequential = match query_param("sequential") {
        None | Some("false") => None,
        Some("true") => {
            let tuning = match query_param("tuning") {
                None => DEFAULT_SEQUENTIAL_TUNING,
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|t| *t >= 1.0 && t.is_finite())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_parameter",
                            "tuning must be a number of users (1 or more)",
                        )
                        .with_field("tuning")
                    })?,
            };
            Some(SequentialOptions {
                tuning_sample_size: tuning,
            })
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                "sequential must be true or false",
            )
            .with_field("sequential"));
        }
    };
    Ok(Params {
        options: CompareOptions {
            confidence,
            sequential,
        },
        correction,
    })
}

fn stats_error(e: optifork_stats::StatsError) -> ApiError {
    ApiError::internal(format!("statistics: {e}"))
}

/// GET /experiments/{name}/results
pub async fn results(call: Call) -> Reply {
    let env = call.environment()?;
    let params = params(&call.req.query)?;
    Ok(ok(
        &compute(&call.state, &env, call.param(0), &params).await?
    ))
}

/// An experiment's results as JSON (shared by the API and the admin UI's results page).
pub async fn compute(
    state: &crate::state::AppState,
    env: &str,
    name: &str,
    params: &Params,
) -> Result<Json, ApiError> {
    let name = name.to_owned();
    let record = state
        .storage
        .get(EntityKind::Experiment, env, &EntityRef::Name(name.clone()))
        .await?;
    let body = &record.body;
    let variants: Vec<String> = body["variants"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.as_str().or_else(|| v["name"].as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let control = body["control"].as_str().unwrap_or("control").to_owned();
    let metrics: Vec<Json> = body["metrics"].as_array().cloned().unwrap_or_default();
    let events: Vec<String> = {
        let mut e: Vec<String> = metrics
            .iter()
            .filter_map(|m| m["event"].as_str().map(str::to_owned))
            .collect();
        e.sort();
        e.dedup();
        e
    };
    let agg = state
        .storage
        .experiment_aggregates(env, &name, &events)
        .await?;

    // Users per declared variant (undeclared variants are reported, not analysed).
    let users_of = |v: &str| {
        agg.variants
            .iter()
            .find(|x| x.variant == v)
            .map_or(0, |x| x.users)
    };
    let exposures_of = |v: &str| {
        agg.variants
            .iter()
            .find(|x| x.variant == v)
            .map_or(0, |x| x.exposures)
    };
    let weights: Vec<f64> = match body["traffic_splits"].as_object() {
        Some(splits) => variants
            .iter()
            .map(|v| splits.get(v).and_then(Json::as_f64).unwrap_or(0.0))
            .collect(),
        None => vec![1.0; variants.len()],
    };
    let total_weight: f64 = weights.iter().sum();
    let variant_rows: Vec<Json> = variants
        .iter()
        .zip(&weights)
        .map(|(v, w)| {
            json!({
                "variant": v,
                "is_control": *v == control,
                "users": users_of(v),
                "exposures": exposures_of(v),
                "expected_share": if total_weight > 0.0 { w / total_weight } else { 0.0 },
            })
        })
        .collect();
    let undeclared: Vec<Json> = agg
        .variants
        .iter()
        .filter(|x| !variants.contains(&x.variant))
        .map(|x| json!({"variant": x.variant, "users": x.users, "exposures": x.exposures}))
        .collect();
    let counts: Vec<u64> = variants
        .iter()
        .map(|v| u64::try_from(users_of(v)).unwrap_or(0))
        .collect();
    let srm = if variants.len() >= 2 && total_weight > 0.0 {
        serde_json::to_value(srm_check(&counts, &weights).map_err(stats_error)?)
            .map_err(ApiError::internal)?
    } else {
        json!({"status": "not_enough_data", "reason": "too_few_variants", "detail": "a sample-ratio test needs two variants or more"})
    };

    // Comparisons: every non-control variant against control, on every metric.
    let mut comparisons: Vec<Comparison> = Vec::new();
    let mut slots: Vec<(usize, String)> = Vec::new(); // (metric index, variant) per comparison
    let mut metric_rows: Vec<Json> = Vec::new();
    let find = |v: &str, event: &str| -> MetricAggregate {
        agg.metrics
            .iter()
            .find(|m| m.variant == v && m.event == event)
            .cloned()
            .unwrap_or_default()
    };
    for (mi, m) in metrics.iter().enumerate() {
        let event = m["event"].as_str().unwrap_or_default();
        let kind = m["type"].as_str().unwrap_or("conversion");
        let value_stats = |v: &str| -> ValueStats {
            let a = find(v, event);
            let n = u64::try_from(users_of(v)).unwrap_or(0);
            match kind {
                "sum" => ValueStats {
                    n,
                    sum: a.value_sum,
                    sum_sq: a.value_sum_sq,
                },
                "count" => ValueStats {
                    n,
                    sum: a.count_sum,
                    sum_sq: a.count_sum_sq,
                },
                _ => ValueStats {
                    n: u64::try_from(a.valued_users).unwrap_or(0),
                    sum: a.mean_sum,
                    sum_sq: a.mean_sum_sq,
                },
            }
        };
        let conv_stats = |v: &str| ConversionStats {
            n: u64::try_from(users_of(v)).unwrap_or(0),
            conversions: u64::try_from(find(v, event).converted_users).unwrap_or(0),
        };
        let before: i64 = variants
            .iter()
            .map(|v| find(v, event).events_before_exposure)
            .sum();
        for v in variants.iter().filter(|v| **v != control) {
            let c = if kind == "conversion" {
                compare(&conv_stats(&control), &conv_stats(v), &params.options)
            } else {
                compare(&value_stats(&control), &value_stats(v), &params.options)
            }
            .map_err(stats_error)?;
            comparisons.push(c);
            slots.push((mi, v.clone()));
        }
        metric_rows.push(json!({
            "name": m["name"],
            "event": event,
            "type": kind,
            "events_before_exposure_ignored": before,
        }));
    }
    let applied = apply_correction(&mut comparisons, params.correction).map_err(stats_error)?;
    for (row_index, row) in metric_rows.iter_mut().enumerate() {
        let mine: Vec<Json> = slots
            .iter()
            .zip(&comparisons)
            .filter(|((mi, _), _)| *mi == row_index)
            .map(|((_, v), c)| {
                let mut value = serde_json::to_value(c).unwrap_or(Json::Null);
                value["variant"] = json!(v);
                value
            })
            .collect();
        row["comparisons"] = Json::Array(mine);
    }

    Ok(json!({
        "experiment": name,
        "environment": env,
        "is_active": body["is_active"],
        "control": control,
        "confidence": params.options.confidence,
        "variants": variant_rows,
        "undeclared_variants": undeclared,
        "excluded": {
            "multi_variant_users": agg.multi_variant_users,
            "reason": "users exposed to more than one variant are left out of every number",
        },
        "sample_ratio_mismatch": srm,
        "metrics": metric_rows,
        "multiple_comparisons": {
            "correction": applied,
            "comparisons": comparisons.iter().filter(|c| c.frequentist.is_computed()).count(),
        },
        "methods": {
            "conversion": "two-proportion z-test (pooled SE for the test, unpooled Wald interval); Bayesian Beta(1,1) prior",
            "sum, count, mean": "Welch's t-test (Welch–Satterthwaite df); Bayesian normal approximation with a flat prior",
            "relative_lift": "delta method",
            "expected_loss": "E[max(control - treatment, 0)]: what choosing the treatment risks",
            "sample_ratio_mismatch": "Pearson chi-square against traffic_splits; warning below p = 0.001",
            "sequential": "normal-mixture mSPRT always-valid interval (with ?sequential=true)",
        },
    }))
}
