//! The HTTP API: one route table, dispatch, access control.
//!
//! Every route is a row of [`ROUTES`]: method, path pattern, who may call it, a summary (for
//! the OpenAPI document) and a handler. Dispatch matches the path, checks the caller's key
//! against the route's [`Access`], and runs the handler. Unknown paths are 404, known paths
//! with another method 405 (with `Allow`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderValue, Method, StatusCode, header};
use optifork_storage::KeyScope;
use warp::reply::Response;

use crate::auth::{self, Principal};
use crate::state::AppState;
use crate::web::{ApiError, Request};

pub mod admin;
pub mod context;
pub mod entities;
pub mod evaluate;
pub mod meta;
pub mod ofrep;
pub mod results;
pub mod sdk;
pub mod stream;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key.
    Public,
    /// Admin keys only.
    Admin,
    /// SDK keys (for their environment) and admin keys.
    Sdk,
}

/// Everything a handler gets.
pub struct Call {
    /// Shared state.
    pub state: Arc<AppState>,
    /// The request.
    pub req: Request,
    /// Path parameters, in pattern order.
    pub params: Vec<String>,
    /// The caller (a dev principal for public routes and in insecure dev mode).
    pub principal: Principal,
}

impl Call {
    /// The `n`th path parameter.
    pub fn param(&self, n: usize) -> &str {
        self.params.get(n).map_or("", String::as_str)
    }

    /// The client's IP address (from `X-Forwarded-For` when the server is told to trust it).
    pub fn client_ip(&self) -> String {
        client_ip(&self.state, &self.req)
    }

    /// Counts this call against a rate limit for `client`; 429 when over it.
    pub async fn rate_limit(
        &self,
        limit: crate::ratelimit::Limit,
        client: &str,
    ) -> Result<(), ApiError> {
        self.state
            .limiter
            .check(self.state.redis.as_ref(), limit, client)
            .await
    }

    /// The environment the call acts on: an SDK key's own (a different `?environment=` is
    /// 403), else `?environment=` (default `production`). 404 if it does not exist.
    pub fn environment(&self) -> Result<String, ApiError> {
        let asked = self
            .req
            .query_param("environment")
            .filter(|e| !e.is_empty());
        let env = match (&self.principal.scope, &self.principal.environment) {
            (KeyScope::Sdk, Some(bound)) => {
                if asked.is_some_and(|a| a != bound) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        format!("this SDK key is for environment {bound:?}"),
                    )
                    .with_field("environment"));
                }
                bound.clone()
            }
            _ => asked
                .unwrap_or(optifork_core::model::DEFAULT_ENVIRONMENT)
                .to_owned(),
        };
        if !self.state.has_environment(&env) {
            return Err(
                ApiError::not_found(format!("environment {env:?} not found"))
                    .with_field("environment"),
            );
        }
        Ok(env)
    }
}

/// A handler's result.
pub type Reply = Result<Response, ApiError>;
type Handler = fn(Call) -> Pin<Box<dyn Future<Output = Reply> + Send>>;

/// One route.
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path pattern; `{name}` segments are parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line for the API docs.
    pub summary: &'static str,
    /// Its group in the API docs.
    pub tag: &'static str,
    handler: Handler,
}

macro_rules! route {
    ($method:ident $path:literal, $access:ident, $tag:literal, $summary:literal, $handler:path) => {
        Route {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            summary: $summary,
            tag: $tag,
            handler: |call| -> Pin<Box<dyn Future<Output = Reply> + Send>> {
                Box::pin($handler(call))
            },
        }
    };
}

/// Every route of the API.
pub static ROUTES: &[Route] = &[
    // Flags (the seed's routes).
    route!(GET "/flags", Admin, "flags", "List flags (filter with ?tag=)", entities::list_flags),
    route!(POST "/flags", Admin, "flags", "Create a flag", entities::create_flag),
    route!(GET "/flags/{name}", Sdk, "flags", "Evaluate a flag for the user in the query (?user_id=…&attr=…)", evaluate::flag),
    route!(PUT "/flags/{name}", Admin, "flags", "Update a flag (fields given replace; If-Match honoured)", entities::update_flag),
    route!(PATCH "/flags/{name}", Admin, "flags", "Same as PUT", entities::update_flag),
    route!(DELETE "/flags/{name}", Admin, "flags", "Delete a flag (If-Match honoured)", entities::delete_flag),
    route!(GET "/flags/{name}/definition", Admin, "flags", "A flag's definition, with its ETag", entities::get_flag),
    route!(GET "/flags/{name}/exposures", Admin, "flags", "A flag's exposures, newest first (?limit=&before_id=)", evaluate::flag_exposures),
    // Remote configs.
    route!(GET "/configs", Sdk, "configs", "List configs; with a user context (or an SDK key), their resolved values", entities::list_configs),
    route!(POST "/configs", Admin, "configs", "Create a config", entities::create_config),
    route!(GET "/configs/{id}", Sdk, "configs", "A config by id or name; with a user context (or an SDK key), its resolved value", entities::get_config),
    route!(PUT "/configs/{id}", Admin, "configs", "Update a config", entities::update_config),
    route!(PATCH "/configs/{id}", Admin, "configs", "Same as PUT", entities::update_config),
    route!(DELETE "/configs/{id}", Admin, "configs", "Delete a config", entities::delete_config),
    // Segments.
    route!(GET "/segments", Admin, "segments", "List segments", entities::list_segments),
    route!(POST "/segments", Admin, "segments", "Create a segment", entities::create_segment),
    route!(POST "/segments/evaluate", Sdk, "segments", "Which segments a user context belongs to", evaluate::segments),
    route!(GET "/segments/{id}", Admin, "segments", "A segment by id or name", entities::get_segment),
    route!(PUT "/segments/{id}", Admin, "segments", "Update a segment", entities::update_segment),
    route!(PATCH "/segments/{id}", Admin, "segments", "Same as PUT", entities::update_segment),
    route!(DELETE "/segments/{id}", Admin, "segments", "Delete a segment", entities::delete_segment),
    // Experiments.
    route!(GET "/experiments", Admin, "experiments", "List experiments", entities::list_experiments),
    route!(POST "/experiments", Admin, "experiments", "Create an experiment", entities::create_experiment),
    route!(GET "/experiments/{name}", Admin, "experiments", "An experiment's definition", entities::get_experiment),
    route!(PUT "/experiments/{name}", Admin, "experiments", "Update an experiment", entities::update_experiment),
    route!(PATCH "/experiments/{name}", Admin, "experiments", "Same as PUT", entities::update_experiment),
    route!(DELETE "/experiments/{name}", Admin, "experiments", "Delete an experiment", entities::delete_experiment),
    route!(GET "/experiments/{name}/assign", Sdk, "experiments", "Assign the user in the query to a variant", evaluate::assign),
    route!(GET "/experiments/{name}/results", Admin, "experiments", "Results: users per variant, per-metric lift with CIs, p-values, Bayesian chance to beat control, SRM (?confidence=&correction=&sequential=)", results::results),
    // SDK sync and ingestion.
    route!(GET "/sdk/v1/ruleset", Sdk, "sdk", "The environment's ruleset (ETag = version; If-None-Match → 304; gzip)", sdk::ruleset),
    route!(GET "/sdk/v1/stream", Sdk, "sdk", "Server-Sent Events: `ruleset` events with the new version (id) on every change", stream::stream),
    route!(POST "/sdk/v1/exposures", Sdk, "sdk", "A batch of exposures; answered once durable; idempotent by batch_id", sdk::exposures),
    route!(POST "/sdk/v1/events", Sdk, "sdk", "A batch of metric events; answered once durable; idempotent by batch_id", sdk::events),
    // Administration.
    route!(GET "/environments", Admin, "admin", "List environments", admin::list_environments),
    route!(POST "/environments", Admin, "admin", "Create an environment", admin::create_environment),
    route!(GET "/keys", Admin, "admin", "List API keys (never their secrets)", admin::list_keys),
    route!(POST "/keys", Admin, "admin", "Create an API key (the key is in this response only)", admin::create_key),
    route!(DELETE "/keys/{id}", Admin, "admin", "Revoke an API key", admin::revoke_key),
    route!(GET "/audit", Admin, "admin", "The audit log, newest first (?entity_type=&entity_name=&environment=&limit=&before_id=)", admin::audit),
    // Operations.
    // OpenFeature Remote Evaluation Protocol.
    route!(POST "/ofrep/v1/evaluate/flags/{key}", Sdk, "ofrep", "OFREP: evaluate one flag for {\"context\": {...}}", ofrep::evaluate_flag),
    route!(POST "/ofrep/v1/evaluate/flags", Sdk, "ofrep", "OFREP: evaluate every flag (ETag; If-None-Match → 304)", ofrep::evaluate_all),
    route!(GET "/ofrep/v1/configuration", Sdk, "ofrep", "OFREP: provider configuration", ofrep::configuration),
    route!(GET "/healthz", Public, "meta", "Liveness: the process answers", meta::healthz),
    route!(GET "/readyz", Public, "meta", "Readiness: the database answers", meta::readyz),
    route!(GET "/metrics", Public, "meta", "Prometheus metrics", meta::metrics),
    route!(GET "/openapi.json", Public, "meta", "This API's OpenAPI 3.1 description", meta::openapi),
    route!(GET "/docs", Public, "meta", "Human-readable API documentation", meta::docs),
];

/// Matches a pattern against path segments, returning the parameters.
fn match_path(pattern: &str, segments: &[String]) -> Option<Vec<String>> {
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, seg) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            params.push(seg.clone());
        } else if part != seg {
            return None;
        }
    }
    Some(params)
}

/// The client's IP: the peer, or the first `X-Forwarded-For` hop when trusted.
pub fn client_ip(state: &AppState, req: &Request) -> String {
    if state.settings.trust_forwarded_for
        && let Some(first) = req
            .header("x-forwarded-for")
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return first.to_owned();
    }
    req.remote
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
}

/// Routes a request to its handler, recording its metrics.
pub async fn dispatch(state: Arc<AppState>, req: Request) -> Response {
    let started = std::time::Instant::now();
    // The admin UI has its own routes (and `GET /` sends browsers to it).
    let first = req.segments.first().map(String::as_str);
    let to_ui = first == Some("ui");
    let root = first.is_none() && (req.method == Method::GET || req.method == Method::HEAD);
    if to_ui || root {
        let resp = if to_ui {
            crate::ui::dispatch(Arc::clone(&state), req).await
        } else {
            crate::ui::root_redirect()
        };
        state
            .metrics
            .record(None, resp.status().as_u16(), started.elapsed());
        return resp;
    }
    let cors = state.settings.cors_origin.clone();
    let browser_facing = matches!(
        req.segments.first().map(String::as_str),
        Some("ofrep" | "sdk")
    );
    let (index, mut resp) = route_and_run(Arc::clone(&state), req).await;
    if browser_facing
        && !cors.is_empty()
        && let Ok(v) = HeaderValue::from_str(&cors)
    {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        resp.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag, Retry-After"),
        );
    }
    state
        .metrics
        .record(index, resp.status().as_u16(), started.elapsed());
    resp
}

async fn route_and_run(state: Arc<AppState>, req: Request) -> (Option<usize>, Response) {
    // Literal routes win over parameter routes (`/segments/evaluate` over `/segments/{id}`).
    let mut candidates: Vec<(usize, Vec<String>)> = ROUTES
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match_path(r.path, &req.segments).map(|p| (i, p)))
        .collect();
    candidates.sort_by_key(|(_, params)| params.len());
    let Some(best) = candidates.first().map(|(_, p)| p.len()) else {
        return (
            None,
            ApiError::not_found(format!("no route /{}", req.segments.join("/"))).into_response(),
        );
    };
    candidates.retain(|(_, p)| p.len() == best);
    let allow = || {
        let methods: Vec<&str> = candidates
            .iter()
            .map(|(i, _)| ROUTES[*i].method.as_str())
            .collect();
        methods.join(", ")
    };
    if req.method == Method::OPTIONS {
        // CORS preflight (and plain OPTIONS): say what is allowed.
        let mut resp = Response::new(bytes::Bytes::new().into());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        let methods = HeaderValue::from_str(&allow()).unwrap_or(HeaderValue::from_static("GET"));
        h.insert(header::ALLOW, methods.clone());
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "Authorization, X-API-Key, Content-Type, If-None-Match, If-Match, X-User-Context, Last-Event-ID",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return (None, resp);
    }
    let head = req.method == Method::HEAD;
    let found = candidates.iter().position(|(i, _)| {
        ROUTES[*i].method == req.method || (head && ROUTES[*i].method == Method::GET)
    });
    let Some(pos) = found else {
        let allow = allow();
        return (
            None,
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} is not allowed here; use {allow}", req.method),
            )
            .with_header(
                header::ALLOW,
                HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("GET")),
            )
            .into_response(),
        );
    };
    let (index, params) = candidates.swap_remove(pos);
    let route = &ROUTES[index];
    let result = async {
        let principal = authorize(&state, &req, route.access)?;
        // The API limit: every request but operations routes and SDK sync with an SDK key.
        let sdk_sync = route.path.starts_with("/sdk/") && principal.scope == KeyScope::Sdk;
        if route.access != Access::Public && !sdk_sync {
            state
                .limiter
                .check(
                    state.redis.as_ref(),
                    crate::ratelimit::Limit::Api,
                    &client_ip(&state, &req),
                )
                .await?;
        }
        let call = Call {
            state: Arc::clone(&state),
            req,
            params,
            principal,
        };
        (route.handler)(call).await
    }
    .await;
    let mut resp = result.unwrap_or_else(ApiError::into_response);
    if head {
        *resp.body_mut() = bytes::Bytes::new().into();
    }
    (Some(index), resp)
}

fn authorize(state: &AppState, req: &Request, access: Access) -> Result<Principal, ApiError> {
    if access == Access::Public || state.settings.insecure_dev_mode {
        return Ok(Principal::dev());
    }
    let principal = auth::authenticate(&state.keys, req)?;
    if access == Access::Admin && principal.scope != KeyScope::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route needs an admin key; SDK keys may only sync, evaluate and send exposures and events",
        ));
    }
    Ok(principal)
}
