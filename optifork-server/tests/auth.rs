//! Every route × no key / SDK key / admin key, plus the insecure dev mode.

mod common;

use common::{ADMIN_KEY, Server, send};
use optifork_server::api::{Access, ROUTES};
use reqwest::Method;
use serde_json::json;

/// A concrete path for a route pattern (parameters filled with a placeholder).
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|p| if p.starts_with('{') { "placeholder" } else { p })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(s: &Server, method: &str, path: &str, key: Option<&str>) -> u16 {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = s.http.request(method.clone(), s.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        req = req.json(&json!({}));
    }
    req.send().await.unwrap().status().as_u16()
}

async fn every_route_enforces_its_access(s: Server) {
    let sdk = s.sdk_key("production").await;
    for route in ROUTES {
        let path = concrete(route.path);
        let m = route.method.as_str();
        let none = call(&s, m, &path, None).await;
        let with_sdk = call(&s, m, &path, Some(&sdk)).await;
        let admin = call(&s, m, &path, Some(ADMIN_KEY)).await;
        let bad = call(&s, m, &path, Some("ofk_nope_nope")).await;
        let what = format!(
            "{m} {}: none={none} sdk={with_sdk} admin={admin} bad={bad}",
            route.path
        );
        match route.access {
            Access::Public => {
                assert!(![401, 403].contains(&none), "{what}");
            }
            Access::Admin => {
                assert_eq!(none, 401, "{what}");
                assert_eq!(bad, 401, "{what}");
                assert_eq!(with_sdk, 403, "{what}");
                assert!(![401, 403].contains(&admin), "{what}");
            }
            Access::Sdk => {
                assert_eq!(none, 401, "{what}");
                assert_eq!(bad, 401, "{what}");
                assert!(![401, 403].contains(&with_sdk), "{what}");
                assert!(![401, 403].contains(&admin), "{what}");
            }
        }
    }
}
both!(access_matrix, every_route_enforces_its_access);

async fn keys_are_accepted_as_bearer_or_x_api_key(s: Server) {
    let (status, _) = send(s.http.get(s.url("/flags")).header("X-API-Key", ADMIN_KEY)).await;
    assert_eq!(status, 200);
    let (status, body) = send(
        s.http
            .get(s.url("/flags"))
            .header("Authorization", "Basic abc"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let resp = s.http.get(s.url("/flags")).send().await.unwrap();
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}
both!(key_headers, keys_are_accepted_as_bearer_or_x_api_key);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_dev_mode_turns_auth_off_loudly() {
    let Some(s) = Server::start_with(common::Backend::Sqlite, &["--insecure-dev-mode"]).await
    else {
        return;
    };
    let (status, _) = send(s.http.get(s.url("/flags"))).await;
    assert_eq!(status, 200);
    let (status, _) = send(s.http.post(s.url("/flags")).json(&json!({"name": "x"}))).await;
    assert_eq!(status, 201);
}
