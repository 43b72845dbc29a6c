//! OFREP (OpenFeature Remote Evaluation Protocol): success and every error case, in the
//! protocol's shapes.

mod common;

use common::{ADMIN_KEY, Server, send};
use serde_json::{Value, json};

async fn seed(s: &Server) -> String {
    send(s.post("/flags", &json!({"name": "beta", "is_enabled": true,
        "rules": [{"condition": {"plan": "pro"}, "serve": {"variant": "on"}}], "default": {"variant": "off"}}))).await;
    send(s.post(
        "/flags",
        &json!({"name": "color", "is_enabled": true,
        "variants": [{"name": "blue", "value": "#00f"}]}),
    ))
    .await;
    send(s.post(
        "/flags",
        &json!({"name": "limits", "is_enabled": true, "kind": "json",
        "variants": [{"name": "std", "value": {"rps": 10}}]}),
    ))
    .await;
    send(s.post(
        "/flags",
        &json!({"name": "half", "is_enabled": true, "rollout_percentage": 50}),
    ))
    .await;
    send(s.post(
        "/flags",
        &json!({"name": "dark", "is_enabled": false,
        "variants": [{"name": "a", "value": "x"}]}),
    ))
    .await;
    s.sdk_key("production").await
}

fn ofrep(s: &Server, key: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
    s.http.post(s.url(path)).header("X-API-Key", key).json(body)
}

async fn single_flag_success_has_the_protocol_shape(s: Server) {
    let sdk = seed(&s).await;
    let (status, body) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/beta",
        &json!({"context": {"targetingKey": "u1", "plan": "pro"}}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["key"], "beta");
    assert_eq!(body["value"], true);
    assert_eq!(body["variant"], "on");
    assert_eq!(body["reason"], "TARGETING_MATCH");
    assert_eq!(body["metadata"]["ruleIndex"], 0);
    assert_eq!(body["metadata"]["environment"], "production");
    let (_, body) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/color",
        &json!({"context": {}}),
    ))
    .await;
    assert_eq!(
        (body["value"].as_str(), body["reason"].as_str()),
        (Some("#00f"), Some("STATIC"))
    );
    let (_, body) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/limits",
        &json!({}),
    ))
    .await;
    assert_eq!(body["value"], json!({"rps": 10}));
    // Off, without an off variant: no value, so the provider uses the code default.
    let (status, body) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/dark",
        &json!({"context": {}}),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["reason"], "DISABLED");
    assert!(body.get("value").is_none(), "{body}");
    // Admin keys may evaluate too, and Bearer works as well as X-API-Key.
    let (status, _) = send(
        s.http
            .post(s.url("/ofrep/v1/evaluate/flags/beta"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 200);
}
both!(single_success, single_flag_success_has_the_protocol_shape);

async fn single_flag_errors_have_the_protocol_shape(s: Server) {
    let sdk = seed(&s).await;
    let (status, body) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/missing",
        &json!({"context": {}}),
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["key"], "missing");
    assert_eq!(body["errorCode"], "FLAG_NOT_FOUND");
    assert!(body["errorDetails"].is_string());
    let (status, body) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/half",
        &json!({"context": {"plan": "x"}}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errorCode"], "TARGETING_KEY_MISSING");
    let (status, body) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/beta",
        &json!({"context": "u1"}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errorCode"], "INVALID_CONTEXT");
    let (status, body) = send(
        s.http
            .post(s.url("/ofrep/v1/evaluate/flags/beta"))
            .header("X-API-Key", &sdk)
            .header("Content-Type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errorCode"], "PARSE_ERROR");
    assert_eq!(body["key"], "beta");
    let (status, _) = send(
        s.http
            .post(s.url("/ofrep/v1/evaluate/flags/beta"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/beta?environment=staging",
        &json!({}),
    ))
    .await;
    assert_eq!(status, 403);
}
both!(single_errors, single_flag_errors_have_the_protocol_shape);

async fn bulk_evaluation_uses_etags(s: Server) {
    let sdk = seed(&s).await;
    let ctx = json!({"context": {"targetingKey": "u1", "plan": "pro"}});
    let resp = ofrep(&s, &sdk, "/ofrep/v1/evaluate/flags", &ctx)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let flags = body["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 5);
    let beta = flags.iter().find(|f| f["key"] == "beta").unwrap();
    assert_eq!(beta["value"], true);
    // Same context, same ruleset: 304.
    let resp = ofrep(&s, &sdk, "/ofrep/v1/evaluate/flags", &ctx)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    // Another context: 200 again.
    let other = json!({"context": {"targetingKey": "u2"}});
    let resp = ofrep(&s, &sdk, "/ofrep/v1/evaluate/flags", &other)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A ruleset change: 200 again with a new ETag.
    send(s.put("/flags/color", &json!({"is_enabled": false}))).await;
    let resp = ofrep(&s, &sdk, "/ofrep/v1/evaluate/flags", &ctx)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_ne!(resp.headers()["etag"].to_str().unwrap(), etag);
}
both!(bulk_etag, bulk_evaluation_uses_etags);

async fn bulk_evaluation_reports_per_flag_errors_and_bad_requests(s: Server) {
    let sdk = seed(&s).await;
    let (status, body) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags",
        &json!({"context": {}}),
    ))
    .await;
    assert_eq!(status, 200);
    let half = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "half")
        .unwrap()
        .clone();
    assert_eq!(half["errorCode"], "TARGETING_KEY_MISSING");
    let (status, body) = send(
        s.http
            .post(s.url("/ofrep/v1/evaluate/flags"))
            .header("X-API-Key", &sdk)
            .header("Content-Type", "application/json")
            .body("[1,2"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errorCode"], "PARSE_ERROR");
    assert!(body.get("key").is_none());
}
both!(
    bulk_errors,
    bulk_evaluation_reports_per_flag_errors_and_bad_requests
);

async fn configuration_and_cors_serve_browser_providers(s: Server) {
    let sdk = seed(&s).await;
    let (status, body) = send(
        s.http
            .get(s.url("/ofrep/v1/configuration"))
            .header("X-API-Key", &sdk),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "optifork");
    assert_eq!(
        body["capabilities"]["cacheInvalidation"]["polling"]["enabled"],
        true
    );
    let resp = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/ofrep/v1/evaluate/flags"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(
        resp.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("X-API-Key")
    );
    let resp = ofrep(&s, &sdk, "/ofrep/v1/evaluate/flags/beta", &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}
both!(
    configuration_cors,
    configuration_and_cors_serve_browser_providers
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_over_the_limit_get_429_with_retry_after() {
    let Some(s) =
        Server::start_with(common::Backend::Sqlite, &["--rate-limit-evaluations", "3"]).await
    else {
        return;
    };
    let sdk = seed(&s).await;
    for _ in 0..3 {
        let (status, _) = send(ofrep(
            &s,
            &sdk,
            "/ofrep/v1/evaluate/flags/beta",
            &json!({"context": {"targetingKey": "u1"}}),
        ))
        .await;
        assert_eq!(status, 200);
    }
    let resp = ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/beta",
        &json!({"context": {"targetingKey": "u1"}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    // Another user is not limited by u1's evaluations.
    let (status, _) = send(ofrep(
        &s,
        &sdk,
        "/ofrep/v1/evaluate/flags/beta",
        &json!({"context": {"targetingKey": "u2"}}),
    ))
    .await;
    assert_eq!(status, 200);
}
