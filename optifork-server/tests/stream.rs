//! `GET /sdk/v1/stream`: ruleset changes pushed as Server-Sent Events.

mod common;

use std::time::{Duration, Instant};

use common::{Server, SseReader, send};
use serde_json::{Value, json};

async fn open(s: &Server, key: &str, last_event_id: Option<&str>) -> SseReader {
    let mut req = s.http.get(s.url("/sdk/v1/stream")).bearer_auth(key);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    SseReader::new(resp)
}

async fn a_change_is_pushed_to_open_streams(s: Server) {
    let sdk = s.sdk_key("production").await;
    let mut stream = open(&s, &sdk, None).await;
    let first = stream
        .next(Duration::from_secs(5))
        .await
        .expect("the current version on open");
    assert_eq!(first.event, "ruleset");
    let data: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(data["environment"], "production");
    assert_eq!(first.id, data["version"].to_string());

    let started = Instant::now();
    send(s.post(
        "/flags",
        &json!({"name": "kill_switch", "is_enabled": true}),
    ))
    .await;
    let pushed = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a pushed change");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    let data: Value = serde_json::from_str(&pushed.data).unwrap();
    assert_eq!(
        data["version"].as_i64().unwrap(),
        first.id.parse::<i64>().unwrap() + 1
    );
    // The announced version is the one the ruleset route now serves.
    let resp = s
        .http
        .get(s.url("/sdk/v1/ruleset"))
        .bearer_auth(&sdk)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", pushed.id)
    );
}
both!(push, a_change_is_pushed_to_open_streams);

async fn other_environments_changes_are_not_pushed(s: Server) {
    send(s.post("/environments", &json!({"name": "staging"}))).await;
    let sdk = s.sdk_key("production").await;
    let mut stream = open(&s, &sdk, None).await;
    stream.next(Duration::from_secs(5)).await.expect("first");
    send(s.post("/flags?environment=staging", &json!({"name": "x"}))).await;
    assert!(stream.next(Duration::from_millis(500)).await.is_none());
}
both!(isolation, other_environments_changes_are_not_pushed);

async fn last_event_id_resumes_without_repeating(s: Server) {
    let sdk = s.sdk_key("production").await;
    let mut stream = open(&s, &sdk, None).await;
    let current = stream.next(Duration::from_secs(5)).await.unwrap().id;
    // Reconnecting with the current version: nothing was missed, nothing is sent.
    let mut resumed = open(&s, &sdk, Some(&current)).await;
    assert!(resumed.next(Duration::from_millis(400)).await.is_none());
    // Reconnecting with an older version: the current one is sent at once.
    send(s.post("/flags", &json!({"name": "f"}))).await;
    let mut behind = open(&s, &sdk, Some(&current)).await;
    let caught_up = behind
        .next(Duration::from_secs(5))
        .await
        .expect("catch-up event");
    assert_eq!(
        caught_up.id.parse::<i64>().unwrap(),
        current.parse::<i64>().unwrap() + 1
    );
}
both!(resume, last_event_id_resumes_without_repeating);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_idle_streams_alive() {
    let Some(s) = Server::start_with(common::Backend::Sqlite, &["--sse-heartbeat-secs", "1"]).await
    else {
        return;
    };
    let sdk = s.sdk_key("production").await;
    let mut stream = open(&s, &sdk, None).await;
    stream.next(Duration::from_secs(5)).await.unwrap();
    let ev = stream.next(Duration::from_millis(2500)).await;
    assert!(ev.is_none(), "{ev:?}");
    assert!(stream.comments >= 1, "no heartbeat comment in 2.5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams() {
    let Some(mut s) = Server::start(common::Backend::Sqlite).await else {
        return;
    };
    let sdk = s.sdk_key("production").await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut st = open(&s, &sdk, None).await;
        st.next(Duration::from_secs(5)).await.unwrap();
        streams.push(st);
    }
    let started = Instant::now();
    s.stop(); // asserts a clean exit
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    for mut st in streams {
        assert!(st.next(Duration::from_secs(2)).await.is_none());
    }
}
