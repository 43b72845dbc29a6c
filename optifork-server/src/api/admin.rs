//! Administration: environments, API keys and the audit log.

use http::StatusCode;
use optifork_storage::{AuditFilter, KeyScope};
use serde::Deserialize;
use serde_json::json;

use super::{Call, Reply};
use crate::auth;
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
    super::entities::check_name(&body.name)?;
    let env = call
        .state
        .storage
        .create_environment(&body.name, &call.principal.key_id)
        .await?;
    call.state.after_write(&env.name).await;
    Ok(json_response(StatusCode::CREATED, &env))
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
    if body.scope == KeyScope::Sdk && !call.state.has_environment(&environment) {
        return Err(
            ApiError::not_found(format!("environment {environment:?} not found"))
                .with_field("$.environment"),
        );
    }
    let env = (body.scope == KeyScope::Sdk).then_some(environment);
    let (key, record) = auth::generate_key(&body.name, body.scope, env);
    let stored = call
        .state
        .storage
        .create_api_key(&record, &call.principal.key_id)
        .await?;
    call.state.after_key_change().await?;
    let mut out = serde_json::to_value(&stored).map_err(ApiError::internal)?;
    out["key"] = json!(key);
    out["warning"] = json!("store this key now: it is not shown again");
    Ok(json_response(StatusCode::CREATED, &out))
}

/// DELETE /keys/{id}: revokes the key (idempotent).
pub async fn revoke_key(call: Call) -> Reply {
    let id = call.param(0).to_owned();
    if id == call.principal.key_id && call.state.keys.is_active(&id) {
        // Allowed, but say so: the caller locks itself out.
        tracing::warn!(key = %id, "an admin key revoked itself");
    }
    let key = call
        .state
        .storage
        .revoke_api_key(&id, &call.principal.key_id)
        .await?;
    call.state.after_key_change().await?;
    Ok(ok(&key))
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
