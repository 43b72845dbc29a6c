//! Health, readiness and the API's own description (`/openapi.json`, `/docs`).
//!
//! The OpenAPI document is generated from the route table, so every route is described by
//! construction; schemas of the main bodies are written out here.

use http::StatusCode;
use serde_json::{Map, Value as Json, json};

use super::{Access, Call, ROUTES, Reply};
use crate::web::{bytes_response, json_response, ok};

/// GET /healthz: the process answers.
pub async fn healthz(_call: Call) -> Reply {
    Ok(ok(&json!({"status": "ok"})))
}

/// GET /readyz: the database answers (503 otherwise).
pub async fn readyz(call: Call) -> Reply {
    match call.state.storage.ping().await {
        Ok(()) => Ok(ok(&json!({
            "status": "ready",
            "storage": call.state.storage.backend(),
            "redis": call.state.redis.as_ref().map(|r| if r.is_subscribed() { "subscribed" } else { "disconnected" }),
            "environments": call.state.versions().into_iter()
                .map(|(name, version)| json!({"name": name, "version": version}))
                .collect::<Vec<_>>(),
        }))),
        Err(e) => Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable", "error": e.to_string()}),
        )),
    }
}

/// GET /metrics (Prometheus text format).
pub async fn metrics(call: Call) -> Reply {
    Ok(bytes_response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        bytes::Bytes::from(crate::metrics::render(&call.state)),
    ))
}

/// GET /openapi.json
pub async fn openapi(_call: Call) -> Reply {
    Ok(ok(&document()))
}

/// GET /docs: a self-contained page rendering `/openapi.json` (no external assets).
pub async fn docs(_call: Call) -> Reply {
    Ok(bytes_response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        bytes::Bytes::from_static(DOCS_HTML.as_bytes()),
    ))
}

fn schema_ref(name: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The request body schema of a write route, by its tag.
fn body_schema(path: &str, tag: &str) -> Option<Json> {
    Some(match (tag, path) {
        ("flags", _) => schema_ref("Flag"),
        ("configs", _) => schema_ref("Config"),
        ("segments", "/segments/evaluate") => json!({
            "type": "object", "required": ["user_context"],
            "properties": {"user_context": schema_ref("Context")}
        }),
        ("segments", _) => schema_ref("Segment"),
        ("experiments", _) => schema_ref("Experiment"),
        ("sdk", "/sdk/v1/exposures") => schema_ref("ExposureBatch"),
        ("sdk", "/sdk/v1/events") => schema_ref("EventBatch"),
        ("admin", "/environments") => {
            json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})
        }
        ("ofrep", _) => json!({"type": "object", "properties": {"context": schema_ref("Context")}}),
        ("admin", "/keys") => {
            json!({"type": "object", "required": ["name", "scope"], "properties": {
            "name": {"type": "string"}, "scope": {"enum": ["admin", "sdk"]}, "environment": {"type": "string"}}})
        }
        _ => return None,
    })
}

/// The OpenAPI 3.1 document.
pub fn document() -> Json {
    let mut paths: Map<String, Json> = Map::new();
    for r in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert("tags".into(), json!([r.tag]));
        op.insert(
            "operationId".into(),
            json!(format!(
                "{}_{}",
                r.method.as_str().to_lowercase(),
                r.path.trim_matches('/').replace(['/', '{', '}', '.'], "_")
            )),
        );
        let mut params: Vec<Json> = r
            .path
            .split('/')
            .filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if r.access != Access::Public {
            params.push(
                json!({"name": "environment", "in": "query", "required": false,
                "description": "The environment (default production; SDK keys are bound to theirs)",
                "schema": {"type": "string"}}),
            );
        }
        if matches!(
            r.path,
            "/flags/{name}" | "/experiments/{name}/assign" | "/configs" | "/configs/{id}"
        ) && r.method == http::Method::GET
        {
            params.push(json!({"name": "user_id", "in": "query", "required": false,
                "description": "The user (targeting key). Any other query parameter is a context attribute.",
                "schema": {"type": "string"}}));
            params.push(
                json!({"name": "X-User-Context", "in": "header", "required": false,
                "description": "The user context as a JSON object, for exact attribute types",
                "schema": {"type": "string"}}),
            );
        }
        if matches!(
            r.method,
            http::Method::PUT | http::Method::PATCH | http::Method::DELETE
        ) && r.tag != "admin"
        {
            params.push(json!({"name": "If-Match", "in": "header", "required": false,
                "description": "The ETag read; a stale one is refused with 412", "schema": {"type": "string"}}));
        }
        if r.path == "/sdk/v1/ruleset" {
            params.push(
                json!({"name": "If-None-Match", "in": "header", "required": false,
                "description": "The ETag held; unchanged → 304", "schema": {"type": "string"}}),
            );
        }
        op.insert("parameters".into(), Json::Array(params));
        if let Some(schema) = (r.method != http::Method::GET && r.method != http::Method::DELETE)
            .then(|| body_schema(r.path, r.tag))
            .flatten()
        {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": schema}}}),
            );
        }
        let success = if r.method == http::Method::POST
            && !matches!(
                r.path,
                "/segments/evaluate" | "/sdk/v1/exposures" | "/sdk/v1/events"
            ) {
            "201"
        } else {
            "200"
        };
        let mut responses = json!({
            success: {"description": "Success", "content": {"application/json": {}}},
            "400": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
        });
        if r.access != Access::Public {
            responses["401"] = json!({"$ref": "#/components/responses/Error"});
            responses["403"] = json!({"$ref": "#/components/responses/Error"});
        }
        if matches!(
            r.method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        ) {
            responses["409"] = json!({"$ref": "#/components/responses/Error"});
            responses["413"] = json!({"$ref": "#/components/responses/Error"});
            responses["415"] = json!({"$ref": "#/components/responses/Error"});
        }
        if matches!(
            r.method,
            http::Method::PUT | http::Method::PATCH | http::Method::DELETE
        ) {
            responses["412"] = json!({"$ref": "#/components/responses/Error"});
        }
        if r.path == "/sdk/v1/ruleset" {
            responses["304"] = json!({"description": "Not modified"});
        }
        op.insert("responses".into(), responses);
        if r.access == Access::Public {
            op.insert("security".into(), json!([]));
        } else {
            op.insert(
                "description".into(),
                json!(if r.access == Access::Admin {
                    "Needs an admin key."
                } else {
                    "Needs an SDK key (for its environment) or an admin key."
                }),
            );
        }
        let item = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
        item[r.method.as_str().to_lowercase()] = Json::Object(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "OptiFork API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Feature flags, remote configs, segments and experiments. Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`."
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "An API key: Authorization: Bearer ofk_… (or X-API-Key)"}},
            "responses": {"Error": {"description": "An error", "content": {"application/json": {"schema": schema_ref("Error")}}}},
            "schemas": schemas(),
        }
    })
}

fn schemas() -> Json {
    let condition = json!({"type": "object", "description": "A MongoDB-style condition, e.g. {\"country\": {\"$in\": [\"US\"]}}"});
    let serve = json!({"type": "object", "properties": {
        "variant": {"type": "string"},
        "rollout": {"type": "array", "items": {"type": "object", "required": ["variant", "weight"],
            "properties": {"variant": {"type": "string"}, "weight": {"type": "number"}}}},
        "bucket_by": {"type": "string"}}});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "field": {"type": ["string", "null"], "description": "JSON path of the culprit"}}}}},
        "Context": {"type": "object", "description": "User attributes; user_id or targetingKey is the key",
            "additionalProperties": true},
        "Condition": condition,
        "Flag": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "is_enabled": {"type": "boolean", "default": false},
            "rollout_percentage": {"type": "number", "minimum": 0, "maximum": 100, "default": 100},
            "targeting_rules": schema_ref("Condition"),
            "kind": {"enum": ["boolean", "string", "number", "json"]},
            "variants": {"type": "array", "items": {"type": "object", "required": ["name", "value"],
                "properties": {"name": {"type": "string"}, "value": {}, "description": {"type": "string"}}}},
            "rules": {"type": "array", "items": {"type": "object", "required": ["serve"], "properties": {
                "condition": schema_ref("Condition"), "serve": serve, "description": {"type": "string"}}}},
            "default": serve, "off_variant": {"type": "string"},
            "prerequisites": {"type": "array", "items": {"type": "object", "required": ["flag"],
                "properties": {"flag": {"type": "string"}, "variants": {"type": "array", "items": {"type": "string"}}}}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "salt": {"type": "string"}, "bucket_by": {"type": "string"}, "track": {"type": "boolean"}}},
        "Config": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "description": {"type": "string"}, "config_data": {},
            "environment": {"type": "string"}, "is_active": {"type": "boolean", "default": true},
            "overrides": {"type": "array", "items": {"type": "object", "required": ["config_data"], "properties": {
                "segment": {"type": "string"}, "condition": schema_ref("Condition"), "config_data": {}}}}}},
        "Segment": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "criteria": schema_ref("Condition"), "is_active": {"type": "boolean", "default": true}}},
        "Experiment": {"type": "object", "required": ["name", "variants"], "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "flag_id": {"type": "integer"}, "flag": {"type": "string"},
            "variants": {"type": "array", "items": {"type": "string"}},
            "traffic_splits": {"type": "object", "additionalProperties": {"type": "number"}},
            "targeting_rules": schema_ref("Condition"), "is_active": {"type": "boolean", "default": false},
            "allocation": {"type": "number", "default": 100}, "control": {"type": "string", "default": "control"},
            "layer": {"type": "object", "properties": {"name": {"type": "string"},
                "range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}}}}},
        "ExposureBatch": {"type": "object", "required": ["exposures"], "properties": {
            "batch_id": {"type": "string"},
            "exposures": {"type": "array", "items": {"type": "object", "required": ["user_id"], "properties": {
                "flag": {"type": "string"}, "experiment": {"type": "string"}, "user_id": {"type": "string"},
                "variant": {"type": "string"}, "enabled": {"type": "boolean"}, "context": {"type": "object"},
                "timestamp": {"type": "string", "format": "date-time"}}}}}},
        "EventBatch": {"type": "object", "required": ["events"], "properties": {
            "batch_id": {"type": "string"},
            "events": {"type": "array", "items": {"type": "object", "required": ["event", "user_id"], "properties": {
                "event": {"type": "string"}, "user_id": {"type": "string"}, "value": {"type": "number"},
                "properties": {"type": "object"}, "timestamp": {"type": "string", "format": "date-time"}}}}}},
    })
}

const DOCS_HTML: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OptiFork API</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f7f8fa; }
  header { background: #1d2330; color: #fff; padding: 18px 28px; }
  header h1 { margin: 0; font-size: 20px; }
  main { max-width: 960px; margin: 0 auto; padding: 20px; }
  h2 { text-transform: capitalize; border-bottom: 1px solid #dde1e8; padding-bottom: 4px; }
  .op { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; margin: 8px 0; padding: 10px 14px; }
  .method { display: inline-block; min-width: 64px; font-weight: 700; font-family: ui-monospace, monospace; }
  .GET { color: #0b7a3b; } .POST { color: #1f5fbf; } .PUT, .PATCH { color: #9a5b00; } .DELETE { color: #b3261e; }
  code { font-family: ui-monospace, monospace; }
  .auth { float: right; font-size: 12px; color: #5b6475; }
  .params { font-size: 13px; color: #5b6475; margin-top: 4px; }
</style>
</head>
<body>
<header><h1>OptiFork API</h1><div id="desc"></div></header>
<main id="main"><p>Loading <a href="/openapi.json">/openapi.json</a>…</p></main>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const main = document.getElementById('main');
  document.getElementById('desc').textContent = doc.info.description;
  const groups = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      (groups[op.tags[0]] ||= []).push({path, method: method.toUpperCase(), op});
    }
  }
  main.textContent = '';
  for (const [tag, ops] of Object.entries(groups)) {
    const h = document.createElement('h2'); h.textContent = tag; main.appendChild(h);
    for (const {path, method, op} of ops) {
      const div = document.createElement('div'); div.className = 'op';
      const auth = document.createElement('span'); auth.className = 'auth';
      auth.textContent = op.security && op.security.length === 0 ? 'public' : (op.description || '');
      const m = document.createElement('span'); m.className = 'method ' + method; m.textContent = method;
      const p = document.createElement('code'); p.textContent = path;
      const s = document.createElement('div'); s.textContent = op.summary;
      const params = (op.parameters || []).map(x => x.name + ' (' + x.in + ')').join(', ');
      const pr = document.createElement('div'); pr.className = 'params';
      pr.textContent = params ? 'Parameters: ' + params : '';
      div.append(auth, m, p, s, pr); main.appendChild(div);
    }
  }
}).catch(e => { document.getElementById('main').textContent = 'Could not load the API description: ' + e; });
</script>
</body>
</html>
"##;
