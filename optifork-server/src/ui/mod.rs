//! The admin web UI, served under `/ui`: server-rendered pages (askama templates compiled
//! into the binary), plain HTML forms (post/redirect/get) and a little vanilla JavaScript.
//!
//! * Routing: `api::dispatch` hands every `/ui/...` request to [`dispatch`], which matches
//!   [`UI_ROUTES`] (a table like the API's, kept apart so that `/openapi.json` and the API's
//!   access tests describe the API only).
//! * Sessions: a stateless signed cookie, see [`session`]. Pages redirect to the login page
//!   without one; every POST needs the session's CSRF token and a same-origin `Origin`.
//! * Writes go through the API's own functions (`entities::create_entity` and friends, which
//!   validate by compiling the whole resulting ruleset), so the UI refuses exactly what the API
//!   refuses, and its errors carry the same JSON path, shown next to the form field it names.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use askama::Template;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::json;
use warp::reply::Response;

use crate::state::AppState;
use crate::web::{ApiError, Request};

pub mod assets;
pub mod diff;
pub mod forms;
pub mod guide;
pub mod pages;
pub mod results;
pub mod session;

use session::Session;

/// Who may open a UI route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UiAccess {
    /// Anyone (the login page, static assets).
    Public,
    /// A logged-in admin (a session cookie).
    Session,
}

/// What a UI handler gets.
pub struct Ui {
    /// Shared state.
    pub state: Arc<AppState>,
    /// The request.
    pub req: Request,
    /// Path parameters, in pattern order.
    pub params: Vec<String>,
    /// The session (`None` on public routes).
    pub session: Option<Session>,
    /// The urlencoded form of a POST (empty otherwise).
    pub form: forms::Form,
}

/// A UI handler's result: errors become an HTML error page (or JSON for `fetch()` calls).
pub type UiReply = Result<Response, ApiError>;
type UiHandler = fn(Ui) -> Pin<Box<dyn Future<Output = UiReply> + Send>>;

/// One UI route.
pub struct UiRoute {
    /// The HTTP method.
    pub method: Method,
    /// The path pattern; `{name}` segments are parameters.
    pub path: &'static str,
    /// Who may open it.
    pub access: UiAccess,
    handler: UiHandler,
}

macro_rules! ui_route {
    ($method:ident $path:literal, $access:ident, $handler:path) => {
        UiRoute {
            method: Method::$method,
            path: $path,
            access: UiAccess::$access,
            handler: |ui| -> Pin<Box<dyn Future<Output = UiReply> + Send>> {
                Box::pin($handler(ui))
            },
        }
    };
}

/// Every route of the UI. Entity names start with a letter, so `_new` and `_test` never clash
/// with one.
pub static UI_ROUTES: &[UiRoute] = &[
    ui_route!(GET "/ui", Session, pages::home),
    ui_route!(GET "/ui/login", Public, pages::login_page),
    ui_route!(POST "/ui/login", Public, pages::login),
    ui_route!(POST "/ui/logout", Session, pages::logout),
    ui_route!(GET "/ui/static/{file}", Public, assets::serve),
    ui_route!(POST "/ui/environment", Session, pages::switch_environment),
    ui_route!(GET "/ui/environments", Session, pages::environments),
    ui_route!(POST "/ui/environments", Session, pages::create_environment),
    // Flags.
    ui_route!(GET "/ui/flags", Session, pages::flags),
    ui_route!(GET "/ui/flags/_new", Session, pages::new_flag),
    ui_route!(POST "/ui/flags", Session, pages::create_flag),
    ui_route!(GET "/ui/flags/{name}", Session, pages::edit_flag),
    ui_route!(POST "/ui/flags/{name}", Session, pages::save_flag),
    ui_route!(POST "/ui/flags/{name}/toggle", Session, pages::toggle_flag),
    ui_route!(POST "/ui/flags/{name}/delete", Session, pages::delete_flag),
    ui_route!(GET "/ui/flags/{name}/exposures", Session, pages::flag_exposures),
    // Configs.
    ui_route!(GET "/ui/configs", Session, pages::configs),
    ui_route!(GET "/ui/configs/_new", Session, pages::new_config),
    ui_route!(POST "/ui/configs", Session, pages::create_config),
    ui_route!(GET "/ui/configs/{name}", Session, pages::edit_config),
    ui_route!(POST "/ui/configs/{name}", Session, pages::save_config),
    ui_route!(POST "/ui/configs/{name}/delete", Session, pages::delete_config),
    // Segments.
    ui_route!(GET "/ui/segments", Session, pages::segments),
    ui_route!(GET "/ui/segments/_new", Session, pages::new_segment),
    ui_route!(POST "/ui/segments", Session, pages::create_segment),
    ui_route!(POST "/ui/segments/_test", Session, pages::test_segments),
    ui_route!(GET "/ui/segments/{name}", Session, pages::edit_segment),
    ui_route!(POST "/ui/segments/{name}", Session, pages::save_segment),
    ui_route!(POST "/ui/segments/{name}/delete", Session, pages::delete_segment),
    // Experiments.
    ui_route!(GET "/ui/experiments", Session, pages::experiments),
    ui_route!(GET "/ui/experiments/_new", Session, pages::new_experiment),
    ui_route!(POST "/ui/experiments", Session, pages::create_experiment),
    ui_route!(GET "/ui/experiments/{name}", Session, pages::edit_experiment),
    ui_route!(POST "/ui/experiments/{name}", Session, pages::save_experiment),
    ui_route!(POST "/ui/experiments/{name}/start", Session, pages::start_experiment),
    ui_route!(POST "/ui/experiments/{name}/stop", Session, pages::stop_experiment),
    ui_route!(POST "/ui/experiments/{name}/delete", Session, pages::delete_experiment),
    ui_route!(GET "/ui/experiments/{name}/results", Session, results::page),
    // Administration.
    ui_route!(GET "/ui/audit", Session, pages::audit),
    ui_route!(GET "/ui/keys", Session, pages::keys),
    ui_route!(POST "/ui/keys", Session, pages::create_key),
    ui_route!(POST "/ui/keys/{id}/revoke", Session, pages::revoke_key),
    ui_route!(GET "/ui/guide", Session, guide::page),
];

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

/// Whether a request wants JSON back (the UI's `fetch()` calls).
fn wants_json(req: &Request) -> bool {
    req.header("accept")
        .is_some_and(|a| a.contains("application/json"))
}

/// The principal of insecure dev mode signs nothing real; its CSRF token comes from a
/// per-process random secret.
fn dev_session() -> Session {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    let secret = SECRET.get_or_init(rand::random);
    Session {
        key_id: "insecure-dev-mode".into(),
        expires: i64::MAX,
        csrf: session::csrf_token(secret, "insecure-dev-mode"),
    }
}

/// Serves a `/ui` request.
pub async fn dispatch(state: Arc<AppState>, req: Request) -> Response {
    let mut candidates: Vec<(usize, Vec<String>)> = UI_ROUTES
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match_path(r.path, &req.segments).map(|p| (i, p)))
        .collect();
    candidates.sort_by_key(|(_, params)| params.len());
    if let Some(best) = candidates.first().map(|(_, p)| p.len()) {
        candidates.retain(|(_, p)| p.len() == best);
    }
    let head = req.method == Method::HEAD;
    let found = candidates.iter().position(|(i, _)| {
        UI_ROUTES[*i].method == req.method || (head && UI_ROUTES[*i].method == Method::GET)
    });
    let Some(pos) = found else {
        let status = if candidates.is_empty() {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::METHOD_NOT_ALLOWED
        };
        return error_page(
            &req,
            &ApiError::new(status, "not_found", "There is no such page."),
        );
    };
    let (index, params) = candidates.swap_remove(pos);
    let route = &UI_ROUTES[index];
    let mut resp = match run(state, req, route, params).await {
        Ok(resp) | Err(resp) => resp,
    };
    if head {
        *resp.body_mut() = Bytes::new().into();
    }
    resp
}

async fn run(
    state: Arc<AppState>,
    req: Request,
    route: &UiRoute,
    params: Vec<String>,
) -> Result<Response, Response> {
    let post = req.method == Method::POST;
    if route.path == "/ui/static/{file}" {
        let ui = Ui {
            state,
            req,
            params,
            session: None,
            form: forms::Form::default(),
        };
        return Ok((route.handler)(ui)
            .await
            .unwrap_or_else(ApiError::into_response));
    }
    // The per-IP API limit covers the UI too (static assets excepted).
    if let Err(e) = state
        .limiter
        .check(
            state.redis.as_ref(),
            crate::ratelimit::Limit::Api,
            &crate::api::client_ip(&state, &req),
        )
        .await
    {
        return Err(error_page(&req, &e));
    }
    if post && !session::same_origin(&req) {
        return Err(error_page(
            &req,
            &ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This form was sent from another site; it has been refused.",
            ),
        ));
    }
    let session = if state.settings.insecure_dev_mode {
        Some(dev_session())
    } else {
        session::cookie(&req, session::COOKIE).and_then(|value| {
            session::verify(value, &state.keys, chrono::Utc::now().timestamp()).ok()
        })
    };
    if route.access == UiAccess::Session {
        let Some(s) = &session else {
            if wants_json(&req) {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "your session has ended; log in again",
                )
                .into_response());
            }
            let next = if req.method == Method::GET {
                format!("/{}", req.segments.join("/"))
            } else {
                "/ui".into()
            };
            let mut resp = redirect(&format!("/ui/login?next={}", forms::encode(&next)));
            // A stale cookie (expired, revoked key) is cleared.
            if session::cookie(&req, session::COOKIE).is_some() {
                add_header(
                    &mut resp,
                    header::SET_COOKIE,
                    &session::set_cookie(&req, session::COOKIE, "", 0),
                );
            }
            return Err(resp);
        };
        let form = forms::Form::parse(&req);
        if post
            && !session::csrf_matches(
                s,
                req.header("x-csrf-token").or_else(|| form.first("_csrf")),
            )
        {
            return Err(error_page(
                &req,
                &ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "This form is out of date or did not come from this page (its security token does not match). Reload the page and try again.",
                ),
            ));
        }
        let ui = Ui {
            state,
            form,
            req,
            params,
            session,
        };
        let json = wants_json(&ui.req);
        let req_for_errors = (ui.req.method.clone(), json);
        return match (route.handler)(ui).await {
            Ok(resp) => Ok(resp),
            Err(e) if req_for_errors.1 => Err(e.into_response()),
            Err(e) => Err(error_page_plain(&e)),
        };
    }
    let form = forms::Form::parse(&req);
    let ui = Ui {
        state,
        form,
        req,
        params,
        session,
    };
    (route.handler)(ui).await.map_err(|e| error_page_plain(&e))
}

impl Ui {
    /// The session (dev mode has one too); routes with [`UiAccess::Session`] always have it.
    pub fn session(&self) -> Session {
        self.session.clone().unwrap_or_else(dev_session)
    }

    /// The acting key id, for the audit log.
    pub fn actor(&self) -> String {
        self.session().key_id
    }

    /// The `n`th path parameter.
    pub fn param(&self, n: usize) -> &str {
        self.params.get(n).map_or("", String::as_str)
    }

    /// The environment the admin works in: the `ofk_env` cookie when it names one, else
    /// `production` (else the first environment).
    pub fn env(&self) -> String {
        if let Some(e) = session::cookie(&self.req, ENV_COOKIE)
            && let Ok(e) = crate::web::percent_decode(e, false)
            && self.state.has_environment(&e)
        {
            return e;
        }
        let default = optifork_core::model::DEFAULT_ENVIRONMENT;
        if self.state.has_environment(default) {
            return default.to_owned();
        }
        self.state
            .versions()
            .into_iter()
            .next()
            .map_or_else(|| default.to_owned(), |(name, _)| name)
    }

    /// The frame every page shares.
    pub fn layout(&self, title: impl Into<String>, nav: &'static str) -> Layout {
        let flash = session::cookie(&self.req, FLASH_COOKIE)
            .and_then(|v| crate::web::percent_decode(v, true).ok())
            .filter(|v| !v.is_empty());
        let (flash_kind, flash) = match flash {
            Some(f) => match f.split_once(':') {
                Some(("error", msg)) => ("error", Some(msg.to_owned())),
                Some(("ok", msg)) => ("ok", Some(msg.to_owned())),
                _ => ("ok", Some(f)),
            },
            None => ("ok", None),
        };
        Layout {
            title: title.into(),
            nav,
            csrf: self.session().csrf,
            environment: self.env(),
            environments: self
                .state
                .versions()
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
            actor: self.actor(),
            flash,
            flash_kind,
            path: format!("/{}", self.req.segments.join("/")),
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            dev_mode: self.state.settings.insecure_dev_mode,
        }
    }

    /// Renders a page (200), clearing a flash message it displayed.
    pub fn page<T: Template>(&self, t: &T) -> UiReply {
        self.page_with_status(t, StatusCode::OK)
    }

    /// Renders a page with a status (a form with errors is 422), clearing a shown flash.
    pub fn page_with_status<T: Template>(&self, t: &T, status: StatusCode) -> UiReply {
        let mut resp = render(t, status)?;
        if session::cookie(&self.req, FLASH_COOKIE).is_some() {
            add_header(
                &mut resp,
                header::SET_COOKIE,
                &session::set_cookie(&self.req, FLASH_COOKIE, "", 0),
            );
        }
        Ok(resp)
    }

    /// 303 to `location`, with a message for the next page.
    pub fn redirect_flash(&self, location: &str, message: &str) -> UiReply {
        let mut resp = redirect(location);
        add_header(
            &mut resp,
            header::SET_COOKIE,
            &session::set_cookie(&self.req, FLASH_COOKIE, &forms::encode(message), 60),
        );
        Ok(resp)
    }

    /// Whether the caller is a `fetch()` wanting JSON.
    pub fn wants_json(&self) -> bool {
        wants_json(&self.req)
    }

    /// The server's public base URL, as the browser sees it (for the integration guide).
    pub fn public_url(&self) -> String {
        let proto = self
            .req
            .header("x-forwarded-proto")
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|p| *p == "http" || *p == "https")
            .unwrap_or("http");
        let host = self
            .req
            .header("x-forwarded-host")
            .or_else(|| self.req.header("host"))
            .and_then(|h| h.split(',').next())
            .map(str::trim)
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c))
            })
            .map_or_else(|| self.state.settings.listen.to_string(), str::to_owned);
        format!("{proto}://{host}")
    }
}

/// The cookie holding the selected environment.
pub const ENV_COOKIE: &str = "ofk_env";
/// The cookie carrying a one-time message to the next page.
pub const FLASH_COOKIE: &str = "ofk_flash";

/// What every page's frame shows.
pub struct Layout {
    /// The page title.
    pub title: String,
    /// The active section of the sidebar.
    pub nav: &'static str,
    /// The session's CSRF token.
    pub csrf: String,
    /// The selected environment.
    pub environment: String,
    /// Every environment.
    pub environments: Vec<String>,
    /// The logged-in key id.
    pub actor: String,
    /// A one-time message.
    pub flash: Option<String>,
    /// `ok` or `error`.
    pub flash_kind: &'static str,
    /// This page's path (where the environment switcher comes back to).
    pub path: String,
    /// The stylesheet's URL.
    pub css: String,
    /// The script's URL.
    pub js: String,
    /// Whether authentication is off.
    pub dev_mode: bool,
}

impl Layout {
    /// `aria-current` for a sidebar link.
    pub fn current(&self, section: &str) -> &'static str {
        if self.nav == section { "page" } else { "false" }
    }
}

fn add_header(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(name, v);
    }
}

/// Security headers of every UI page: nothing but this origin's own scripts and styles runs,
/// no framing, no caching of pages that show data.
fn secure_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Renders a template as an HTML response.
pub fn render<T: Template>(t: &T, status: StatusCode) -> UiReply {
    let html = t
        .render()
        .map_err(|e| ApiError::internal(format!("rendering a page: {e}")))?;
    let mut resp =
        crate::web::bytes_response(status, "text/html; charset=utf-8", Bytes::from(html));
    secure_headers(&mut resp);
    Ok(resp)
}

/// A 303 See Other.
pub fn redirect(location: &str) -> Response {
    let mut resp = Response::new(Bytes::new().into());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    add_header(&mut resp, header::LOCATION, location);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A small JSON answer for `fetch()` calls.
pub fn json_ok(body: serde_json::Value) -> UiReply {
    let mut resp = crate::web::ok(&body);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    message: String,
    css: String,
}

fn error_page(req: &Request, e: &ApiError) -> Response {
    if wants_json(req) {
        return e.clone().into_response();
    }
    error_page_plain(e)
}

fn error_page_plain(e: &ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let page = ErrorPage {
        status: e.status.as_u16(),
        title: title.into(),
        message: e.message.clone(),
        css: assets::url("app.css"),
    };
    let mut resp = render(&page, e.status).unwrap_or_else(|err| err.into_response());
    for (name, value) in &e.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// `GET /` sends browsers to the UI.
pub fn root_redirect() -> Response {
    redirect("/ui")
}

/// A JSON error body for `fetch()` calls, from a message.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    crate::web::json_response(
        status,
        &json!({"error": {"code": "invalid", "message": message, "field": null}}),
    )
}
