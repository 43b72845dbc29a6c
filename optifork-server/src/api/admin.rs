//! Administration: environments, API keys and the audit log.

use http::StatusCode;
use optifork_storage::{AuditFilter, KeyScope};
use serde::Deserialize;
use serde_json::json;

use super::{Call, Reply};
use crate::auth;
use crate::state::AppState;
use crate::web::{ApiError, json_response, ok};

/// GET /environments
pub async fn list_environments(call: Call) -> Reply {
    Ok(ok(&call.state.storage.list_environments().await?))
}

#[derive(Deserialize)]
struct NewEnvironment {
    name: String,
}

/// POST /environments `{"name"}`
pub async fn create_environment(call: Call) -> Reply {
    let body: NewEnvironment = call.req.json()?;
    let env = new_environment(&call.state, &call.principal.key_id, &body.name).await?;
    Ok(json_response(StatusCode::CREATED, &env))
}

/// Creates an environment (shared by the API and the admin UI).
pub async fn new_environment(
    state: &AppState,
    actor: &str,
    name: &str,
) -> Result<optifork_storage::Environment, ApiError> {
    super::entities::check_name(name)?;
    let env = state.storage.create_environment(name, actor).await?;
    state.after_write(&env.name).await;
    Ok(env)
}

/// GET /keys
pub async fn list_keys(call: Call) -> Reply {
    Ok(ok(&call.state.storage.list_api_keys().await?))
}

#[derive(Deserialize)]
struct NewKey {
    name: String,
    scope: KeyScope,
    #[serde(default)]
    environment: Option<String>,
}

/// POST /keys `{"name", "scope": "admin"|"sdk", "environment"}` → the key, shown this once.
pub async fn create_key(call: Call) -> Reply {
    let body: NewKey = call.req.json()?;
    let out = new_key(
        &call.state,
        &call.principal.key_id,
        &body.name,
        body.scope,
        body.environment,
    )
    .await?;
    Ok(json_response(StatusCode::CREATED, &out))
}

/// Creates an API key: the stored key as JSON plus `key`, the secret, shown this once (shared
/// by the API and the admin UI).
pub async fn new_key(
    state: &AppState,
    actor: &str,
    name: &str,
    scope: KeyScope,
    environment: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let body = NewKey {
        name: name.to_owned(),
        scope,
        environment,
    };
    if body.name.trim().is_empty() || body.name.len() > 200 {
        return Err(
            ApiError::bad_request("invalid_body", "name must be 1 to 200 characters")
                .with_field("$.name"),
        );
    }
    let environment = match (body.scope, body.environment) {
        (KeyScope::Sdk, None) => optifork_core::model::DEFAULT_ENVIRONMENT.to_owned(),
        (KeyScope::Sdk, Some(e)) => e,
        (KeyScope::Admin, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "admin keys manage every environment; leave environment out",
            )
            .with_field("$.environment"));
        }
        (KeyScope::Admin, None) => String::new(),
    };
    if body.scope == KeyScope::Sdk && !state.has_environment(&environment) {
        return Err(
            ApiError::not_found(format!("environment {environment:?} not found"))
                .with_field("$.environment"),
        );
    }
    let env = (body.scope == KeyScope::Sdk).then_some(environment);
    let (key, record) = auth::generate_key(&body.name, body.scope, env);
    let stored = state.storage.create_api_key(&record, actor).await?;
    state.after_key_change().await?;
    let mut out = serde_json::to_value(&stored).map_err(ApiError::internal)?;
    out["key"] = json!(key);
    out["warning"] = json!("store this key now: it is not shown again");
    Ok(out)
}

/// DELETE /keys/{id}: revokes the key (idempotent).
pub async fn revoke_key(call: Call) -> Reply {
    let key = revoke(&call.state, &call.principal.key_id, call.param(0)).await?;
    Ok(ok(&key))
}

/// Revokes an API key (idempotent; shared by the API and the admin UI).
pub async fn revoke(
    state: &AppState,
    actor: &str,
    id: &str,
) -> Result<optifork_storage::ApiKey, ApiError> {
    if id == actor && state.keys.is_active(id) {
        // Allowed, but say so: the caller locks itself out.
        tracing::warn!(key = %id, "an admin key revoked itself");
    }
    let key = state.storage.revoke_api_key(id, actor).await?;
    state.after_key_change().await?;
    Ok(key)
}

/// GET /audit?entity_type=&entity_name=&environment=&limit=&before_id=
pub async fn audit(call: Call) -> Reply {
    let q = |name: &str| call.req.query_param(name).map(str::to_owned);
    let limit = call.req.page_limit()?;
    let before_id = call.req.before_id()?;
    let filter = AuditFilter {
        entity_type: q("entity_type"),
        entity_name: q("entity_name"),
        environment: q("environment"),
        before_id,
        limit,
    };
    let entries = call.state.storage.list_audit(&filter).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(ok(&json!({"entries": entries, "next_before_id": next})))
}
