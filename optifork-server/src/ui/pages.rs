//! The UI's pages: login, the four entity kinds (list, editor, actions), exposures, audit
//! log, API keys and environments.
//!
//! Every write builds the same JSON body the API takes and hands it to the API's own
//! functions (`entities::create_entity`, `update_entity`, `delete_entity`, `admin::new_key`,
//! ...), so validation is identical; a refused write re-renders the form with the user's input
//! and the error at the field its JSON path names (422).

use askama::Template;
use http::StatusCode;
use optifork_core::JsonPath;
use optifork_storage::{AuditFilter, EntityKind, EntityRef, ExposureFilter, KeyScope, Record};
use serde_json::{Map, Value as Json, json};

use super::forms::{
    FieldErrors, Form, compact, encode, json_field, json_object_field, list_field, num,
    number_field, pretty, split_field,
};
use super::{Layout, Ui, UiReply, json_ok, redirect, session};
use crate::api::{admin, entities, evaluate};
use crate::web::ApiError;

const SPLIT: &str = "__split__";

fn path_key(base: &str, key: &str) -> String {
    // JsonPath renders keys the way compile errors do (`.name` or `["odd key"]`).
    let rendered = JsonPath::root().key(key).to_string();
    format!("{base}{}", rendered.trim_start_matches('$'))
}

/// A timestamp for people.
pub fn when(ts: &chrono::DateTime<chrono::Utc>) -> String {
    ts.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How long ago, for lists: "just now", "5 min ago", "3 h ago", then the date.
pub fn ago(ts: &chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - *ts).num_seconds();
    match secs {
        ..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        86_400..172_800 => "yesterday".into(),
        _ => ts.format("%Y-%m-%d").to_string(),
    }
}

fn str_of(v: &Json) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

async fn list(ui: &Ui, kind: EntityKind) -> Result<Vec<Record>, ApiError> {
    Ok(ui.state.storage.list(kind, &ui.env()).await?)
}

async fn names(ui: &Ui, kind: EntityKind) -> Result<Vec<String>, ApiError> {
    Ok(list(ui, kind).await?.into_iter().map(|r| r.name).collect())
}

async fn get(ui: &Ui, kind: EntityKind, name: &str) -> Result<Record, ApiError> {
    Ok(ui
        .state
        .storage
        .get(kind, &ui.env(), &EntityRef::Name(name.to_owned()))
        .await?)
}

/// Creates (`original` = None) or updates an entity from a UI form's JSON, through the API's
/// own functions.
async fn save(
    ui: &Ui,
    kind: EntityKind,
    original: Option<&str>,
    body: Json,
) -> Result<Record, ApiError> {
    let body = entities::check_body(kind, body)?;
    let env = ui.env();
    let actor = ui.actor();
    match original {
        None => entities::create_entity(&ui.state, &actor, &env, kind, body).await,
        Some(name) => {
            let if_match = match ui.form.first("version").map(str::trim) {
                Some(v) if !v.is_empty() => v.parse::<i64>().ok(),
                _ => None,
            };
            entities::update_entity(
                &ui.state,
                &actor,
                &env,
                kind,
                &EntityRef::Name(name.to_owned()),
                body,
                if_match,
            )
            .await
        }
    }
}

async fn remove(ui: &Ui, kind: EntityKind) -> UiReply {
    let name = ui.param(0).to_owned();
    let list_url = format!("/ui/{}", kind.plural());
    match entities::delete_entity(
        &ui.state,
        &ui.actor(),
        &ui.env(),
        kind,
        &EntityRef::Name(name.clone()),
        None,
    )
    .await
    {
        Ok(_) => ui.redirect_flash(&list_url, &format!("ok:Deleted {kind} {name}.")),
        Err(e) if e.status == StatusCode::CONFLICT || e.status == StatusCode::BAD_REQUEST => ui
            .redirect_flash(
                &format!("/ui/{}/{}", kind.plural(), encode(&name)),
                &format!("error:Could not delete {kind} {name}: {}", e.message),
            ),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Login, logout, environments.

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
}

fn safe_next(next: &str) -> String {
    if next.starts_with("/ui") && !next.starts_with("//") && !next.contains('\\') {
        next.to_owned()
    } else {
        "/ui".to_owned()
    }
}

/// GET /ui: the flags list is home.
pub async fn home(_ui: Ui) -> UiReply {
    Ok(redirect("/ui/flags"))
}

/// GET /ui/login
pub async fn login_page(ui: Ui) -> UiReply {
    let next = safe_next(ui.req.query_param("next").unwrap_or("/ui"));
    if ui.session.is_some() {
        return Ok(redirect(&next));
    }
    let notice = session::cookie(&ui.req, super::FLASH_COOKIE)
        .and_then(|v| crate::web::percent_decode(v, true).ok())
        .map(|v| v.trim_start_matches("ok:").to_owned());
    let page = LoginPage {
        css: super::assets::url("app.css"),
        next,
        error: None,
        notice,
    };
    ui.page(&page)
}

/// POST /ui/login `key=…&next=…`: admin keys only.
pub async fn login(ui: Ui) -> UiReply {
    let next = safe_next(&ui.form.get("next"));
    let key = ui.form.get("key");
    let key = key.trim();
    let refuse = |status: StatusCode, msg: &str| {
        let page = LoginPage {
            css: super::assets::url("app.css"),
            next: next.clone(),
            error: Some(msg.to_owned()),
            notice: None,
        };
        ui.page_with_status(&page, status)
    };
    if key.is_empty() {
        return refuse(StatusCode::UNAUTHORIZED, "Enter an admin API key.");
    }
    let principal = match ui.state.keys.verify(key) {
        Ok(p) => p,
        Err(_) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "That key is not valid, or it has been revoked.",
            );
        }
    };
    if principal.scope != KeyScope::Admin {
        return refuse(
            StatusCode::FORBIDDEN,
            "This is an SDK key. The admin UI needs an admin key.",
        );
    }
    let Some(stored) = ui.state.keys.get(&principal.key_id) else {
        return refuse(StatusCode::UNAUTHORIZED, "That key is not valid.");
    };
    let expires = chrono::Utc::now().timestamp() + session::LIFETIME_SECS;
    let value = session::sign(&principal.key_id, &stored.secret_hash, expires);
    let mut resp = redirect(&next);
    if let Ok(v) = http::HeaderValue::from_str(&session::set_cookie(
        &ui.req,
        session::COOKIE,
        &value,
        session::LIFETIME_SECS,
    )) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// POST /ui/logout
pub async fn logout(ui: Ui) -> UiReply {
    let mut resp = redirect("/ui/login");
    for (name, value, age) in [
        (session::COOKIE, "", 0),
        (super::FLASH_COOKIE, "ok%3AYou%20are%20logged%20out.", 60),
    ] {
        if let Ok(v) = http::HeaderValue::from_str(&session::set_cookie(&ui.req, name, value, age))
        {
            resp.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// POST /ui/environment `environment=…&next=…`: the environment switcher.
pub async fn switch_environment(ui: Ui) -> UiReply {
    let env = ui.form.get("environment");
    let next = safe_next(&ui.form.get("next"));
    if !ui.state.has_environment(&env) {
        return Err(ApiError::not_found(format!(
            "environment {env:?} not found"
        )));
    }
    let mut resp = redirect(&next);
    if let Ok(v) = http::HeaderValue::from_str(&session::set_cookie(
        &ui.req,
        super::ENV_COOKIE,
        &encode(&env),
        365 * 24 * 3600,
    )) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
    Ok(resp)
}

struct EnvRow {
    name: String,
    version: i64,
    created: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "environments.html")]
struct EnvironmentsPage {
    layout: Layout,
    rows: Vec<EnvRow>,
    new_name: String,
    errors: FieldErrors,
}

async fn environments_page(ui: &Ui, new_name: String, errors: FieldErrors) -> UiReply {
    let current = ui.env();
    let rows = ui
        .state
        .storage
        .list_environments()
        .await?
        .into_iter()
        .map(|e| EnvRow {
            current: e.name == current,
            name: e.name,
            version: e.version,
            created: when(&e.created_at),
        })
        .collect();
    let status = if errors.any {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = EnvironmentsPage {
        layout: ui.layout("Environments", "environments"),
        rows,
        new_name,
        errors,
    };
    ui.page_with_status(&page, status)
}

/// GET /ui/environments
pub async fn environments(ui: Ui) -> UiReply {
    environments_page(&ui, String::new(), FieldErrors::none()).await
}

/// POST /ui/environments `name=…`
pub async fn create_environment(ui: Ui) -> UiReply {
    let name = ui.form.get("name").trim().to_owned();
    match admin::new_environment(&ui.state, &ui.actor(), &name).await {
        Ok(env) => ui.redirect_flash(
            "/ui/environments",
            &format!("ok:Created environment {}.", env.name),
        ),
        Err(e) if e.status.is_client_error() => {
            let errors = FieldErrors::place(&e, &["$.name".to_owned()]);
            environments_page(&ui, name, errors).await
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Flags.

struct FlagRow {
    name: String,
    description: String,
    enabled: bool,
    kind: String,
    rollout: String,
    rollout_width: String,
    tags: Vec<String>,
    rules: usize,
    updated: String,
}

#[derive(Template)]
#[template(path = "flags.html")]
struct FlagsPage {
    layout: Layout,
    rows: Vec<FlagRow>,
    q: String,
    tag: String,
    all_tags: Vec<String>,
    total: usize,
}

/// The kind of a flag's body, inferred as the core does when absent.
fn flag_kind(body: &Json) -> String {
    if let Some(k) = body["kind"].as_str() {
        return k.to_owned();
    }
    let values: Vec<&Json> = body["variants"]
        .as_array()
        .map(|vs| vs.iter().map(|v| &v["value"]).collect())
        .unwrap_or_default();
    if values.is_empty() || values.iter().all(|v| v.is_boolean()) {
        "boolean".into()
    } else if values.iter().all(|v| v.is_string()) {
        "string".into()
    } else if values.iter().all(|v| v.is_number()) {
        "number".into()
    } else {
        "json".into()
    }
}

fn pct(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// GET /ui/flags?q=&tag=
pub async fn flags(ui: Ui) -> UiReply {
    let q = ui.req.query_param("q").unwrap_or("").trim().to_owned();
    let tag = ui.req.query_param("tag").unwrap_or("").to_owned();
    let records = list(&ui, EntityKind::Flag).await?;
    let mut all_tags: Vec<String> = records
        .iter()
        .flat_map(|r| r.body["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    all_tags.sort();
    all_tags.dedup();
    let total = records.len();
    let needle = q.to_lowercase();
    let rows = records
        .iter()
        .filter(|r| {
            needle.is_empty()
                || r.name.to_lowercase().contains(&needle)
                || r.body["description"]
                    .as_str()
                    .is_some_and(|d| d.to_lowercase().contains(&needle))
        })
        .filter(|r| {
            tag.is_empty()
                || r.body["tags"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().any(|t| t == tag.as_str()))
        })
        .map(|r| {
            let rollout = r.body["rollout_percentage"].as_f64().unwrap_or(100.0);
            FlagRow {
                name: r.name.clone(),
                description: str_of(&r.body["description"]),
                enabled: r.body["is_enabled"].as_bool().unwrap_or(false),
                kind: flag_kind(&r.body),
                rollout: pct(rollout),
                rollout_width: format!("{:.2}", rollout.clamp(0.0, 100.0)),
                tags: r.body["tags"]
                    .as_array()
                    .map(|ts| {
                        ts.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                rules: r.body["rules"].as_array().map_or(0, Vec::len),
                updated: ago(&r.updated_at),
            }
        })
        .collect();
    let page = FlagsPage {
        layout: ui.layout("Feature flags", "flags"),
        rows,
        q,
        tag,
        all_tags,
        total,
    };
    ui.page(&page)
}

struct VariantRow {
    name: String,
    value: String,
    description: String,
    path: String,
    name_path: String,
    value_path: String,
}

struct RuleRow {
    description: String,
    condition: String,
    serve: String,
    split: String,
    bucket_by: String,
    path: String,
    condition_path: String,
    serve_path: String,
}

struct PrereqRow {
    flag: String,
    variants: String,
    path: String,
}

/// A flag as its editor shows it: every value as the user typed it.
struct FlagForm {
    name: String,
    description: String,
    is_enabled: bool,
    rollout: String,
    targeting: String,
    kind: String,
    variants: Vec<VariantRow>,
    rules: Vec<RuleRow>,
    default_serve: String,
    default_split: String,
    off_variant: String,
    prereqs: Vec<PrereqRow>,
    tags: String,
    salt: String,
    bucket_by: String,
    track: bool,
    version: String,
}

fn variant_row(i: usize, name: String, value: String, description: String) -> VariantRow {
    VariantRow {
        name,
        value,
        description,
        path: format!("$.variants[{i}]"),
        name_path: format!("$.variants[{i}].name"),
        value_path: format!("$.variants[{i}].value"),
    }
}

fn rule_row(
    i: usize,
    description: String,
    condition: String,
    serve: String,
    split: String,
    bucket_by: String,
) -> RuleRow {
    RuleRow {
        description,
        condition,
        serve,
        split,
        bucket_by,
        path: format!("$.rules[{i}]"),
        condition_path: format!("$.rules[{i}].condition"),
        serve_path: format!("$.rules[{i}].serve"),
    }
}

fn serve_to_form(serve: &Json) -> (String, String) {
    if let Some(v) = serve["variant"].as_str() {
        return (v.to_owned(), String::new());
    }
    if let Some(parts) = serve["rollout"].as_array() {
        let split = parts
            .iter()
            .map(|p| {
                format!(
                    "{}:{}",
                    p["variant"].as_str().unwrap_or(""),
                    compact(&p["weight"])
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return (SPLIT.to_owned(), split);
    }
    (String::new(), String::new())
}

fn value_to_form(kind: &str, v: &Json) -> String {
    match (kind, v) {
        ("string", Json::String(s)) => s.clone(),
        _ => compact(v),
    }
}

impl FlagForm {
    fn blank() -> FlagForm {
        FlagForm {
            name: String::new(),
            description: String::new(),
            is_enabled: false,
            rollout: "100".into(),
            targeting: String::new(),
            kind: "boolean".into(),
            variants: vec![
                variant_row(0, "on".into(), "true".into(), String::new()),
                variant_row(1, "off".into(), "false".into(), String::new()),
            ],
            rules: Vec::new(),
            default_serve: String::new(),
            default_split: String::new(),
            off_variant: String::new(),
            prereqs: Vec::new(),
            tags: String::new(),
            salt: String::new(),
            bucket_by: String::new(),
            track: false,
            version: String::new(),
        }
    }

    fn from_record(r: &Record) -> FlagForm {
        let b = &r.body;
        let kind = flag_kind(b);
        let mut variants: Vec<VariantRow> = b["variants"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        variant_row(
                            i,
                            str_of(&v["name"]),
                            value_to_form(&kind, &v["value"]),
                            str_of(&v["description"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if variants.is_empty() && kind == "boolean" {
            variants = FlagForm::blank().variants;
        }
        let rules = b["rules"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let (serve, split) = serve_to_form(&r["serve"]);
                        rule_row(
                            i,
                            str_of(&r["description"]),
                            pretty(&r["condition"]),
                            serve,
                            split,
                            str_of(&r["serve"]["bucket_by"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (default_serve, default_split) = serve_to_form(&b["default"]);
        let prereqs = b["prerequisites"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .enumerate()
                    .map(|(i, p)| PrereqRow {
                        flag: str_of(&p["flag"]),
                        variants: p["variants"]
                            .as_array()
                            .map(|vs| {
                                vs.iter()
                                    .filter_map(|v| v.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default(),
                        path: format!("$.prerequisites[{i}]"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        FlagForm {
            name: r.name.clone(),
            description: str_of(&b["description"]),
            is_enabled: b["is_enabled"].as_bool().unwrap_or(false),
            rollout: b["rollout_percentage"]
                .as_f64()
                .map_or_else(|| "100".into(), |v| compact(&num(v))),
            targeting: pretty(&b["targeting_rules"]),
            kind,
            variants,
            rules,
            default_serve,
            default_split,
            off_variant: str_of(&b["off_variant"]),
            prereqs,
            tags: b["tags"]
                .as_array()
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            salt: str_of(&b["salt"]),
            bucket_by: str_of(&b["bucket_by"]),
            track: b["track"].as_bool().unwrap_or(false),
            version: r.version.to_string(),
        }
    }

    fn from_form(f: &Form) -> FlagForm {
        let names = f.all("variant_name");
        let values = f.all("variant_value");
        let descs = f.all("variant_description");
        let variants = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                variant_row(
                    i,
                    n,
                    values.get(i).cloned().unwrap_or_default(),
                    descs.get(i).cloned().unwrap_or_default(),
                )
            })
            .filter(|v| !(v.name.trim().is_empty() && v.value.trim().is_empty()))
            .collect();
        let conds = f.all("rule_condition");
        let serves = f.all("rule_serve");
        let splits = f.all("rule_split");
        let rdescs = f.all("rule_description");
        let buckets = f.all("rule_bucket_by");
        let rules = conds
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                rule_row(
                    i,
                    rdescs.get(i).cloned().unwrap_or_default(),
                    c,
                    serves.get(i).cloned().unwrap_or_default(),
                    splits.get(i).cloned().unwrap_or_default(),
                    buckets.get(i).cloned().unwrap_or_default(),
                )
            })
            .collect();
        let pvars = f.all("prereq_variants");
        let prereqs = f
            .all("prereq_flag")
            .into_iter()
            .enumerate()
            .filter(|(_, flag)| !flag.is_empty())
            .map(|(i, flag)| PrereqRow {
                flag,
                variants: pvars.get(i).cloned().unwrap_or_default(),
                path: format!("$.prerequisites[{i}]"),
            })
            .collect();
        FlagForm {
            name: f.get("name").trim().to_owned(),
            description: f.get("description"),
            is_enabled: f.checked("is_enabled"),
            rollout: f.get("rollout_percentage"),
            targeting: f.get("targeting_rules"),
            kind: f.get("kind"),
            variants,
            rules,
            default_serve: f.get("default_serve"),
            default_split: f.get("default_split"),
            off_variant: f.get("off_variant"),
            prereqs,
            tags: f.get("tags"),
            salt: f.get("salt"),
            bucket_by: f.get("bucket_by"),
            track: f.checked("track"),
            version: f.get("version"),
        }
    }

    fn fields(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "$.name",
            "$.description",
            "$.is_enabled",
            "$.rollout_percentage",
            "$.targeting_rules",
            "$.kind",
            "$.variants",
            "$.rules",
            "$.default",
            "$.off_variant",
            "$.prerequisites",
            "$.tags",
            "$.salt",
            "$.bucket_by",
            "$.track",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for r in &self.variants {
            v.extend([r.path.clone(), r.name_path.clone(), r.value_path.clone()]);
        }
        for r in &self.rules {
            v.extend([
                r.path.clone(),
                r.condition_path.clone(),
                r.serve_path.clone(),
            ]);
        }
        v.extend(self.prereqs.iter().map(|p| p.path.clone()));
        v
    }

    fn variant_value(&self, row: &VariantRow) -> Result<Json, ApiError> {
        let text = row.value.trim();
        let err =
            |msg: String| ApiError::bad_request("invalid_value", msg).with_field(&row.value_path);
        match self.kind.as_str() {
            "boolean" => match text {
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                _ => Err(err(format!(
                    "a boolean flag's values are true or false (got {text:?})"
                ))),
            },
            "number" => number_field(text, &row.value_path)?
                .map(num)
                .ok_or_else(|| err("a number flag's values are numbers".into())),
            "string" => Ok(Json::String(row.value.clone())),
            _ => json_field(text, &row.value_path)?.ok_or_else(|| err("enter a JSON value".into())),
        }
    }

    fn serve_json(
        serve: &str,
        split: &str,
        bucket_by: &str,
        field: &str,
    ) -> Result<Json, ApiError> {
        let mut m = Map::new();
        if serve == SPLIT {
            m.insert("rollout".into(), Json::Array(split_field(split, field)?));
        } else if serve.is_empty() {
            return Err(
                ApiError::bad_request("invalid_serve", "choose a variant to serve")
                    .with_field(field),
            );
        } else {
            m.insert("variant".into(), Json::from(serve));
        }
        if !bucket_by.trim().is_empty() {
            m.insert("bucket_by".into(), Json::from(bucket_by.trim()));
        }
        Ok(Json::Object(m))
    }

    /// The flag's JSON body, as the API takes it.
    fn to_json(&self) -> Result<Json, ApiError> {
        let mut m = Map::new();
        m.insert("name".into(), Json::from(self.name.clone()));
        m.insert("description".into(), Json::from(self.description.clone()));
        m.insert("is_enabled".into(), Json::Bool(self.is_enabled));
        let rollout = number_field(&self.rollout, "$.rollout_percentage")?.unwrap_or(100.0);
        m.insert("rollout_percentage".into(), num(rollout));
        m.insert(
            "targeting_rules".into(),
            json_object_field(&self.targeting, "$.targeting_rules")?.unwrap_or_else(|| json!({})),
        );
        m.insert("kind".into(), Json::from(self.kind.clone()));
        let mut variants = Vec::new();
        for row in &self.variants {
            let mut v = Map::new();
            v.insert("name".into(), Json::from(row.name.trim()));
            v.insert("value".into(), self.variant_value(row)?);
            if !row.description.trim().is_empty() {
                v.insert("description".into(), Json::from(row.description.trim()));
            }
            variants.push(Json::Object(v));
        }
        let implicit = self.kind == "boolean"
            && variants
                == vec![
                    json!({"name": "on", "value": true}),
                    json!({"name": "off", "value": false}),
                ];
        m.insert(
            "variants".into(),
            Json::Array(if implicit { Vec::new() } else { variants }),
        );
        let mut rules = Vec::new();
        for r in &self.rules {
            let mut rule = Map::new();
            if !r.description.trim().is_empty() {
                rule.insert("description".into(), Json::from(r.description.trim()));
            }
            rule.insert(
                "condition".into(),
                json_object_field(&r.condition, &r.condition_path)?.unwrap_or_else(|| json!({})),
            );
            rule.insert(
                "serve".into(),
                FlagForm::serve_json(&r.serve, &r.split, &r.bucket_by, &r.serve_path)?,
            );
            rules.push(Json::Object(rule));
        }
        m.insert("rules".into(), Json::Array(rules));
        m.insert(
            "default".into(),
            if self.default_serve.is_empty() {
                Json::Null
            } else {
                FlagForm::serve_json(&self.default_serve, &self.default_split, "", "$.default")?
            },
        );
        m.insert(
            "off_variant".into(),
            if self.off_variant.is_empty() {
                Json::Null
            } else {
                Json::from(self.off_variant.clone())
            },
        );
        let prereqs: Vec<Json> = self
            .prereqs
            .iter()
            .map(|p| {
                let vs = list_field(&p.variants);
                if vs.is_empty() {
                    json!({"flag": p.flag})
                } else {
                    json!({"flag": p.flag, "variants": vs})
                }
            })
            .collect();
        m.insert("prerequisites".into(), Json::Array(prereqs));
        m.insert(
            "tags".into(),
            Json::Array(list_field(&self.tags).into_iter().map(Json::from).collect()),
        );
        for (k, v) in [("salt", &self.salt), ("bucket_by", &self.bucket_by)] {
            m.insert(
                k.into(),
                if v.trim().is_empty() {
                    Json::Null
                } else {
                    Json::from(v.trim())
                },
            );
        }
        m.insert("track".into(), Json::Bool(self.track));
        Ok(Json::Object(m))
    }

    fn variant_names(&self) -> Vec<String> {
        self.variants
            .iter()
            .map(|v| v.name.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    }
}

#[derive(Template)]
#[template(path = "flag_edit.html")]
struct FlagEditPage {
    layout: Layout,
    creating: bool,
    original: String,
    action: String,
    form: FlagForm,
    errors: FieldErrors,
    variant_names: Vec<String>,
    segments: Vec<String>,
    other_flags: Vec<String>,
    updated: String,
    kinds: Vec<&'static str>,
    blank_variant: VariantRow,
    blank_rule: RuleRow,
    blank_prereq: PrereqRow,
    no_errors: FieldErrors,
}

impl FlagEditPage {
    fn split_value(&self) -> &'static str {
        SPLIT
    }
}

async fn flag_editor(
    ui: &Ui,
    original: Option<&str>,
    form: FlagForm,
    errors: FieldErrors,
    updated: String,
) -> UiReply {
    let other_flags = names(ui, EntityKind::Flag)
        .await?
        .into_iter()
        .filter(|n| Some(n.as_str()) != original)
        .collect();
    let status = if errors.any {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let title = match original {
        Some(n) => format!("Flag {n}"),
        None => "New flag".into(),
    };
    let page = FlagEditPage {
        layout: ui.layout(title, "flags"),
        creating: original.is_none(),
        original: original.unwrap_or_default().to_owned(),
        action: match original {
            Some(n) => format!("/ui/flags/{}", encode(n)),
            None => "/ui/flags".into(),
        },
        variant_names: form.variant_names(),
        form,
        errors,
        segments: names(ui, EntityKind::Segment).await?,
        other_flags,
        updated,
        kinds: vec!["boolean", "string", "number", "json"],
        blank_variant: variant_row(0, String::new(), String::new(), String::new()),
        blank_rule: rule_row(
            0,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ),
        blank_prereq: PrereqRow {
            flag: String::new(),
            variants: String::new(),
            path: String::new(),
        },
        no_errors: FieldErrors::none(),
    };
    ui.page_with_status(&page, status)
}

/// GET /ui/flags/_new
pub async fn new_flag(ui: Ui) -> UiReply {
    flag_editor(
        &ui,
        None,
        FlagForm::blank(),
        FieldErrors::none(),
        String::new(),
    )
    .await
}

/// GET /ui/flags/{name}
pub async fn edit_flag(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    let record = get(&ui, EntityKind::Flag, &name).await?;
    flag_editor(
        &ui,
        Some(&name),
        FlagForm::from_record(&record),
        FieldErrors::none(),
        when(&record.updated_at),
    )
    .await
}

async fn submit_flag(ui: Ui, original: Option<String>) -> UiReply {
    let form = FlagForm::from_form(&ui.form);
    let result = match form.to_json() {
        Ok(body) => save(&ui, EntityKind::Flag, original.as_deref(), body).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => ui.redirect_flash(
            &format!("/ui/flags/{}", encode(&r.name)),
            &format!(
                "ok:{} flag {}.",
                if original.is_some() {
                    "Saved"
                } else {
                    "Created"
                },
                r.name
            ),
        ),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let errors = FieldErrors::place(&e, &form.fields());
            flag_editor(&ui, original.as_deref(), form, errors, String::new()).await
        }
        Err(e) => Err(e),
    }
}

/// POST /ui/flags
pub async fn create_flag(ui: Ui) -> UiReply {
    submit_flag(ui, None).await
}

/// POST /ui/flags/{name}
pub async fn save_flag(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    submit_flag(ui, Some(name)).await
}

/// POST /ui/flags/{name}/toggle `enabled=true|false`: the kill switch.
pub async fn toggle_flag(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    let enabled = ui.form.checked("enabled");
    let mut patch = Map::new();
    patch.insert("is_enabled".into(), Json::Bool(enabled));
    let record = entities::update_entity(
        &ui.state,
        &ui.actor(),
        &ui.env(),
        EntityKind::Flag,
        &EntityRef::Name(name.clone()),
        patch,
        None,
    )
    .await?;
    if ui.wants_json() {
        return json_ok(json!({
            "name": record.name,
            "is_enabled": record.body["is_enabled"],
            "version": record.version,
        }));
    }
    let back = safe_back(&ui.form.get("next"), "/ui/flags");
    ui.redirect_flash(
        &back,
        &format!(
            "ok:Flag {name} is now {}.",
            if enabled { "on" } else { "off" }
        ),
    )
}

fn safe_back(next: &str, default: &str) -> String {
    if next.starts_with("/ui") && !next.starts_with("//") {
        next.to_owned()
    } else {
        default.to_owned()
    }
}

/// POST /ui/flags/{name}/delete
pub async fn delete_flag(ui: Ui) -> UiReply {
    remove(&ui, EntityKind::Flag).await
}

struct ExposureRow {
    at: String,
    user: String,
    variant: String,
    enabled: String,
    context: String,
}

#[derive(Template)]
#[template(path = "exposures.html")]
struct ExposuresPage {
    layout: Layout,
    name: String,
    rows: Vec<ExposureRow>,
    next: Option<i64>,
    counts: Vec<(String, usize)>,
}

/// GET /ui/flags/{name}/exposures?before_id=
pub async fn flag_exposures(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    get(&ui, EntityKind::Flag, &name).await?;
    let before_id = ui
        .req
        .query_param("before_id")
        .and_then(|v| v.parse::<i64>().ok());
    let limit = 100;
    let rows = ui
        .state
        .storage
        .list_exposures(
            &ui.env(),
            &ExposureFilter {
                flag_name: Some(name.clone()),
                before_id,
                limit,
                ..ExposureFilter::default()
            },
        )
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in &rows {
        let v = r.exposure.variant.clone().unwrap_or_else(|| "—".into());
        match counts.iter_mut().find(|(n, _)| *n == v) {
            Some((_, c)) => *c += 1,
            None => counts.push((v, 1)),
        }
    }
    let rows = rows
        .into_iter()
        .map(|r| ExposureRow {
            at: r.exposure.timestamp.format("%Y-%m-%d %H:%M:%S").to_string(),
            user: r.exposure.user_id,
            variant: r.exposure.variant.unwrap_or_default(),
            enabled: match r.exposure.enabled {
                Some(true) => "on".into(),
                Some(false) => "off".into(),
                None => String::new(),
            },
            context: r
                .exposure
                .user_context
                .as_ref()
                .map(compact)
                .unwrap_or_default(),
        })
        .collect();
    let page = ExposuresPage {
        layout: ui.layout(format!("Exposures of {name}"), "flags"),
        name,
        rows,
        next,
        counts,
    };
    ui.page(&page)
}

// ---------------------------------------------------------------------------------------
// Configs.

struct ConfigRow {
    name: String,
    description: String,
    active: bool,
    keys: String,
    overrides: usize,
    updated: String,
}

#[derive(Template)]
#[template(path = "configs.html")]
struct ConfigsPage {
    layout: Layout,
    rows: Vec<ConfigRow>,
}

/// GET /ui/configs
pub async fn configs(ui: Ui) -> UiReply {
    let rows = list(&ui, EntityKind::Config)
        .await?
        .into_iter()
        .map(|r| {
            let keys: Vec<String> = r.body["config_data"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let mut shown = keys.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
            if keys.len() > 4 {
                shown.push_str(&format!(", +{}", keys.len() - 4));
            }
            ConfigRow {
                description: str_of(&r.body["description"]),
                active: r.body["is_active"].as_bool().unwrap_or(true),
                keys: shown,
                overrides: r.body["overrides"].as_array().map_or(0, Vec::len),
                updated: ago(&r.updated_at),
                name: r.name,
            }
        })
        .collect();
    let page = ConfigsPage {
        layout: ui.layout("Remote configs", "configs"),
        rows,
    };
    ui.page(&page)
}

struct OverrideRow {
    description: String,
    segment: String,
    condition: String,
    data: String,
    path: String,
    segment_path: String,
    condition_path: String,
    data_path: String,
}

fn override_row(
    i: usize,
    description: String,
    segment: String,
    condition: String,
    data: String,
) -> OverrideRow {
    OverrideRow {
        description,
        segment,
        condition,
        data,
        path: format!("$.overrides[{i}]"),
        segment_path: format!("$.overrides[{i}].segment"),
        condition_path: format!("$.overrides[{i}].condition"),
        data_path: format!("$.overrides[{i}].config_data"),
    }
}

struct ConfigForm {
    name: String,
    description: String,
    is_active: bool,
    data: String,
    overrides: Vec<OverrideRow>,
    version: String,
}

impl ConfigForm {
    fn blank() -> ConfigForm {
        ConfigForm {
            name: String::new(),
            description: String::new(),
            is_active: true,
            data: "{\n  \n}".into(),
            overrides: Vec::new(),
            version: String::new(),
        }
    }

    fn from_record(r: &Record) -> ConfigForm {
        let b = &r.body;
        ConfigForm {
            name: r.name.clone(),
            description: str_of(&b["description"]),
            is_active: b["is_active"].as_bool().unwrap_or(true),
            data: serde_json::to_string_pretty(&b["config_data"]).unwrap_or_default(),
            overrides: b["overrides"]
                .as_array()
                .map(|os| {
                    os.iter()
                        .enumerate()
                        .map(|(i, o)| {
                            override_row(
                                i,
                                str_of(&o["description"]),
                                str_of(&o["segment"]),
                                pretty(&o["condition"]),
                                serde_json::to_string_pretty(&o["config_data"]).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            version: r.version.to_string(),
        }
    }

    fn from_form(f: &Form) -> ConfigForm {
        let descs = f.all("override_description");
        let segs = f.all("override_segment");
        let conds = f.all("override_condition");
        let overrides = f
            .all("override_data")
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                override_row(
                    i,
                    descs.get(i).cloned().unwrap_or_default(),
                    segs.get(i).cloned().unwrap_or_default(),
                    conds.get(i).cloned().unwrap_or_default(),
                    d,
                )
            })
            .collect();
        ConfigForm {
            name: f.get("name").trim().to_owned(),
            description: f.get("description"),
            is_active: f.checked("is_active"),
            data: f.get("config_data"),
            overrides,
            version: f.get("version"),
        }
    }

    fn fields(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "$.name",
            "$.description",
            "$.is_active",
            "$.config_data",
            "$.overrides",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for o in &self.overrides {
            v.extend([
                o.path.clone(),
                o.segment_path.clone(),
                o.condition_path.clone(),
                o.data_path.clone(),
            ]);
        }
        v
    }

    fn to_json(&self) -> Result<Json, ApiError> {
        let data = json_object_field(&self.data, "$.config_data")?.unwrap_or_else(|| json!({}));
        let mut overrides = Vec::new();
        for o in &self.overrides {
            let mut m = Map::new();
            if !o.description.trim().is_empty() {
                m.insert("description".into(), Json::from(o.description.trim()));
            }
            if !o.segment.is_empty() {
                m.insert("segment".into(), Json::from(o.segment.clone()));
            }
            if let Some(c) = json_object_field(&o.condition, &o.condition_path)? {
                m.insert("condition".into(), c);
            }
            m.insert(
                "config_data".into(),
                json_object_field(&o.data, &o.data_path)?.unwrap_or_else(|| json!({})),
            );
            overrides.push(Json::Object(m));
        }
        Ok(json!({
            "name": self.name,
            "description": self.description,
            "is_active": self.is_active,
            "config_data": data,
            "overrides": overrides,
        }))
    }
}

#[derive(Template)]
#[template(path = "config_edit.html")]
struct ConfigEditPage {
    layout: Layout,
    creating: bool,
    original: String,
    action: String,
    form: ConfigForm,
    errors: FieldErrors,
    segments: Vec<String>,
    updated: String,
    blank_override: OverrideRow,
    no_errors: FieldErrors,
}

async fn config_editor(
    ui: &Ui,
    original: Option<&str>,
    form: ConfigForm,
    errors: FieldErrors,
    updated: String,
) -> UiReply {
    let status = if errors.any {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ConfigEditPage {
        layout: ui.layout(
            original.map_or_else(|| "New config".into(), |n| format!("Config {n}")),
            "configs",
        ),
        creating: original.is_none(),
        original: original.unwrap_or_default().to_owned(),
        action: original.map_or_else(
            || "/ui/configs".into(),
            |n| format!("/ui/configs/{}", encode(n)),
        ),
        form,
        errors,
        segments: names(ui, EntityKind::Segment).await?,
        updated,
        blank_override: override_row(
            0,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ),
        no_errors: FieldErrors::none(),
    };
    ui.page_with_status(&page, status)
}

/// GET /ui/configs/_new
pub async fn new_config(ui: Ui) -> UiReply {
    config_editor(
        &ui,
        None,
        ConfigForm::blank(),
        FieldErrors::none(),
        String::new(),
    )
    .await
}

/// GET /ui/configs/{name}
pub async fn edit_config(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    let r = get(&ui, EntityKind::Config, &name).await?;
    config_editor(
        &ui,
        Some(&name),
        ConfigForm::from_record(&r),
        FieldErrors::none(),
        when(&r.updated_at),
    )
    .await
}

async fn submit_config(ui: Ui, original: Option<String>) -> UiReply {
    let form = ConfigForm::from_form(&ui.form);
    let result = match form.to_json() {
        Ok(body) => save(&ui, EntityKind::Config, original.as_deref(), body).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => ui.redirect_flash(
            &format!("/ui/configs/{}", encode(&r.name)),
            &format!("ok:Saved config {}.", r.name),
        ),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let errors = FieldErrors::place(&e, &form.fields());
            config_editor(&ui, original.as_deref(), form, errors, String::new()).await
        }
        Err(e) => Err(e),
    }
}

/// POST /ui/configs
pub async fn create_config(ui: Ui) -> UiReply {
    submit_config(ui, None).await
}

/// POST /ui/configs/{name}
pub async fn save_config(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    submit_config(ui, Some(name)).await
}

/// POST /ui/configs/{name}/delete
pub async fn delete_config(ui: Ui) -> UiReply {
    remove(&ui, EntityKind::Config).await
}

// ---------------------------------------------------------------------------------------
// Segments.

struct SegmentRow {
    name: String,
    description: String,
    active: bool,
    criteria: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "segments.html")]
struct SegmentsPage {
    layout: Layout,
    rows: Vec<SegmentRow>,
}

/// GET /ui/segments
pub async fn segments(ui: Ui) -> UiReply {
    let rows = list(&ui, EntityKind::Segment)
        .await?
        .into_iter()
        .map(|r| SegmentRow {
            description: str_of(&r.body["description"]),
            active: r.body["is_active"].as_bool().unwrap_or(true),
            criteria: compact(&r.body["criteria"]),
            updated: ago(&r.updated_at),
            name: r.name,
        })
        .collect();
    let page = SegmentsPage {
        layout: ui.layout("Segments", "segments"),
        rows,
    };
    ui.page(&page)
}

struct SegmentForm {
    name: String,
    description: String,
    is_active: bool,
    criteria: String,
    version: String,
}

impl SegmentForm {
    fn to_json(&self) -> Result<Json, ApiError> {
        Ok(json!({
            "name": self.name,
            "description": self.description,
            "is_active": self.is_active,
            "criteria": json_object_field(&self.criteria, "$.criteria")?.unwrap_or_else(|| json!({})),
        }))
    }
}

#[derive(Template)]
#[template(path = "segment_edit.html")]
struct SegmentEditPage {
    layout: Layout,
    creating: bool,
    original: String,
    action: String,
    form: SegmentForm,
    errors: FieldErrors,
    updated: String,
    used_by: Vec<(String, String)>,
}

/// Entities whose JSON mentions `{"$segment": name}` or `"segment": name`.
async fn segment_users(ui: &Ui, name: &str) -> Result<Vec<(String, String)>, ApiError> {
    fn mentions(v: &Json, name: &str) -> bool {
        match v {
            Json::Object(m) => m.iter().any(|(k, v)| {
                ((k == "$segment" || k == "segment") && v.as_str() == Some(name))
                    || mentions(v, name)
            }),
            Json::Array(a) => a.iter().any(|v| mentions(v, name)),
            _ => false,
        }
    }
    let mut out = Vec::new();
    for kind in EntityKind::ALL {
        for r in list(ui, kind).await? {
            if !(kind == EntityKind::Segment && r.name == name) && mentions(&r.body, name) {
                out.push((
                    format!("{} {}", kind.as_str(), r.name),
                    format!("/ui/{}/{}", kind.plural(), encode(&r.name)),
                ));
            }
        }
    }
    Ok(out)
}

async fn segment_editor(
    ui: &Ui,
    original: Option<&str>,
    form: SegmentForm,
    errors: FieldErrors,
    updated: String,
) -> UiReply {
    let status = if errors.any {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let used_by = match original {
        Some(n) => segment_users(ui, n).await?,
        None => Vec::new(),
    };
    let page = SegmentEditPage {
        layout: ui.layout(
            original.map_or_else(|| "New segment".into(), |n| format!("Segment {n}")),
            "segments",
        ),
        creating: original.is_none(),
        original: original.unwrap_or_default().to_owned(),
        action: original.map_or_else(
            || "/ui/segments".into(),
            |n| format!("/ui/segments/{}", encode(n)),
        ),
        form,
        errors,
        updated,
        used_by,
    };
    ui.page_with_status(&page, status)
}

/// GET /ui/segments/_new
pub async fn new_segment(ui: Ui) -> UiReply {
    let form = SegmentForm {
        name: String::new(),
        description: String::new(),
        is_active: true,
        criteria: String::new(),
        version: String::new(),
    };
    segment_editor(&ui, None, form, FieldErrors::none(), String::new()).await
}

/// GET /ui/segments/{name}
pub async fn edit_segment(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    let r = get(&ui, EntityKind::Segment, &name).await?;
    let form = SegmentForm {
        name: r.name.clone(),
        description: str_of(&r.body["description"]),
        is_active: r.body["is_active"].as_bool().unwrap_or(true),
        criteria: pretty(&r.body["criteria"]),
        version: r.version.to_string(),
    };
    segment_editor(
        &ui,
        Some(&name),
        form,
        FieldErrors::none(),
        when(&r.updated_at),
    )
    .await
}

async fn submit_segment(ui: Ui, original: Option<String>) -> UiReply {
    let form = SegmentForm {
        name: ui.form.get("name").trim().to_owned(),
        description: ui.form.get("description"),
        is_active: ui.form.checked("is_active"),
        criteria: ui.form.get("criteria"),
        version: ui.form.get("version"),
    };
    let result = match form.to_json() {
        Ok(body) => save(&ui, EntityKind::Segment, original.as_deref(), body).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => ui.redirect_flash(
            &format!("/ui/segments/{}", encode(&r.name)),
            &format!("ok:Saved segment {}.", r.name),
        ),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let fields: Vec<String> = ["$.name", "$.description", "$.is_active", "$.criteria"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            let errors = FieldErrors::place(&e, &fields);
            segment_editor(&ui, original.as_deref(), form, errors, String::new()).await
        }
        Err(e) => Err(e),
    }
}

/// POST /ui/segments
pub async fn create_segment(ui: Ui) -> UiReply {
    submit_segment(ui, None).await
}

/// POST /ui/segments/{name}
pub async fn save_segment(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    submit_segment(ui, Some(name)).await
}

/// POST /ui/segments/{name}/delete
pub async fn delete_segment(ui: Ui) -> UiReply {
    remove(&ui, EntityKind::Segment).await
}

/// POST /ui/segments/_test `context=<JSON>`: which segments the context is in (JSON for
/// `fetch()`; otherwise back to the segments page with the answer).
pub async fn test_segments(ui: Ui) -> UiReply {
    let text = ui.form.get("context");
    let ctx = match json_object_field(&text, "context") {
        Ok(Some(Json::Object(m))) => m,
        Ok(_) => Map::new(),
        Err(e) => {
            if ui.wants_json() {
                return Err(e);
            }
            return ui.redirect_flash("/ui/segments", &format!("error:{}", e.message));
        }
    };
    let matched = evaluate::matching_segments(&ui.state, &ui.env(), ctx)?;
    if ui.wants_json() {
        return json_ok(json!({"segments": matched}));
    }
    let msg = if matched.is_empty() {
        "ok:That context is in no segment.".to_owned()
    } else {
        format!("ok:That context is in: {}.", matched.join(", "))
    };
    ui.redirect_flash("/ui/segments", &msg)
}

// ---------------------------------------------------------------------------------------
// Experiments.

struct ExperimentRow {
    name: String,
    description: String,
    active: bool,
    variants: String,
    flag: String,
    metrics: usize,
    updated: String,
}

#[derive(Template)]
#[template(path = "experiments.html")]
struct ExperimentsPage {
    layout: Layout,
    rows: Vec<ExperimentRow>,
}

fn experiment_variants(body: &Json) -> Vec<String> {
    body["variants"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.as_str().or_else(|| v["name"].as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// GET /ui/experiments
pub async fn experiments(ui: Ui) -> UiReply {
    let rows = list(&ui, EntityKind::Experiment)
        .await?
        .into_iter()
        .map(|r| {
            let splits = &r.body["traffic_splits"];
            let variants = experiment_variants(&r.body)
                .into_iter()
                .map(|v| match splits[&v].as_f64() {
                    Some(s) => format!("{v} {}", pct(s)),
                    None => v,
                })
                .collect::<Vec<_>>()
                .join(" · ");
            ExperimentRow {
                description: str_of(&r.body["description"]),
                active: r.body["is_active"].as_bool().unwrap_or(false),
                variants,
                flag: str_of(&r.body["flag"]),
                metrics: r.body["metrics"].as_array().map_or(0, Vec::len),
                updated: ago(&r.updated_at),
                name: r.name,
            }
        })
        .collect();
    let page = ExperimentsPage {
        layout: ui.layout("Experiments", "experiments"),
        rows,
    };
    ui.page(&page)
}

struct ArmRow {
    name: String,
    split: String,
    path: String,
    split_path: String,
}

struct MetricRow {
    name: String,
    event: String,
    kind: String,
    path: String,
}

struct ExperimentForm {
    name: String,
    description: String,
    flag: String,
    arms: Vec<ArmRow>,
    control: String,
    allocation: String,
    targeting: String,
    metrics: Vec<MetricRow>,
    layer: String,
    layer_start: String,
    layer_end: String,
    salt: String,
    bucket_by: String,
    start_now: bool,
    version: String,
}

fn arm_row(i: usize, name: String, split: String) -> ArmRow {
    ArmRow {
        split_path: path_key("$.traffic_splits", &name),
        name,
        split,
        path: format!("$.variants[{i}]"),
    }
}

fn metric_row(i: usize, name: String, event: String, kind: String) -> MetricRow {
    MetricRow {
        name,
        event,
        kind,
        path: format!("$.metrics[{i}]"),
    }
}

impl ExperimentForm {
    fn blank() -> ExperimentForm {
        ExperimentForm {
            name: String::new(),
            description: String::new(),
            flag: String::new(),
            arms: vec![
                arm_row(0, "control".into(), "50".into()),
                arm_row(1, "treatment".into(), "50".into()),
            ],
            control: "control".into(),
            allocation: "100".into(),
            targeting: String::new(),
            metrics: vec![metric_row(
                0,
                "conversion_rate".into(),
                "purchase".into(),
                "conversion".into(),
            )],
            layer: String::new(),
            layer_start: String::new(),
            layer_end: String::new(),
            salt: String::new(),
            bucket_by: String::new(),
            start_now: false,
            version: String::new(),
        }
    }

    fn from_record(r: &Record) -> ExperimentForm {
        let b = &r.body;
        let arms = experiment_variants(b)
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let split = b["traffic_splits"][&v]
                    .as_f64()
                    .map(|s| compact(&num(s)))
                    .unwrap_or_default();
                arm_row(i, v, split)
            })
            .collect();
        let metrics = b["metrics"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .enumerate()
                    .map(|(i, m)| {
                        metric_row(
                            i,
                            str_of(&m["name"]),
                            str_of(&m["event"]),
                            str_of(&m["type"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let range = &b["layer"]["range"];
        ExperimentForm {
            name: r.name.clone(),
            description: str_of(&b["description"]),
            flag: str_of(&b["flag"]),
            arms,
            control: b["control"].as_str().unwrap_or("control").to_owned(),
            allocation: b["allocation"]
                .as_f64()
                .map_or_else(|| "100".into(), |a| compact(&num(a))),
            targeting: pretty(&b["targeting_rules"]),
            metrics,
            layer: str_of(&b["layer"]["name"]),
            layer_start: range[0]
                .as_f64()
                .map(|v| compact(&num(v)))
                .unwrap_or_default(),
            layer_end: range[1]
                .as_f64()
                .map(|v| compact(&num(v)))
                .unwrap_or_default(),
            salt: str_of(&b["salt"]),
            bucket_by: str_of(&b["bucket_by"]),
            start_now: false,
            version: r.version.to_string(),
        }
    }

    fn from_form(f: &Form) -> ExperimentForm {
        let splits = f.all("arm_split");
        let arms = f
            .all("arm_name")
            .into_iter()
            .zip(splits.into_iter().chain(std::iter::repeat(String::new())))
            .filter(|(n, s)| !(n.trim().is_empty() && s.trim().is_empty()))
            .enumerate()
            .map(|(i, (n, s))| arm_row(i, n.trim().to_owned(), s))
            .collect();
        let events = f.all("metric_event");
        let kinds = f.all("metric_type");
        let metrics = f
            .all("metric_name")
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n,
                    events.get(i).cloned().unwrap_or_default(),
                    kinds.get(i).cloned().unwrap_or_default(),
                )
            })
            .filter(|(n, e, _)| !(n.trim().is_empty() && e.trim().is_empty()))
            .enumerate()
            .map(|(i, (n, e, k))| metric_row(i, n.trim().to_owned(), e.trim().to_owned(), k))
            .collect();
        ExperimentForm {
            name: f.get("name").trim().to_owned(),
            description: f.get("description"),
            flag: f.get("flag"),
            arms,
            control: f.get("control").trim().to_owned(),
            allocation: f.get("allocation"),
            targeting: f.get("targeting_rules"),
            metrics,
            layer: f.get("layer_name").trim().to_owned(),
            layer_start: f.get("layer_start"),
            layer_end: f.get("layer_end"),
            salt: f.get("salt"),
            bucket_by: f.get("bucket_by"),
            start_now: f.checked("start_now"),
            version: f.get("version"),
        }
    }

    fn fields(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "$.name",
            "$.description",
            "$.flag",
            "$.flag_id",
            "$.variants",
            "$.traffic_splits",
            "$.control",
            "$.allocation",
            "$.targeting_rules",
            "$.metrics",
            "$.layer",
            "$.salt",
            "$.bucket_by",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for a in &self.arms {
            v.extend([a.path.clone(), a.split_path.clone()]);
        }
        v.extend(self.metrics.iter().map(|m| m.path.clone()));
        v
    }

    fn to_json(&self, creating: bool) -> Result<Json, ApiError> {
        let mut m = Map::new();
        m.insert("name".into(), Json::from(self.name.clone()));
        m.insert("description".into(), Json::from(self.description.clone()));
        m.insert(
            "flag".into(),
            if self.flag.is_empty() {
                Json::Null
            } else {
                Json::from(self.flag.clone())
            },
        );
        if self.flag.is_empty() {
            m.insert("flag_id".into(), Json::Null);
        }
        let names: Vec<Json> = self
            .arms
            .iter()
            .map(|a| Json::from(a.name.clone()))
            .collect();
        m.insert("variants".into(), Json::Array(names));
        let mut splits = Map::new();
        let mut any_split = false;
        for a in &self.arms {
            if let Some(s) = number_field(&a.split, &a.split_path)? {
                any_split = true;
                splits.insert(a.name.clone(), num(s));
            }
        }
        m.insert(
            "traffic_splits".into(),
            if any_split {
                Json::Object(splits)
            } else {
                Json::Null
            },
        );
        m.insert(
            "control".into(),
            if self.control.is_empty() {
                Json::Null
            } else {
                Json::from(self.control.clone())
            },
        );
        m.insert(
            "allocation".into(),
            num(number_field(&self.allocation, "$.allocation")?.unwrap_or(100.0)),
        );
        m.insert(
            "targeting_rules".into(),
            json_object_field(&self.targeting, "$.targeting_rules")?.unwrap_or_else(|| json!({})),
        );
        let metrics: Vec<Json> = self
            .metrics
            .iter()
            .map(|x| json!({"name": x.name, "event": x.event, "type": x.kind}))
            .collect();
        m.insert("metrics".into(), Json::Array(metrics));
        m.insert(
            "layer".into(),
            if self.layer.is_empty() {
                Json::Null
            } else {
                let start = number_field(&self.layer_start, "$.layer")?.unwrap_or(0.0);
                let end = number_field(&self.layer_end, "$.layer")?.unwrap_or(100.0);
                json!({"name": self.layer, "range": [num(start), num(end)]})
            },
        );
        for (k, v) in [("salt", &self.salt), ("bucket_by", &self.bucket_by)] {
            m.insert(
                k.into(),
                if v.trim().is_empty() {
                    Json::Null
                } else {
                    Json::from(v.trim())
                },
            );
        }
        if creating {
            m.insert("is_active".into(), Json::Bool(self.start_now));
        }
        Ok(Json::Object(m))
    }
}

#[derive(Template)]
#[template(path = "experiment_edit.html")]
struct ExperimentEditPage {
    layout: Layout,
    creating: bool,
    original: String,
    action: String,
    form: ExperimentForm,
    errors: FieldErrors,
    flags: Vec<String>,
    updated: String,
    active: bool,
    metric_types: Vec<&'static str>,
    blank_arm: ArmRow,
    blank_metric: MetricRow,
    no_errors: FieldErrors,
}

async fn experiment_editor(
    ui: &Ui,
    original: Option<&str>,
    form: ExperimentForm,
    errors: FieldErrors,
    updated: String,
    active: bool,
) -> UiReply {
    let status = if errors.any {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ExperimentEditPage {
        layout: ui.layout(
            original.map_or_else(|| "New experiment".into(), |n| format!("Experiment {n}")),
            "experiments",
        ),
        creating: original.is_none(),
        original: original.unwrap_or_default().to_owned(),
        action: original.map_or_else(
            || "/ui/experiments".into(),
            |n| format!("/ui/experiments/{}", encode(n)),
        ),
        form,
        errors,
        flags: names(ui, EntityKind::Flag).await?,
        updated,
        active,
        metric_types: crate::api::results::METRIC_TYPES.to_vec(),
        blank_arm: ArmRow {
            name: String::new(),
            split: String::new(),
            path: String::new(),
            split_path: String::new(),
        },
        blank_metric: metric_row(0, String::new(), String::new(), "conversion".into()),
        no_errors: FieldErrors::none(),
    };
    ui.page_with_status(&page, status)
}

/// GET /ui/experiments/_new
pub async fn new_experiment(ui: Ui) -> UiReply {
    experiment_editor(
        &ui,
        None,
        ExperimentForm::blank(),
        FieldErrors::none(),
        String::new(),
        false,
    )
    .await
}

/// GET /ui/experiments/{name}
pub async fn edit_experiment(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    let r = get(&ui, EntityKind::Experiment, &name).await?;
    experiment_editor(
        &ui,
        Some(&name),
        ExperimentForm::from_record(&r),
        FieldErrors::none(),
        when(&r.updated_at),
        r.body["is_active"].as_bool().unwrap_or(false),
    )
    .await
}

async fn submit_experiment(ui: Ui, original: Option<String>) -> UiReply {
    let form = ExperimentForm::from_form(&ui.form);
    let result = match form.to_json(original.is_none()) {
        Ok(body) => save(&ui, EntityKind::Experiment, original.as_deref(), body).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => ui.redirect_flash(
            &format!("/ui/experiments/{}", encode(&r.name)),
            &format!("ok:Saved experiment {}.", r.name),
        ),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let errors = FieldErrors::place(&e, &form.fields());
            let active = match &original {
                Some(n) => get(&ui, EntityKind::Experiment, n)
                    .await
                    .map(|r| r.body["is_active"].as_bool().unwrap_or(false))
                    .unwrap_or(false),
                None => false,
            };
            experiment_editor(
                &ui,
                original.as_deref(),
                form,
                errors,
                String::new(),
                active,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// POST /ui/experiments
pub async fn create_experiment(ui: Ui) -> UiReply {
    submit_experiment(ui, None).await
}

/// POST /ui/experiments/{name}
pub async fn save_experiment(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    submit_experiment(ui, Some(name)).await
}

async fn set_running(ui: Ui, running: bool) -> UiReply {
    let name = ui.param(0).to_owned();
    let mut patch = Map::new();
    patch.insert("is_active".into(), Json::Bool(running));
    let url = format!("/ui/experiments/{}", encode(&name));
    match entities::update_entity(
        &ui.state,
        &ui.actor(),
        &ui.env(),
        EntityKind::Experiment,
        &EntityRef::Name(name.clone()),
        patch,
        None,
    )
    .await
    {
        Ok(_) => ui.redirect_flash(
            &url,
            &format!(
                "ok:Experiment {name} {}.",
                if running { "started" } else { "stopped" }
            ),
        ),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            ui.redirect_flash(&url, &format!("error:{}", e.message))
        }
        Err(e) => Err(e),
    }
}

/// POST /ui/experiments/{name}/start
pub async fn start_experiment(ui: Ui) -> UiReply {
    set_running(ui, true).await
}

/// POST /ui/experiments/{name}/stop
pub async fn stop_experiment(ui: Ui) -> UiReply {
    set_running(ui, false).await
}

/// POST /ui/experiments/{name}/delete
pub async fn delete_experiment(ui: Ui) -> UiReply {
    remove(&ui, EntityKind::Experiment).await
}

// ---------------------------------------------------------------------------------------
// Audit log.

struct AuditRow {
    id: i64,
    at: String,
    actor: String,
    action: String,
    entity_type: String,
    entity_name: String,
    environment: String,
    link: Option<String>,
    diff: Vec<super::diff::Line>,
    added: usize,
    removed: usize,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    rows: Vec<AuditRow>,
    entity_type: String,
    entity_name: String,
    all_envs: bool,
    next: Option<String>,
    types: Vec<&'static str>,
}

/// GET /ui/audit?entity_type=&entity_name=&all=&before_id=
pub async fn audit(ui: Ui) -> UiReply {
    let q = |k: &str| {
        ui.req
            .query_param(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let all_envs = q("all").is_some();
    let env = ui.env();
    let limit = 50;
    let filter = AuditFilter {
        entity_type: q("entity_type"),
        entity_name: q("entity_name"),
        environment: (!all_envs).then(|| env.clone()),
        before_id: q("before_id").and_then(|v| v.parse().ok()),
        limit,
    };
    let entries = ui.state.storage.list_audit(&filter).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|id| {
            let mut url = format!("/ui/audit?before_id={id}");
            for (k, v) in [
                ("entity_type", &filter.entity_type),
                ("entity_name", &filter.entity_name),
            ] {
                if let Some(v) = v {
                    url.push_str(&format!("&{k}={}", encode(v)));
                }
            }
            if all_envs {
                url.push_str("&all=1");
            }
            url
        });
    let rows = entries
        .into_iter()
        .map(|e| {
            let strip = |v: &Option<Json>| -> Json {
                match v {
                    Some(Json::Object(m)) => {
                        let mut m = m.clone();
                        // Bookkeeping that changes on every write; the version is kept.
                        m.remove("updated_at");
                        Json::Object(m)
                    }
                    Some(v) => v.clone(),
                    None => Json::Null,
                }
            };
            let diff = super::diff::json_diff(&strip(&e.before), &strip(&e.after));
            let added = diff.iter().filter(|l| l.kind == "add").count();
            let removed = diff.iter().filter(|l| l.kind == "del").count();
            let plural = match e.entity_type.as_str() {
                "flag" => Some("flags"),
                "config" => Some("configs"),
                "segment" => Some("segments"),
                "experiment" => Some("experiments"),
                _ => None,
            };
            let link = plural
                .filter(|_| e.action != "delete" && e.environment.as_deref() == Some(&env))
                .map(|p| format!("/ui/{p}/{}", encode(&e.entity_name)));
            AuditRow {
                id: e.id,
                at: when(&e.at),
                actor: e.actor,
                action: e.action,
                entity_type: e.entity_type,
                entity_name: e.entity_name,
                environment: e.environment.unwrap_or_default(),
                link,
                diff,
                added,
                removed,
            }
        })
        .collect();
    let page = AuditPage {
        layout: ui.layout("Audit log", "audit"),
        rows,
        entity_type: filter.entity_type.unwrap_or_default(),
        entity_name: filter.entity_name.unwrap_or_default(),
        all_envs,
        next,
        types: vec![
            "flag",
            "config",
            "segment",
            "experiment",
            "api_key",
            "environment",
        ],
    };
    ui.page(&page)
}

// ---------------------------------------------------------------------------------------
// API keys.

struct KeyRow {
    id: String,
    name: String,
    scope: String,
    environment: String,
    created: String,
    revoked: Option<String>,
    is_self: bool,
}

struct NewKey {
    key: String,
    name: String,
    scope: String,
    environment: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    layout: Layout,
    rows: Vec<KeyRow>,
    new_key: Option<NewKey>,
    errors: FieldErrors,
    form_name: String,
    form_scope: String,
    form_env: String,
}

async fn keys_page(
    ui: &Ui,
    new_key: Option<NewKey>,
    errors: FieldErrors,
    form: (String, String, String),
) -> UiReply {
    let me = ui.actor();
    let mut rows: Vec<KeyRow> = ui
        .state
        .storage
        .list_api_keys()
        .await?
        .into_iter()
        .map(|k| KeyRow {
            is_self: k.id == me,
            scope: match k.scope {
                KeyScope::Admin => "admin".into(),
                KeyScope::Sdk => "sdk".into(),
            },
            environment: k.environment.unwrap_or_default(),
            created: ago(&k.created_at),
            revoked: k.revoked_at.as_ref().map(ago),
            id: k.id,
            name: k.name,
        })
        .collect();
    // Active keys first, newest first.
    rows.reverse();
    rows.sort_by_key(|r| r.revoked.is_some());
    let status = if errors.any {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = KeysPage {
        layout: ui.layout("API keys", "keys"),
        rows,
        new_key,
        errors,
        form_name: form.0,
        form_scope: form.1,
        form_env: form.2,
    };
    let mut resp = ui.page_with_status(&page, status)?;
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// GET /ui/keys
pub async fn keys(ui: Ui) -> UiReply {
    let env = ui.env();
    keys_page(
        &ui,
        None,
        FieldErrors::none(),
        (String::new(), "sdk".into(), env),
    )
    .await
}

/// POST /ui/keys `name=…&scope=admin|sdk&environment=…`: the new key is shown on this
/// response only (not redirected, never stored).
pub async fn create_key(ui: Ui) -> UiReply {
    let name = ui.form.get("name").trim().to_owned();
    let scope_text = ui.form.get("scope");
    let env = ui.form.get("environment");
    let scope = if scope_text == "admin" {
        KeyScope::Admin
    } else {
        KeyScope::Sdk
    };
    let environment = (scope == KeyScope::Sdk).then(|| env.clone());
    match admin::new_key(&ui.state, &ui.actor(), &name, scope, environment).await {
        Ok(out) => {
            let shown = NewKey {
                key: str_of(&out["key"]),
                name: str_of(&out["name"]),
                scope: scope_text.clone(),
                environment: str_of(&out["environment"]),
            };
            keys_page(
                &ui,
                Some(shown),
                FieldErrors::none(),
                (String::new(), scope_text, env),
            )
            .await
        }
        Err(e) if e.status.is_client_error() => {
            let fields: Vec<String> = ["$.name", "$.scope", "$.environment"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            let errors = FieldErrors::place(&e, &fields);
            keys_page(&ui, None, errors, (name, scope_text, env)).await
        }
        Err(e) => Err(e),
    }
}

/// POST /ui/keys/{id}/revoke
pub async fn revoke_key(ui: Ui) -> UiReply {
    let id = ui.param(0).to_owned();
    admin::revoke(&ui.state, &ui.actor(), &id).await?;
    if id == ui.actor() {
        // The session's own key: the session ends with it.
        return Ok(redirect("/ui/login"));
    }
    ui.redirect_flash("/ui/keys", &format!("ok:Revoked key {id}."))
}
