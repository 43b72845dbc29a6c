//! Create, read, update and delete flags, configs, segments and experiments.
//!
//! One generic implementation serves the four kinds. Every write goes through
//! [`write`]: the storage transaction compiles the whole resulting ruleset with optifork-core,
//! so a change that would make the ruleset unevaluable is refused with 400 and the JSON path
//! of the culprit (relative to the entity written), or 409 when it would break another entity
//! (deleting a segment a flag uses, say).

use std::sync::Mutex;

use http::StatusCode;
use optifork_core::{CompileError, Engine, JsonPath, PathSegment, Ruleset};
use optifork_storage::{
    Change, EntityKind, EntityRef, Record, StoreError, WriteOutcome, WriteRequest,
};
use serde_json::{Map, Value as Json};

use super::{Call, Reply};
use crate::state::AppState;
use crate::web::{ApiError, json_response, ok, with_etag};

/// Fields each kind accepts on write (besides the read-only metadata in [`METADATA`]).
fn known_fields(kind: EntityKind) -> &'static [&'static str] {
    match kind {
        EntityKind::Flag => &[
            "name",
            "description",
            "is_enabled",
            "rollout_percentage",
            "targeting_rules",
            "kind",
            "variants",
            "rules",
            "default",
            "off_variant",
            "prerequisites",
            "tags",
            "salt",
            "bucket_by",
            "track",
        ],
        EntityKind::Config => &[
            "name",
            "description",
            "config_data",
            "environment",
            "is_active",
            "overrides",
        ],
        EntityKind::Segment => &["name", "description", "criteria", "is_active"],
        EntityKind::Experiment => &[
            "name",
            "description",
            "flag_id",
            "flag",
            "variants",
            "traffic_splits",
            "targeting_rules",
            "is_active",
            "allocation",
            "control",
            "layer",
            "salt",
            "bucket_by",
            "metrics",
        ],
    }
}

/// Fields the server sets; accepted in a body (so a GET response can be PUT back) and ignored.
const METADATA: &[&str] = &["id", "version", "created_at", "updated_at", "environment"];

/// Names: a letter, then letters, digits, `_`, `.` or `-`; at most 128 characters.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let mut chars = name.chars();
    let ok = name.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_name",
            format!(
                "name {name:?} must start with a letter and contain only letters, digits, '_', '.' and '-' (at most 128)"
            ),
        )
        .with_field("$.name"))
    }
}

/// A record as the API shows it: the entity's fields plus id, environment, version and
/// timestamps.
pub fn record_json(r: &Record) -> Json {
    let mut body = match &r.body {
        Json::Object(map) => map.clone(),
        _ => Map::new(),
    };
    body.insert("id".into(), Json::from(r.id));
    body.insert("environment".into(), Json::from(r.environment.clone()));
    body.insert("version".into(), Json::from(r.version));
    body.insert("created_at".into(), Json::from(r.created_at.to_rfc3339()));
    body.insert("updated_at".into(), Json::from(r.updated_at.to_rfc3339()));
    Json::Object(body)
}

/// How a URL names an entity: flags and experiments by name; configs and segments by id or
/// name (names start with a letter, so a number is an id).
pub fn entity_ref(kind: EntityKind, param: &str) -> EntityRef {
    match kind {
        EntityKind::Config | EntityKind::Segment => match param.parse::<i64>() {
            Ok(id) => EntityRef::Id(id),
            Err(_) => EntityRef::Name(param.to_owned()),
        },
        _ => EntityRef::Name(param.to_owned()),
    }
}

/// The body of a write: a JSON object with only known fields; metadata removed.
fn entity_body(call: &Call, kind: EntityKind) -> Result<Map<String, Json>, ApiError> {
    check_body(kind, call.req.json_value()?)
}

/// Checks a write's body: a JSON object with only the kind's known fields (read-only metadata
/// is accepted and dropped). The admin UI sends its forms through this too.
pub fn check_body(kind: EntityKind, body: Json) -> Result<Map<String, Json>, ApiError> {
    let Json::Object(mut body) = body else {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("a {kind} must be a JSON object"),
        )
        .with_field("$"));
    };
    let known = known_fields(kind);
    if let Some(unknown) = body
        .keys()
        .find(|k| !known.contains(&k.as_str()) && !METADATA.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "unknown_field",
            format!("{kind}s have no field {unknown:?}"),
        )
        .with_field(JsonPath::root().key(unknown).to_string()));
    }
    for meta in METADATA {
        // A config's `environment` is one of its seed fields; it is checked below.
        if !(kind == EntityKind::Config && *meta == "environment") {
            body.remove(*meta);
        }
    }
    Ok(body)
}

fn names_of(rs: &Ruleset, kind: EntityKind) -> Vec<&str> {
    match kind {
        EntityKind::Flag => rs.flags.iter().map(|e| e.name.as_str()).collect(),
        EntityKind::Config => rs.configs.iter().map(|e| e.name.as_str()).collect(),
        EntityKind::Segment => rs.segments.iter().map(|e| e.name.as_str()).collect(),
        EntityKind::Experiment => rs.experiments.iter().map(|e| e.name.as_str()).collect(),
    }
}

/// A compile error at the ruleset level, made relative to the entity being written when it is
/// about that entity; otherwise the entity it concerns is recorded in `elsewhere`.
fn localize(
    err: CompileError,
    rs: &Ruleset,
    kind: EntityKind,
    name: &str,
    elsewhere: &Mutex<Option<String>>,
) -> CompileError {
    if let [PathSegment::Key(list), PathSegment::Index(i), ..] = err.path.segments()
        && let Some(other_kind) = EntityKind::ALL.into_iter().find(|k| k.plural() == list)
    {
        let other_name = names_of(rs, other_kind).get(*i).copied().unwrap_or("?");
        if other_kind == kind && other_name == name {
            return CompileError {
                path: err.path.strip_prefix(2),
                kind: err.kind,
            };
        }
        if let Ok(mut slot) = elsewhere.lock() {
            *slot = Some(format!("{other_kind} {other_name:?}"));
        }
    }
    err
}

/// Applies a change through storage (validated by compiling the resulting ruleset) and swaps
/// the environment's live snapshot. `actor` (an API key id) is recorded in the audit log.
pub async fn write(
    state: &AppState,
    actor: &str,
    environment: &str,
    kind: EntityKind,
    name: &str,
    change: Change,
) -> Result<WriteOutcome, ApiError> {
    let elsewhere = Mutex::new(None);
    let validate = |rs: &Ruleset| -> Result<(), CompileError> {
        Engine::compile(rs)
            .map(drop)
            .map_err(|e| localize(e, rs, kind, name, &elsewhere))
    };
    let result = state
        .storage
        .write(WriteRequest {
            environment,
            kind,
            change,
            actor,
            validate: &validate,
        })
        .await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(StoreError::Invalid(err)) => {
            let other = elsewhere.lock().ok().and_then(|mut s| s.take());
            return Err(match other {
                Some(other) => ApiError::new(
                    StatusCode::CONFLICT,
                    "breaks_dependents",
                    format!("this change would break {other}: {}", err.kind),
                )
                .with_field(err.path.to_string()),
                None => ApiError::bad_request(err.code(), err.kind.to_string())
                    .with_field(err.path.to_string()),
            });
        }
        Err(e) => return Err(e.into()),
    };
    state.after_write(environment).await;
    Ok(outcome)
}

async fn list(call: Call, kind: EntityKind) -> Reply {
    let env = call.environment()?;
    let mut records = call.state.storage.list(kind, &env).await?;
    if kind == EntityKind::Flag
        && let Some(tag) = call.req.query_param("tag")
    {
        records.retain(|r| {
            r.body["tags"]
                .as_array()
                .is_some_and(|tags| tags.iter().any(|t| t == tag))
        });
    }
    let items: Vec<Json> = records.iter().map(record_json).collect();
    Ok(ok(&items))
}

async fn get(call: Call, kind: EntityKind) -> Reply {
    let env = call.environment()?;
    let record = call
        .state
        .storage
        .get(kind, &env, &entity_ref(kind, call.param(0)))
        .await?;
    Ok(with_etag(ok(&record_json(&record)), record.version))
}

async fn create(call: Call, kind: EntityKind) -> Reply {
    let env = call.environment()?;
    let body = entity_body(&call, kind)?;
    let record = create_entity(&call.state, &call.principal.key_id, &env, kind, body).await?;
    Ok(with_etag(
        json_response(StatusCode::CREATED, &record_json(&record)),
        record.version,
    ))
}

/// Creates an entity from a checked body (see [`check_body`]): the name is checked, then the
/// whole resulting ruleset is validated by [`write`]. Shared by the API and the admin UI.
pub async fn create_entity(
    state: &AppState,
    actor: &str,
    env: &str,
    kind: EntityKind,
    mut body: Map<String, Json>,
) -> Result<Record, ApiError> {
    let name = match body.get("name") {
        Some(Json::String(n)) => n.clone(),
        Some(_) => {
            return Err(
                ApiError::bad_request("invalid_body", "name must be a string").with_field("$.name"),
            );
        }
        None => {
            return Err(
                ApiError::bad_request("invalid_body", format!("a {kind} needs a name"))
                    .with_field("$.name"),
            );
        }
    };
    check_name(&name)?;
    if kind == EntityKind::Config {
        check_config_environment(&mut body, env)?;
    }
    if kind == EntityKind::Experiment
        && let Some(m) = body.get("metrics")
    {
        super::results::check_metrics(m)?;
    }
    let _guard = state.write_lock.lock().await;
    let outcome = write(
        state,
        actor,
        env,
        kind,
        &name,
        Change::Create {
            body: Json::Object(body),
        },
    )
    .await?;
    outcome
        .after
        .ok_or_else(|| ApiError::internal("a create returned no record"))
}

/// A config's seed field `environment` must name the environment it is written to.
fn check_config_environment(body: &mut Map<String, Json>, env: &str) -> Result<(), ApiError> {
    match body.get("environment") {
        None | Some(Json::Null) => {}
        Some(Json::String(e)) if e == env => {}
        Some(other) => {
            return Err(ApiError::bad_request(
                "environment_mismatch",
                format!("the body says environment {other}, but the request writes to {env:?} (use ?environment=)"),
            )
            .with_field("$.environment"));
        }
    }
    body.insert("environment".into(), Json::from(env));
    Ok(())
}

/// PUT/PATCH: the fields given replace the stored ones; the others are kept. Renaming pins the
/// hashing salt to the old name (unless one is set) so that no user changes bucket.
async fn update(call: Call, kind: EntityKind) -> Reply {
    let env = call.environment()?;
    let target = entity_ref(kind, call.param(0));
    let patch = entity_body(&call, kind)?;
    let client_if_match = call.req.if_match()?;
    let record = update_entity(
        &call.state,
        &call.principal.key_id,
        &env,
        kind,
        &target,
        patch,
        client_if_match,
    )
    .await?;
    Ok(with_etag(ok(&record_json(&record)), record.version))
}

/// Updates an entity: the fields of `patch` (a checked body, see [`check_body`]) replace the
/// stored ones. With `client_if_match`, the stored version must be that one (412 otherwise).
/// Shared by the API and the admin UI.
pub async fn update_entity(
    state: &AppState,
    actor: &str,
    env: &str,
    kind: EntityKind,
    target: &EntityRef,
    patch: Map<String, Json>,
    client_if_match: Option<i64>,
) -> Result<Record, ApiError> {
    if kind == EntityKind::Experiment
        && let Some(m) = patch.get("metrics")
    {
        super::results::check_metrics(m)?;
    }
    if let Some(Json::String(n)) = patch.get("name") {
        check_name(n.as_str())?;
    } else if patch.contains_key("name") {
        return Err(
            ApiError::bad_request("invalid_body", "name must be a string").with_field("$.name"),
        );
    }
    // Without If-Match, a concurrent change between our read and our write (by another
    // replica: this process serializes its own writes) is retried on the fresh version; with
    // it, the client's version is what must match.
    let _guard = state.write_lock.lock().await;
    for _ in 0..5 {
        let current = state.storage.get(kind, env, target).await?;
        let mut body = match &current.body {
            Json::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let renamed = patch
            .get("name")
            .and_then(Json::as_str)
            .is_some_and(|n| n != current.name);
        for (k, v) in &patch {
            body.insert(k.clone(), v.clone());
        }
        if kind == EntityKind::Experiment
            && patch.contains_key("flag")
            && !patch.contains_key("flag_id")
        {
            body.remove("flag_id"); // re-resolved from the new flag name
        }
        if kind == EntityKind::Experiment
            && patch.contains_key("flag_id")
            && !patch.contains_key("flag")
        {
            body.remove("flag");
        }
        if renamed
            && matches!(kind, EntityKind::Flag | EntityKind::Experiment)
            && body.get("salt").is_none_or(Json::is_null)
        {
            body.insert("salt".into(), Json::from(current.name.clone()));
        }
        if kind == EntityKind::Config {
            check_config_environment(&mut body, env)?;
        }
        let name = body
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or(&current.name)
            .to_owned();
        let change = Change::Update {
            target: EntityRef::Id(current.id),
            body: Json::Object(body),
            if_match: Some(client_if_match.unwrap_or(current.version)),
        };
        match write(state, actor, env, kind, &name, change).await {
            Err(e) if e.status == StatusCode::PRECONDITION_FAILED && client_if_match.is_none() => {
                continue;
            }
            Err(e) => return Err(e),
            Ok(outcome) => {
                return outcome
                    .after
                    .ok_or_else(|| ApiError::internal("an update returned no record"));
            }
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "busy",
        "the entity kept changing while we updated it; retry",
    ))
}

async fn delete(call: Call, kind: EntityKind) -> Reply {
    let env = call.environment()?;
    let target = entity_ref(kind, call.param(0));
    let if_match = call.req.if_match()?;
    let outcome = delete_entity(
        &call.state,
        &call.principal.key_id,
        &env,
        kind,
        &target,
        if_match,
    )
    .await?;
    let deleted = outcome
        .before
        .as_ref()
        .map(record_json)
        .unwrap_or(Json::Null);
    Ok(ok(
        &serde_json::json!({"deleted": deleted, "ruleset_version": outcome.ruleset_version}),
    ))
}

/// Deletes an entity (409 when another entity depends on it). Shared by the API and the
/// admin UI.
pub async fn delete_entity(
    state: &AppState,
    actor: &str,
    env: &str,
    kind: EntityKind,
    target: &EntityRef,
    if_match: Option<i64>,
) -> Result<WriteOutcome, ApiError> {
    let _guard = state.write_lock.lock().await;
    let current = state.storage.get(kind, env, target).await?;
    write(
        state,
        actor,
        env,
        kind,
        &current.name,
        Change::Delete {
            target: EntityRef::Id(current.id),
            if_match,
        },
    )
    .await
}

/// GET /flags
pub async fn list_flags(call: Call) -> Reply {
    list(call, EntityKind::Flag).await
}
/// POST /flags
pub async fn create_flag(call: Call) -> Reply {
    create(call, EntityKind::Flag).await
}
/// GET /flags/{name}/definition
pub async fn get_flag(call: Call) -> Reply {
    get(call, EntityKind::Flag).await
}
/// PUT /flags/{name}
pub async fn update_flag(call: Call) -> Reply {
    update(call, EntityKind::Flag).await
}
/// DELETE /flags/{name}
pub async fn delete_flag(call: Call) -> Reply {
    delete(call, EntityKind::Flag).await
}

/// Whether a request carries a user context (then config routes resolve values).
fn has_user_context(call: &Call) -> bool {
    call.req.header("x-user-context").is_some()
        || call
            .req
            .query
            .iter()
            .any(|(k, _)| !super::context::RESERVED.contains(&k.as_str()))
}

/// Config reads resolve overrides for SDK keys, and for admins who send a user context.
fn resolves_configs(call: &Call) -> bool {
    call.principal.scope == optifork_storage::KeyScope::Sdk || has_user_context(call)
}

/// Config fetches count per client: the API key, or the IP without one.
async fn config_limit(call: &Call) -> Result<(), ApiError> {
    let client = if call.state.settings.insecure_dev_mode {
        call.client_ip()
    } else {
        call.principal.key_id.clone()
    };
    call.rate_limit(crate::ratelimit::Limit::Configs, &client)
        .await
}

/// GET /configs
pub async fn list_configs(call: Call) -> Reply {
    config_limit(&call).await?;
    if !resolves_configs(&call) {
        return list(call, EntityKind::Config).await;
    }
    let env = call.environment()?;
    let ctx = super::context::from_request(&call.req)?;
    let snap = call.state.snapshot(&env)?;
    let items: Vec<Json> = snap
        .engine
        .config_names()
        .filter_map(|name| {
            snap.engine.config(name, &ctx).map(|r| {
                serde_json::json!({"name": name, "config_data": r.value, "matched_overrides": r.matched_overrides})
            })
        })
        .collect();
    Ok(ok(&items))
}
/// POST /configs
pub async fn create_config(call: Call) -> Reply {
    create(call, EntityKind::Config).await
}
/// GET /configs/{id}
pub async fn get_config(call: Call) -> Reply {
    config_limit(&call).await?;
    if !resolves_configs(&call) {
        return get(call, EntityKind::Config).await;
    }
    let env = call.environment()?;
    let ctx = super::context::from_request(&call.req)?;
    let snap = call.state.snapshot(&env)?;
    let param = call.param(0);
    // Resolve an id to its name through storage; names are used directly.
    let name = match entity_ref(EntityKind::Config, param) {
        EntityRef::Name(n) => n,
        target @ EntityRef::Id(_) => {
            call.state
                .storage
                .get(EntityKind::Config, &env, &target)
                .await?
                .name
        }
    };
    match snap.engine.config(&name, &ctx) {
        Some(r) => Ok(ok(&serde_json::json!({
            "name": name, "config_data": r.value, "matched_overrides": r.matched_overrides
        }))),
        None => Err(ApiError::not_found(format!(
            "config {name:?} not found or inactive"
        ))),
    }
}
/// PUT /configs/{id}
pub async fn update_config(call: Call) -> Reply {
    update(call, EntityKind::Config).await
}
/// DELETE /configs/{id}
pub async fn delete_config(call: Call) -> Reply {
    delete(call, EntityKind::Config).await
}

/// GET /segments
pub async fn list_segments(call: Call) -> Reply {
    list(call, EntityKind::Segment).await
}
/// POST /segments
pub async fn create_segment(call: Call) -> Reply {
    create(call, EntityKind::Segment).await
}
/// GET /segments/{id}
pub async fn get_segment(call: Call) -> Reply {
    get(call, EntityKind::Segment).await
}
/// PUT /segments/{id}
pub async fn update_segment(call: Call) -> Reply {
    update(call, EntityKind::Segment).await
}
/// DELETE /segments/{id}
pub async fn delete_segment(call: Call) -> Reply {
    delete(call, EntityKind::Segment).await
}

/// GET /experiments
pub async fn list_experiments(call: Call) -> Reply {
    list(call, EntityKind::Experiment).await
}
/// POST /experiments
pub async fn create_experiment(call: Call) -> Reply {
    create(call, EntityKind::Experiment).await
}
/// GET /experiments/{name}
pub async fn get_experiment(call: Call) -> Reply {
    get(call, EntityKind::Experiment).await
}
/// PUT /experiments/{name}
pub async fn update_experiment(call: Call) -> Reply {
    update(call, EntityKind::Experiment).await
}
/// DELETE /experiments/{name}
pub async fn delete_experiment(call: Call) -> Reply {
    delete(call, EntityKind::Experiment).await
}
