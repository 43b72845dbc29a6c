//! OFREP, the OpenFeature Remote Evaluation Protocol: how Go, Java, browsers and any
//! OpenFeature app evaluate OptiFork flags without an OptiFork SDK.
//!
//! Follows <https://github.com/open-feature/protocol> `service/openapi.yaml`:
//!
//! * `POST /ofrep/v1/evaluate/flags/{key}` `{"context": {...}}` → 200
//!   `{"key", "value", "reason", "variant", "metadata"}`; 404 `{"key", "errorCode":
//!   "FLAG_NOT_FOUND", "errorDetails"}`; 400 `{"key", "errorCode": "PARSE_ERROR" |
//!   "INVALID_CONTEXT" | "TARGETING_KEY_MISSING", "errorDetails"}`; 401/403; 429 with
//!   `Retry-After`.
//! * `POST /ofrep/v1/evaluate/flags` (bulk) → 200 `{"flags": [success | failure, ...]}` with an
//!   `ETag` (ruleset version + a hash of the context); `If-None-Match` with it → 304; 400
//!   `{"errorCode", "errorDetails"}` for a bad request.
//! * `GET /ofrep/v1/configuration` → the provider configuration extension.
//!
//! `value` is omitted when the flag has nothing to serve (off without an off variant), so the
//! provider uses the code default (the protocol's ADR 0006). The context's `targetingKey` is the
//! user's key.

use http::{HeaderValue, StatusCode, header};
use optifork_core::{Context, ErrorCode, Evaluation, FlagValue};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};

use super::{Call, Reply};
use crate::ratelimit::Limit;
use crate::web::{bytes_response, json_response};

/// An OFREP error code and its details.
type Failure = (&'static str, String);

/// The request's context (as sent, and as a core context), or an OFREP failure.
fn context(call: &Call) -> Result<(Map<String, Json>, Context), Failure> {
    let body = &call.req.body;
    let doc: Json = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ("PARSE_ERROR", format!("the body is not valid JSON: {e}")))?
    };
    let Json::Object(mut doc) = doc else {
        return Err(("PARSE_ERROR", "the body must be a JSON object".into()));
    };
    let attrs = match doc.remove("context") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(map)) => map,
        Some(_) => return Err(("INVALID_CONTEXT", "context must be a JSON object".into())),
    };
    let ctx = Context::from_json(&Json::Object(attrs.clone()));
    Ok((attrs, ctx))
}

fn success(key: &str, e: &Evaluation<'_>, environment: &str, version: i64) -> Json {
    let mut out = Map::new();
    out.insert("key".into(), json!(key));
    if let Some(v) = e.value {
        out.insert("value".into(), v.to_json());
    }
    out.insert("reason".into(), json!(e.reason.as_str()));
    if let Some(variant) = e.variant {
        out.insert("variant".into(), json!(variant));
    }
    let mut metadata = Map::new();
    metadata.insert("environment".into(), json!(environment));
    metadata.insert("rulesetVersion".into(), json!(version));
    if let Some(i) = e.rule_index {
        metadata.insert("ruleIndex".into(), json!(i));
    }
    out.insert("metadata".into(), Json::Object(metadata));
    Json::Object(out)
}

fn failure(key: Option<&str>, code: &str, details: impl Into<String>) -> Json {
    let mut out = Map::new();
    if let Some(k) = key {
        out.insert("key".into(), json!(k));
    }
    out.insert("errorCode".into(), json!(code));
    out.insert("errorDetails".into(), json!(details.into()));
    Json::Object(out)
}

/// The success or failure entry of one flag, and its HTTP status for single evaluations.
fn evaluate_one(
    key: &str,
    e: &Evaluation<'_>,
    environment: &str,
    version: i64,
) -> (StatusCode, Json) {
    match e.error {
        None => (StatusCode::OK, success(key, e, environment, version)),
        Some(ErrorCode::FlagNotFound) => (
            StatusCode::NOT_FOUND,
            failure(
                Some(key),
                "FLAG_NOT_FOUND",
                format!("flag {key:?} not found in {environment}"),
            ),
        ),
        Some(ErrorCode::TargetingKeyMissing) => (
            StatusCode::BAD_REQUEST,
            failure(
                Some(key),
                "TARGETING_KEY_MISSING",
                "this flag's percentage needs context.targetingKey (or its bucket_by attribute)",
            ),
        ),
        // No type is asked for in OFREP, so a type mismatch cannot happen; be safe anyway.
        Some(ErrorCode::TypeMismatch) => (
            StatusCode::BAD_REQUEST,
            failure(Some(key), "GENERAL", "type mismatch"),
        ),
    }
}

/// POST /ofrep/v1/evaluate/flags/{key}
pub async fn evaluate_flag(call: Call) -> Reply {
    let env = call.environment()?;
    let key = call.param(0).to_owned();
    let (attrs, ctx) = match context(&call) {
        Ok(c) => c,
        Err((code, details)) => {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                &failure(Some(&key), code, details),
            ));
        }
    };
    let user = ctx.key().map_or_else(|| call.client_ip(), str::to_owned);
    call.rate_limit(Limit::Evaluations, &user).await?;
    let snap = call.state.snapshot(&env)?;
    let e = snap.engine.evaluate(&key, &ctx);
    let (status, body) = evaluate_one(&key, &e, &env, snap.version);
    if status == StatusCode::OK
        && let Some(user) = ctx.key()
    {
        call.state.ingest.log(optifork_storage::Exposure {
            environment: env,
            flag_name: Some(key),
            experiment_name: None,
            user_id: user.to_owned(),
            variant: e.variant.map(str::to_owned),
            enabled: matches!(e.value, Some(FlagValue::Bool(_)))
                .then(|| matches!(e.value, Some(FlagValue::Bool(true)))),
            user_context: Some(Json::Object(attrs)),
            timestamp: chrono::Utc::now(),
        });
    }
    Ok(json_response(status, &body))
}

/// POST /ofrep/v1/evaluate/flags
pub async fn evaluate_all(call: Call) -> Reply {
    let env = call.environment()?;
    let (attrs, ctx) = match context(&call) {
        Ok(c) => c,
        Err((code, details)) => {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                &failure(None, code, details),
            ));
        }
    };
    let user = ctx.key().map_or_else(|| call.client_ip(), str::to_owned);
    call.rate_limit(Limit::Evaluations, &user).await?;
    let snap = call.state.snapshot(&env)?;
    // The results depend on the ruleset version and the context, nothing else.
    let context_hash = Sha256::digest(serde_json::to_vec(&attrs).unwrap_or_default());
    let tag = format!("\"{}-{}\"", snap.version, &hex::encode(context_hash)[..16]);
    let matches = call
        .req
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if matches {
        let mut r = bytes_response(
            StatusCode::NOT_MODIFIED,
            "application/json",
            bytes::Bytes::new(),
        );
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    } else {
        let flags: Vec<Json> = snap
            .engine
            .evaluate_all(&ctx)
            .map(|(key, e)| evaluate_one(key, &e, &env, snap.version).1)
            .collect();
        json_response(StatusCode::OK, &json!({"flags": flags}))
    };
    if let Ok(v) = HeaderValue::from_str(&tag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// GET /ofrep/v1/configuration
pub async fn configuration(call: Call) -> Reply {
    let poll_ms = call.state.settings.db_poll_ms.max(1000);
    let body = json!({
        "name": "optifork",
        "capabilities": {
            "cacheInvalidation": {"polling": {"enabled": true, "minPollingIntervalMs": poll_ms}},
            "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
        }
    });
    Ok(json_response(StatusCode::OK, &body))
}
