//! Rate limits (one process; the cross-replica case is in replicas.rs) and /metrics.

mod common;

use common::{Server, send};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_over_the_limit_get_429() {
    let Some(s) = Server::start_with(common::Backend::Sqlite, &["--rate-limit-api", "5"]).await
    else {
        return;
    };
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(send(s.get("/flags")).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    let resp = s.get("/flags").send().await.unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Operations routes are never limited.
    assert_eq!(send(s.http.get(s.url("/healthz"))).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_sync_with_an_sdk_key_is_not_limited() {
    let Some(s) = Server::start_with(common::Backend::Sqlite, &["--rate-limit-api", "3"]).await
    else {
        return;
    };
    let sdk = s.sdk_key("production").await; // 1 request
    for _ in 0..10 {
        let (status, _) = send(s.http.get(s.url("/sdk/v1/ruleset")).bearer_auth(&sdk)).await;
        assert_eq!(status, 200);
    }
    // Evaluation routes with the SDK key do count.
    let mut last = 0;
    for _ in 0..4 {
        last = send(
            s.http
                .post(s.url("/segments/evaluate"))
                .bearer_auth(&sdk)
                .json(&json!({"user_context": {}})),
        )
        .await
        .0;
    }
    assert_eq!(last, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_fetches_are_limited_per_client() {
    let Some(s) = Server::start_with(common::Backend::Sqlite, &["--rate-limit-configs", "2"]).await
    else {
        return;
    };
    let a = s.sdk_key("production").await;
    let b = s.sdk_key("production").await;
    let fetch = |key: String| {
        let req = s.http.get(s.url("/configs")).bearer_auth(key);
        async move { send(req).await.0 }
    };
    assert_eq!(fetch(a.clone()).await, 200);
    assert_eq!(fetch(a.clone()).await, 200);
    assert_eq!(fetch(a.clone()).await, 429);
    assert_eq!(fetch(b.clone()).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_evaluations_are_limited_per_user() {
    let Some(s) =
        Server::start_with(common::Backend::Sqlite, &["--rate-limit-evaluations", "2"]).await
    else {
        return;
    };
    send(s.post("/flags", &json!({"name": "f", "is_enabled": true}))).await;
    let eval = |user: &str| send(s.get(&format!("/flags/f?user_id={user}")));
    assert_eq!(eval("u1").await.0, 200);
    assert_eq!(eval("u1").await.0, 200);
    assert_eq!(eval("u1").await.0, 429);
    assert_eq!(eval("u2").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_resets() {
    let Some(s) = Server::start_with(
        common::Backend::Sqlite,
        &["--rate-limit-api", "1", "--rate-limit-window-secs", "1"],
    )
    .await
    else {
        return;
    };
    let mut ok_after_reset = false;
    for _ in 0..30 {
        if send(s.get("/flags")).await.0 == 200 {
            ok_after_reset = true;
            if send(s.get("/flags")).await.0 == 429 {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ok_after_reset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_routes_versions_queue_and_streams() {
    let Some(s) = Server::start(common::Backend::Sqlite).await else {
        return;
    };
    send(s.post("/flags", &json!({"name": "f", "is_enabled": true}))).await;
    send(s.get("/flags/f?user_id=1")).await;
    send(s.get("/flags/missing?user_id=1")).await;
    let sdk = s.sdk_key("production").await;
    let stream = s
        .http
        .get(s.url("/sdk/v1/stream"))
        .bearer_auth(&sdk)
        .send()
        .await
        .unwrap();
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"optifork_http_requests_total{method="GET",route="/flags/{name}",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"optifork_http_requests_total{method="GET",route="/flags/{name}",status="404"} 1"#
    ));
    assert!(text.contains(r#"optifork_http_request_duration_seconds_bucket{method="GET",route="/flags/{name}",le="+Inf"} 2"#));
    assert!(text.contains(r#"optifork_ruleset_version{environment="production"} 1"#));
    assert!(text.contains("optifork_exposure_queue_depth "));
    assert!(text.contains("optifork_sse_connections 1"));
    drop(stream);
    // Every non-comment line is "name{labels} value" with a numeric value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}
