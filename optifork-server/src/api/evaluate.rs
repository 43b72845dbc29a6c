//! Remote evaluation for HTTP-only clients (the seed's routes). These read the in-memory
//! snapshot only; the exposures they log go through the batched queue.

use chrono::Utc;
use optifork_core::{FlagValue, Reason};
use optifork_storage::{Exposure, ExposureFilter};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{Call, Reply, context};
use crate::web::{ApiError, ok};

/// Whether an evaluation counts as the flag being on: `true` for boolean flags; for other
/// kinds, a variant was served by the flag's own logic (not its off path or an error).
fn enabled(value: Option<&FlagValue>, reason: Reason) -> bool {
    match value {
        Some(FlagValue::Bool(b)) => *b,
        Some(_) => !matches!(
            reason,
            Reason::Disabled | Reason::PrerequisiteFailed | Reason::Error
        ),
        None => false,
    }
}

/// GET /flags/{name}?user_id=…&attr=… → `{"flag", "user_id", "enabled", "variant", "value",
/// "reason", "error_code", "rule_index"}`; logs an exposure for a known user.
pub async fn flag(call: Call) -> Reply {
    let env = call.environment()?;
    let name = call.param(0);
    let attrs = context::attributes(&call.req)?;
    let ctx = optifork_core::Context::from_json(&Json::Object(attrs.clone()));
    let user = ctx.key().map_or_else(|| call.client_ip(), str::to_owned);
    call.rate_limit(crate::ratelimit::Limit::Evaluations, &user)
        .await?;
    let snap = call.state.snapshot(&env)?;
    let e = snap.engine.evaluate(name, &ctx);
    if e.error == Some(optifork_core::ErrorCode::FlagNotFound) {
        return Err(ApiError::not_found(format!("flag {name:?} not found")));
    }
    let on = enabled(e.value, e.reason);
    if let Some(user) = ctx.key() {
        call.state.ingest.log(Exposure {
            environment: env,
            flag_name: Some(name.to_owned()),
            experiment_name: None,
            user_id: user.to_owned(),
            variant: e.variant.map(str::to_owned),
            enabled: Some(on),
            user_context: Some(Json::Object(attrs)),
            timestamp: Utc::now(),
        });
    }
    Ok(ok(&json!({
        "flag": name,
        "user_id": ctx.key(),
        "enabled": on,
        "variant": e.variant,
        "value": e.value.map(FlagValue::to_json),
        "reason": e.reason.as_str(),
        "error_code": e.error.map(|c| c.as_str()),
        "rule_index": e.rule_index,
        "ruleset_version": snap.version,
    })))
}

/// GET /flags/{name}/exposures → `{"flag", "exposures": [...], "next_before_id"}`.
pub async fn flag_exposures(call: Call) -> Reply {
    let env = call.environment()?;
    let name = call.param(0).to_owned();
    // 404 for a flag that does not exist (exposures of deleted flags are still kept).
    call.state
        .storage
        .get(
            optifork_storage::EntityKind::Flag,
            &env,
            &optifork_storage::EntityRef::Name(name.clone()),
        )
        .await?;
    let limit = call.req.page_limit()?;
    let filter = ExposureFilter {
        flag_name: Some(name.clone()),
        before_id: call.req.before_id()?,
        limit,
        ..ExposureFilter::default()
    };
    let rows = call.state.storage.list_exposures(&env, &filter).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(ok(
        &json!({"flag": name, "exposures": rows, "next_before_id": next}),
    ))
}

#[derive(Deserialize)]
struct SegmentsRequest {
    #[serde(default)]
    user_context: Map<String, Json>,
}

/// POST /segments/evaluate `{"user_context": {...}}` → `{"segments": [...]}`.
pub async fn segments(call: Call) -> Reply {
    let env = call.environment()?;
    let body: SegmentsRequest = call.req.json()?;
    let names = matching_segments(&call.state, &env, body.user_context)?;
    Ok(ok(&json!({"segments": names})))
}

/// The names of the segments a user context belongs to, in the live ruleset (shared by the
/// API and the admin UI's "test a context").
pub fn matching_segments(
    state: &crate::state::AppState,
    env: &str,
    user_context: Map<String, Json>,
) -> Result<Vec<String>, ApiError> {
    let ctx = optifork_core::Context::from_json(&Json::Object(user_context));
    let snap = state.snapshot(env)?;
    Ok(snap.engine.segments(&ctx).map(str::to_owned).collect())
}

/// GET /experiments/{name}/assign?user_id=… → `{"experiment", "user_id", "variant",
/// "in_experiment", "reason"}`; logs an exposure when the user is enrolled.
pub async fn assign(call: Call) -> Reply {
    let env = call.environment()?;
    let name = call.param(0);
    let attrs = context::attributes(&call.req)?;
    let ctx = optifork_core::Context::from_json(&Json::Object(attrs.clone()));
    let snap = call.state.snapshot(&env)?;
    let a = snap.engine.assign(name, &ctx);
    if a.reason == optifork_core::AssignmentReason::NotFound {
        return Err(ApiError::not_found(format!(
            "experiment {name:?} not found"
        )));
    }
    if a.in_experiment
        && let Some(user) = ctx.key()
    {
        call.state.ingest.log(Exposure {
            environment: env,
            flag_name: None,
            experiment_name: Some(name.to_owned()),
            user_id: user.to_owned(),
            variant: Some(a.variant.to_owned()),
            enabled: None,
            user_context: Some(Json::Object(attrs)),
            timestamp: Utc::now(),
        });
    }
    Ok(ok(&json!({
        "experiment": name,
        "user_id": ctx.key(),
        "variant": a.variant,
        "in_experiment": a.in_experiment,
        "reason": a.reason.as_str(),
    })))
}
