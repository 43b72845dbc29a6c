//! The SDK API: ruleset sync and batched ingestion of exposures and metric events.

use chrono::{DateTime, Utc};
use http::{HeaderValue, StatusCode, header};
use optifork_storage::{BatchOutcome, Event, Exposure};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{Call, Reply};
use crate::web::{ApiError, bytes_response, etag, json_response, parse_etag};

/// GET /sdk/v1/ruleset: the environment's ruleset, `ETag: "<version>"`. `If-None-Match` with
/// the current version → 304. The body is serialized once per version, and gzip-compressed
/// once when a client accepts it.
pub async fn ruleset(call: Call) -> Reply {
    let env = call.environment()?;
    let snap = call.state.snapshot(&env)?;
    let tag = etag(snap.version);
    let not_modified = call.req.header("if-none-match").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim() == "*" || parse_etag(t.trim()) == Some(snap.version))
    });
    let mut resp = if not_modified {
        let mut r = bytes_response(
            StatusCode::NOT_MODIFIED,
            "application/json",
            bytes::Bytes::new(),
        );
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    } else if accepts_gzip(call.req.header("accept-encoding")) {
        let mut r = bytes_response(StatusCode::OK, "application/json", snap.gzip().clone());
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        bytes_response(StatusCode::OK, "application/json", snap.json.clone())
    };
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn accepts_gzip(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !q_zero
        })
    })
}

#[derive(Deserialize)]
struct ExposureIn {
    #[serde(default, alias = "flag_name")]
    flag: Option<String>,
    #[serde(default, alias = "experiment_name")]
    experiment: Option<String>,
    user_id: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default, alias = "user_context")]
    context: Option<Json>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct ExposureBatch {
    #[serde(default)]
    batch_id: Option<String>,
    exposures: Vec<ExposureIn>,
}

#[derive(Deserialize)]
struct EventIn {
    #[serde(alias = "event_name", alias = "name")]
    event: String,
    user_id: String,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    properties: Option<Json>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct EventBatch {
    #[serde(default)]
    batch_id: Option<String>,
    events: Vec<EventIn>,
}

fn check_batch(call: &Call, len: usize, batch_id: Option<&str>) -> Result<(), ApiError> {
    let max = call.state.settings.max_batch;
    if len > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("a batch holds at most {max} items; this one has {len}"),
        ));
    }
    if batch_id.is_some_and(|b| b.is_empty() || b.len() > 128) {
        return Err(
            ApiError::bad_request("invalid_body", "batch_id must be 1 to 128 characters")
                .with_field("$.batch_id"),
        );
    }
    Ok(())
}

fn batch_reply(outcome: BatchOutcome, len: usize) -> Reply {
    let (accepted, duplicate) = match outcome {
        BatchOutcome::Inserted(n) => (n, false),
        BatchOutcome::Duplicate => (len, true),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"accepted": accepted, "duplicate": duplicate}),
    ))
}

/// POST /sdk/v1/exposures `{"batch_id", "exposures": [{"flag"|"experiment", "user_id",
/// "variant", "enabled", "context", "timestamp"}]}`. Answers once the batch is durable; a
/// repeated `batch_id` is acknowledged without writing twice.
pub async fn exposures(call: Call) -> Reply {
    let env = call.environment()?;
    let batch: ExposureBatch = call.req.json()?;
    check_batch(&call, batch.exposures.len(), batch.batch_id.as_deref())?;
    let now = Utc::now();
    let mut rows = Vec::with_capacity(batch.exposures.len());
    for (i, e) in batch.exposures.into_iter().enumerate() {
        if e.flag.is_none() && e.experiment.is_none() {
            return Err(ApiError::bad_request(
                "invalid_body",
                "an exposure names a flag or an experiment",
            )
            .with_field(format!("$.exposures[{i}]")));
        }
        if e.user_id.is_empty() {
            return Err(
                ApiError::bad_request("invalid_body", "user_id must not be empty")
                    .with_field(format!("$.exposures[{i}].user_id")),
            );
        }
        rows.push(Exposure {
            environment: env.clone(),
            flag_name: e.flag,
            experiment_name: e.experiment,
            user_id: e.user_id,
            variant: e.variant,
            enabled: e.enabled,
            user_context: e.context,
            timestamp: e.timestamp.unwrap_or(now),
        });
    }
    let outcome = call
        .state
        .storage
        .insert_exposures(batch.batch_id.as_deref(), &rows)
        .await?;
    batch_reply(outcome, rows.len())
}

/// POST /sdk/v1/events `{"batch_id", "events": [{"event", "user_id", "value", "properties",
/// "timestamp"}]}`, durable and idempotent like exposures.
pub async fn events(call: Call) -> Reply {
    let env = call.environment()?;
    let batch: EventBatch = call.req.json()?;
    check_batch(&call, batch.events.len(), batch.batch_id.as_deref())?;
    let now = Utc::now();
    let mut rows = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.into_iter().enumerate() {
        if e.event.is_empty() || e.user_id.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_body",
                "event and user_id must not be empty",
            )
            .with_field(format!("$.events[{i}]")));
        }
        if e.value.is_some_and(|v| !v.is_finite()) {
            return Err(
                ApiError::bad_request("invalid_body", "value must be a finite number")
                    .with_field(format!("$.events[{i}].value")),
            );
        }
        rows.push(Event {
            environment: env.clone(),
            event_name: e.event,
            user_id: e.user_id,
            value: e.value,
            properties: e.properties,
            timestamp: e.timestamp.unwrap_or(now),
        });
    }
    let outcome = call
        .state
        .storage
        .insert_events(batch.batch_id.as_deref(), &rows)
        .await?;
    batch_reply(outcome, rows.len())
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_is_used_only_when_accepted() {
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("br;q=1.0, gzip;q=0.8")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
