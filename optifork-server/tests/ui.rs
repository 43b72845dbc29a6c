//! The admin UI against the real binary: login (admin keys only), the signed session cookie,
//! CSRF and same-origin checks, every page with and without a session, and UI writes going
//! through the API's validation.

mod common;

use common::{ADMIN_KEY, Backend, Server, send};
use optifork_server::ui::{UI_ROUTES, UiAccess};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

/// Sends a urlencoded form, as browsers do.
trait FormExt {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder;
}

impl FormExt for reqwest::RequestBuilder {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

fn encode(s: &str) -> String {
    optifork_server::ui::forms::encode(s).replace('/', "%2F")
}

/// A client that does not follow redirects (the UI answers forms with 303).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with `key`; the session cookie (`name=value`) or the refusal's status.
async fn login(s: &Server, key: &str) -> Result<String, u16> {
    let resp = client()
        .post(s.url("/ui/login"))
        .form_pairs(&[("key", key), ("next", "/ui/flags")])
        .send()
        .await
        .unwrap();
    if resp.status() != 303 {
        return Err(resp.status().as_u16());
    }
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()[LOCATION], "/ui/flags");
    Ok(set.split(';').next().unwrap().to_owned())
}

async fn page(s: &Server, cookie: &str, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let resp = client()
        .get(s.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap(), headers)
}

/// The CSRF token a page's forms carry.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Posts a form: the status, and the redirect's location (or the page).
async fn post_form(s: &Server, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let (status, to, _) = post_form_flash(s, cookie, path, form).await;
    (status, to)
}

/// Posts a form: the status, the location (or the page), and the flash cookie it set.
async fn post_form_flash(
    s: &Server,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let resp = client()
        .post(s.url(path))
        .header(COOKIE, cookie)
        .form_pairs(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let flash = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ofk_flash="))
        .map(|v| v.split(';').next().unwrap().to_owned());
    let body = resp.text().await.unwrap();
    (status, location.unwrap_or(body), flash)
}

async fn seed(s: &Server) {
    for (path, body) in [
        (
            "/segments",
            json!({"name": "premium_users", "criteria": {"tier": "premium"}}),
        ),
        (
            "/flags",
            json!({"name": "new_checkout", "is_enabled": true, "tags": ["web"]}),
        ),
        (
            "/configs",
            json!({"name": "limits", "config_data": {"max": 1}}),
        ),
        (
            "/experiments",
            json!({"name": "checkout_flow", "variants": ["control", "b"], "is_active": true,
                   "metrics": [{"name": "buy", "event": "purchase", "type": "conversion"}]}),
        ),
    ] {
        let (status, body) = send(s.post(path, &body)).await;
        assert_eq!(status, 201, "{path}: {body}");
    }
}

/// A concrete path for a UI route pattern, naming the seeded entities.
fn concrete(pattern: &str) -> String {
    let name = if pattern.starts_with("/ui/flags/") {
        "new_checkout"
    } else if pattern.starts_with("/ui/configs/") {
        "limits"
    } else if pattern.starts_with("/ui/segments/") {
        "premium_users"
    } else if pattern.starts_with("/ui/experiments/") {
        "checkout_flow"
    } else if pattern.starts_with("/ui/static/") {
        "app.css"
    } else {
        "placeholder"
    };
    pattern
        .split('/')
        .map(|p| if p.starts_with('{') { name } else { p })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_needs_a_session_and_renders_with_one() {
    let Some(s) = Server::start(Backend::Sqlite).await else {
        return;
    };
    seed(&s).await;
    let cookie = login(&s, ADMIN_KEY).await.expect("admin login");
    let mut pages = 0;
    for route in UI_ROUTES
        .iter()
        .filter(|r| r.method == reqwest::Method::GET)
    {
        let path = concrete(route.path);
        // Without a session: pages send the browser to the login page.
        let resp = client().get(s.url(&path)).send().await.unwrap();
        match route.access {
            UiAccess::Session => {
                assert_eq!(resp.status(), 303, "{path}");
                let to = resp.headers()[LOCATION].to_str().unwrap();
                assert!(to.starts_with("/ui/login?next="), "{path} → {to}");
            }
            UiAccess::Public => assert_eq!(resp.status(), 200, "{path}"),
        }
        // With one: 200 (or the home redirect), HTML, no caching, a strict CSP.
        let (status, body, headers) = page(&s, &cookie, &path).await;
        if path == "/ui" || path == "/ui/login" {
            assert_eq!(status, 303, "{path}");
            continue;
        }
        assert_eq!(status, 200, "{path}: {body}");
        if route.access == UiAccess::Session {
            pages += 1;
            assert!(body.contains("<main"), "{path}");
            assert_eq!(headers["cache-control"], "no-store", "{path}");
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
            // The layout's forms (environment switcher, logout) carry the CSRF token.
            assert!(!csrf_of(&body).is_empty(), "{path}");
        }
    }
    assert!(pages >= 15, "only {pages} pages checked");
    // Static files are cached for long.
    let (_, _, headers) = page(&s, "", "/ui/static/app.js").await;
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    // Unknown UI pages are 404.
    let (status, _, _) = page(&s, &cookie, "/ui/nothing/here").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_takes_admin_keys_only_and_sets_a_strict_cookie() {
    let Some(s) = Server::start(Backend::Sqlite).await else {
        return;
    };
    let sdk = s.sdk_key("production").await;
    assert_eq!(login(&s, &sdk).await, Err(403));
    assert_eq!(login(&s, "ofk_nope_nope").await, Err(401));
    assert_eq!(login(&s, "").await, Err(401));

    let resp = client()
        .post(s.url("/ui/login"))
        .header("x-forwarded-proto", "https")
        .form_pairs(&[("key", ADMIN_KEY), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    // An open redirect is refused.
    assert_eq!(resp.headers()[LOCATION], "/ui");
    let set = resp.headers()[SET_COOKIE].to_str().unwrap();
    for attr in [
        "ofk_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/ui",
        "Max-Age=43200",
        "Secure",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    let cookie = login(&s, ADMIN_KEY).await.unwrap();
    assert!(!cookie.contains("Secure"));
    // The cookie is `<key id>.<expiry>.<mac>` and does not contain the key.
    let value = cookie.trim_start_matches("ofk_session=");
    assert_eq!(value.split('.').count(), 3);
    assert!(!value.contains(ADMIN_KEY));

    // A tampered cookie is no session.
    let mut parts: Vec<String> = value.split('.').map(str::to_owned).collect();
    parts[1] = (parts[1].parse::<i64>().unwrap() + 3600).to_string();
    let forged = format!("ofk_session={}", parts.join("."));
    let (status, _, _) = page(&s, &forged, "/ui/flags").await;
    assert_eq!(status, 303);

    // Logout clears the cookie.
    let (_, body, _) = page(&s, &cookie, "/ui/flags").await;
    let csrf = csrf_of(&body);
    let resp = client()
        .post(s.url("/ui/logout"))
        .header(COOKIE, &cookie)
        .form_pairs(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cleared: Vec<&str> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("ofk_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_need_the_csrf_token_and_this_origin() {
    let Some(s) = Server::start(Backend::Sqlite).await else {
        return;
    };
    seed(&s).await;
    let cookie = login(&s, ADMIN_KEY).await.unwrap();
    let (_, body, _) = page(&s, &cookie, "/ui/flags").await;
    let csrf = csrf_of(&body);
    let toggle = "/ui/flags/new_checkout/toggle";

    // No token, a wrong token, another session's token: 403, and nothing changed.
    let (_, second) =
        send(s.post("/keys", &json!({"name": "other admin", "scope": "admin"}))).await;
    let other = login(&s, second["key"].as_str().unwrap()).await.unwrap();
    let (_, other_body, _) = page(&s, &other, "/ui/flags").await;
    let other_csrf = csrf_of(&other_body);
    assert_ne!(other_csrf, csrf);
    for token in [None, Some("0000"), Some(other_csrf.as_str())] {
        let mut form = vec![("enabled", "false")];
        if let Some(t) = token {
            form.push(("_csrf", t));
        }
        let (status, _) = post_form(&s, &cookie, toggle, &form).await;
        assert_eq!(status, 403, "token {token:?}");
    }
    let (_, flag) = send(s.get("/flags/new_checkout/definition")).await;
    assert_eq!(flag["is_enabled"], true);

    // A form posted from another site is refused even with the token.
    let resp = client()
        .post(s.url(toggle))
        .header(COOKIE, &cookie)
        .header("origin", "https://evil.example")
        .form_pairs(&[("_csrf", csrf.as_str()), ("enabled", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // The right token: the kill switch works (same write path as the API: audited).
    let (status, to) = post_form(
        &s,
        &cookie,
        toggle,
        &[("_csrf", csrf.as_str()), ("enabled", "false")],
    )
    .await;
    assert_eq!(status, 303, "{to}");
    let (_, flag) = send(s.get("/flags/new_checkout/definition")).await;
    assert_eq!(flag["is_enabled"], false);
    let (_, audit) = send(s.get("/audit?entity_name=new_checkout&limit=1")).await;
    assert_eq!(audit["entries"][0]["action"], "update");
    assert!(
        audit["entries"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("env-")
    );

    // fetch() callers get JSON.
    let resp = client()
        .post(s.url(toggle))
        .header(COOKIE, &cookie)
        .header("accept", "application/json")
        .header("x-csrf-token", &csrf)
        .form_pairs(&[("enabled", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["is_enabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_key_ends_its_sessions() {
    let Some(s) = Server::start(Backend::Sqlite).await else {
        return;
    };
    let resp = send(s.post("/keys", &json!({"name": "second admin", "scope": "admin"}))).await;
    assert_eq!(resp.0, 201);
    let key = resp.1["key"].as_str().unwrap().to_owned();
    let id = resp.1["id"].as_str().unwrap().to_owned();
    let cookie = login(&s, &key).await.unwrap();
    let (status, _, _) = page(&s, &cookie, "/ui/keys").await;
    assert_eq!(status, 200);
    let (status, _) = send(s.delete(&format!("/keys/{id}"))).await;
    assert_eq!(status, 200);
    let (status, _, headers) = page(&s, &cookie, "/ui/keys").await;
    assert_eq!(status, 303);
    // The stale cookie is cleared.
    assert!(headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_writes_are_validated_like_the_api() {
    let Some(s) = Server::start(Backend::Sqlite).await else {
        return;
    };
    seed(&s).await;
    let cookie = login(&s, ADMIN_KEY).await.unwrap();
    let (_, body, _) = page(&s, &cookie, "/ui/flags/_new").await;
    let csrf = csrf_of(&body);
    let bad_condition = r#"{"age": {"$gtx": 18}}"#;
    let form = [
        ("_csrf", csrf.as_str()),
        ("name", "age_gate"),
        ("kind", "boolean"),
        ("rollout_percentage", "100"),
        ("is_enabled", "true"),
        ("variant_name", "on"),
        ("variant_value", "true"),
        ("variant_description", ""),
        ("variant_name", "off"),
        ("variant_value", "false"),
        ("variant_description", ""),
        ("rule_description", "adults"),
        ("rule_condition", bad_condition),
        ("rule_serve", "on"),
        ("rule_split", ""),
        ("rule_bucket_by", ""),
    ];
    let (status, html) = post_form(&s, &cookie, "/ui/flags", &form).await;
    assert_eq!(status, 422);
    // The error is at the rule's condition, with the JSON path the API reports, and the
    // input is preserved.
    let at = html
        .find("data-error-for=\"$.rules[0].condition\"")
        .expect("the error is shown at the condition");
    assert!(html[at..].contains("$gtx"), "{}", &html[at..at + 300]);
    assert!(html.contains("&quot;$gtx&quot;") || html.contains("&#34;$gtx&#34;"));
    let (status, _) = send(s.get("/flags/age_gate/definition")).await;
    assert_eq!(status, 404);
    // The API refuses the same flag with the same path.
    let (status, err) = send(s.post(
        "/flags",
        &json!({"name": "age_gate", "rules": [{"condition": {"age": {"$gtx": 18}}, "serve": {"variant": "on"}}]}),
    ))
    .await;
    assert_eq!(status, 400);
    assert!(
        html.contains(
            err["error"]["field"]
                .as_str()
                .unwrap()
                .replace('"', "&quot;")
                .as_str()
        ) || html.contains(
            err["error"]["field"]
                .as_str()
                .unwrap()
                .replace('"', "&#34;")
                .as_str()
        )
    );

    // Fixed, it saves and redirects to the flag.
    let mut fixed = form.to_vec();
    fixed[12] = ("rule_condition", r#"{"age": {"$gte": 18}}"#);
    let (status, to) = post_form(&s, &cookie, "/ui/flags", &fixed).await;
    assert_eq!(status, 303, "{to}");
    assert_eq!(to, "/ui/flags/age_gate");
    let (_, flag) = send(s.get("/flags/age_gate/definition")).await;
    assert_eq!(flag["rules"][0]["condition"], json!({"age": {"$gte": 18}}));
    // The implicit on/off variants of a boolean flag are not written out.
    assert!(
        flag.get("variants").is_none_or(|v| v == &json!([])),
        "{flag}"
    );

    // Deleting a segment a flag uses is refused (409 in the API): the UI says why.
    let (_, body, _) = page(&s, &cookie, "/ui/segments/premium_users").await;
    let csrf = csrf_of(&body);
    let (status, _) = send(s.put(
        "/flags/new_checkout",
        &json!({"rules": [{"condition": {"$segment": "premium_users"}, "serve": {"variant": "on"}}]}),
    ))
    .await;
    assert_eq!(status, 200);
    let (status, to, flash) = post_form_flash(
        &s,
        &cookie,
        "/ui/segments/premium_users/delete",
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(to, "/ui/segments/premium_users");
    let with_flash = format!("{cookie}; {}", flash.expect("a message for the next page"));
    let (_, body, _) = page(&s, &with_flash, &to).await;
    assert!(
        body.contains("Could not delete segment premium_users"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_redirects_and_the_api_description_leaves_the_ui_out() {
    let Some(s) = Server::start(Backend::Sqlite).await else {
        return;
    };
    let resp = client().get(s.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/ui");
    let (_, doc) = send(s.http.get(s.url("/openapi.json"))).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.keys().all(|p| !p.starts_with("/ui")));
    assert!(paths.contains_key("/flags"));
}
