//! Keeping the ruleset fresh and surviving a server that misbehaves: the real server binary
//! (started per test), and a fake one for what a real server never sends.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{FakeServer, Reply, Server, wait_for};
use optifork_sdk::{Change, Client, ClientBuilder, Context, SdkError, Source, State};
use serde_json::json;

const LONG: Duration = Duration::from_secs(15);

fn builder(url: &str, key: &str) -> ClientBuilder {
    Client::builder(url, key)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .flush_interval(Duration::from_millis(100))
}

fn us(user: &str) -> Context {
    Context::new(user).with("country", "US")
}

/// An address where nothing listens.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

#[test]
fn the_first_fetch_serves_the_servers_ruleset() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok(
        "POST",
        "/flags",
        json!({"name": "new_checkout", "is_enabled": true, "targeting_rules": {"country": "US"}}),
    );
    let client = builder(&s.url, &key).build().unwrap();
    let status = client.wait_until_ready(LONG).unwrap();
    assert_eq!(status.state, State::Ready);
    assert_eq!(status.source, Some(Source::Server));
    assert_eq!(status.version, Some(s.version(&key)));
    assert_eq!(status.environment.as_deref(), Some("production"));
    assert!(status.updated_at.is_some() && status.confirmed_at.is_some());
    assert!(client.is_enabled("new_checkout", &us("u1")));
    assert!(!client.is_enabled("new_checkout", &Context::new("u1").with("country", "FR")));
    assert!(client.stats().ruleset_updates >= 1);
}

#[test]
fn unchanged_rulesets_are_answered_not_modified_by_polls() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok("POST", "/flags", json!({"name": "f", "is_enabled": true}));
    let client = builder(&s.url, &key)
        .streaming(false)
        .poll_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    client.wait_until_ready(LONG).unwrap();
    wait_for(LONG, "three 304s", || {
        client.stats().ruleset_not_modified >= 3
    });
    assert_eq!(client.stats().ruleset_updates, 1, "{:?}", client.stats());
    // A change is picked up by the next poll.
    s.ok("PUT", "/flags/f", json!({"is_enabled": false}));
    wait_for(LONG, "the change", || !client.is_enabled("f", &us("u1")));
    assert_eq!(client.stats().ruleset_updates, 2);
    assert_eq!(client.version(), Some(s.version(&key)));
    assert!(!client.status().streaming);
}

#[test]
fn a_change_arrives_by_the_stream_while_the_next_poll_is_an_hour_away() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok(
        "POST",
        "/flags",
        json!({"name": "kill_switch", "is_enabled": true}),
    );
    let client = builder(&s.url, &key)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    client.wait_until_ready(LONG).unwrap();
    wait_for(LONG, "the stream to connect", || client.status().streaming);
    let started = Instant::now();
    s.ok("PUT", "/flags/kill_switch", json!({"is_enabled": false}));
    wait_for(Duration::from_secs(5), "the pushed change", || {
        !client.is_enabled("kill_switch", &us("u1"))
    });
    eprintln!("change seen after {:?}", started.elapsed());
    let stats = client.stats();
    assert!(
        stats.stream_connects >= 1 && stats.stream_events >= 1,
        "{stats:?}"
    );
    assert_eq!(client.version(), Some(s.version(&key)));
}

#[test]
fn the_client_keeps_serving_while_the_server_is_killed_and_restarted_on_the_same_database() {
    let mut s = Server::start();
    let key = s.sdk_key();
    s.ok("POST", "/flags", json!({"name": "f", "is_enabled": true}));
    let client = builder(&s.url, &key)
        .poll_interval(Duration::from_millis(200))
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    client.wait_until_ready(LONG).unwrap();
    wait_for(LONG, "the stream to connect", || client.status().streaming);
    let version = client.version();

    s.kill();
    wait_for(LONG, "the client to notice", || {
        assert!(client.is_enabled("f", &us("u1")), "served throughout");
        let st = client.status();
        st.state == State::Stale && !st.streaming
    });
    let status = client.status();
    assert_eq!(status.source, Some(Source::Server));
    assert_eq!(status.version, version);
    assert!(status.last_error.is_some());
    assert!(!status.streaming, "{status:?} {:?}", client.stats());
    for i in 0..100 {
        assert!(client.is_enabled("f", &us(&format!("u{i}"))));
    }

    s.restart();
    s.ok("PUT", "/flags/f", json!({"is_enabled": false}));
    wait_for(LONG, "recovery", || {
        let st = client.status();
        st.state == State::Ready && !client.is_enabled("f", &us("u1"))
    });
    assert_eq!(client.version(), Some(s.version(&key)));
    assert!(client.status().last_error.is_none());
    wait_for(LONG, "the stream to reconnect", || {
        client.status().streaming
    });
}

#[test]
fn a_bootstrap_is_served_while_the_server_is_down() {
    let client = builder(&dead_url(), "key")
        .bootstrap_json(
            r#"{"environment": "production", "version": 3,
                "flags": [{"name": "beta", "is_enabled": true}]}"#,
        )
        .build()
        .unwrap();
    // Served at once, before any contact with the server.
    assert!(client.is_enabled("beta", &Context::new("u1")));
    let status = client.status();
    assert_eq!(status.source, Some(Source::Bootstrap));
    assert_eq!(status.version, Some(3));
    assert_eq!(status.state, State::Stale);
    wait_for(LONG, "a failed fetch", || {
        client.status().last_error.is_some()
    });
    assert_eq!(client.status().state, State::Stale);
    match client.wait_until_ready(Duration::from_millis(200)) {
        Err(SdkError::NotReady { last_error, .. }) => assert!(last_error.is_some()),
        other => panic!("{other:?}"),
    }
    assert!(client.is_enabled("beta", &Context::new("u1")));
}

#[test]
fn a_missing_or_invalid_bootstrap_fails_the_build() {
    let missing = builder(&dead_url(), "key")
        .bootstrap_file("/nonexistent/optifork.json")
        .build();
    assert!(
        matches!(missing, Err(SdkError::BootstrapIo { .. })),
        "{missing:?}"
    );
    let invalid = builder(&dead_url(), "key")
        .bootstrap_json(r#"{"flags": [{"name": "f", "targeting_rules": {"a": {"$near": 1}}}]}"#)
        .build();
    match invalid {
        Err(SdkError::InvalidBootstrap(e)) => assert_eq!(e.code(), "unknown_operator"),
        other => panic!("{other:?}"),
    }
    let bad_url = Client::builder("ftp://example.com", "key").build();
    assert!(
        matches!(bad_url, Err(SdkError::InvalidUrl { .. })),
        "{bad_url:?}"
    );
    let bad_batch = builder(&dead_url(), "key")
        .exposure_batch_size(10_001)
        .build();
    assert!(matches!(bad_batch, Err(SdkError::InvalidOption { .. })));
}

#[test]
fn the_persisted_snapshot_is_served_when_the_server_is_down_at_start() {
    let mut s = Server::start();
    let key = s.sdk_key();
    s.ok("POST", "/flags", json!({"name": "f", "is_enabled": true}));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache").join("optifork.json");
    let first = builder(&s.url, &key).snapshot_path(&path).build().unwrap();
    first.wait_until_ready(LONG).unwrap();
    wait_for(LONG, "the snapshot", || path.exists());
    first.close().unwrap();
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let version = s.version(&key);
    assert_eq!(saved["version"], version);
    // Written atomically: no temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["optifork.json"]);

    let url = s.url.clone();
    s.kill();
    let second = builder(&url, &key).snapshot_path(&path).build().unwrap();
    assert!(second.is_enabled("f", &us("u1")));
    let status = second.status();
    assert_eq!(status.source, Some(Source::Snapshot));
    assert_eq!(status.version, Some(version));
    assert_eq!(status.state, State::Stale);

    // A newer bootstrap wins over an older snapshot.
    let third = builder(&url, &key)
        .snapshot_path(&path)
        .bootstrap_json(format!(r#"{{"version": {}, "flags": []}}"#, version + 1))
        .build()
        .unwrap();
    assert_eq!(third.status().source, Some(Source::Bootstrap));
    assert!(!third.is_enabled("f", &us("u1")));
}

#[test]
fn a_ruleset_that_fails_to_compile_is_refused_and_the_last_good_one_kept() {
    let served = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&served);
    let fake = FakeServer::start(move |req| {
        if req.path.starts_with("/sdk/v1/stream") {
            return Reply::json(404, r#"{"error": {"code": "not_found"}}"#);
        }
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Respond(
                200,
                vec![("ETag".into(), "\"1\"".into())],
                br#"{"environment": "production", "version": 1,
                     "flags": [{"name": "beta", "is_enabled": true}]}"#
                    .to_vec(),
            ),
            // A newer server's operator this SDK does not know.
            1 => Reply::Respond(
                200,
                vec![("ETag".into(), "\"2\"".into())],
                br#"{"environment": "production", "version": 2,
                     "flags": [{"name": "beta", "is_enabled": false,
                                "targeting_rules": {"country": {"$geoWithin": [1, 2]}}}]}"#
                    .to_vec(),
            ),
            // Not even JSON.
            _ => Reply::Respond(
                200,
                vec![("ETag".into(), "\"3\"".into())],
                b"{\"version\": 3, \"flags\": [".to_vec(),
            ),
        }
    });
    let client = builder(&fake.url, "key")
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    client.wait_until_ready(LONG).unwrap();
    wait_for(LONG, "two refusals", || {
        client.stats().rulesets_refused >= 2
    });
    for i in 0..50 {
        assert!(client.is_enabled("beta", &Context::new(format!("u{i}"))));
    }
    let status = client.status();
    assert_eq!(status.version, Some(1));
    assert_eq!(status.state, State::Stale);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused")),
        "{status:?}"
    );
    // The refused rulesets were asked for with the last good ruleset's ETag.
    assert_eq!(
        fake.requests("/sdk/v1/ruleset")[2].header("if-none-match"),
        Some("\"1\"")
    );
    // The application's own updates are checked the same way.
    let refused = client.update_ruleset_json(r#"{"flags": [{"name": "x", "rules": 5}]}"#);
    assert!(matches!(refused, Err(SdkError::InvalidRuleset(_))));
    assert_eq!(client.version(), Some(1));
}

#[test]
fn change_listeners_name_the_entities_whose_definitions_changed() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok("POST", "/flags", json!({"name": "a", "is_enabled": true}));
    s.ok("POST", "/flags", json!({"name": "b", "is_enabled": true}));
    let client = builder(&s.url, &key)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    client.wait_until_ready(LONG).unwrap();
    let seen: Arc<Mutex<Vec<Change>>> = Arc::default();
    let log = Arc::clone(&seen);
    let id = client.on_change(move |c| log.lock().unwrap().push(c.clone()));
    let mut rx = client.subscribe();
    let take = |what: &str, pred: &dyn Fn(&Change) -> bool| -> Change {
        let mut found = None;
        wait_for(LONG, what, || {
            let mut all = seen.lock().unwrap();
            found = all.iter().position(pred).map(|i| all.remove(i));
            found.is_some()
        });
        found.unwrap()
    };

    s.ok("PUT", "/flags/a", json!({"is_enabled": false}));
    let c = take("flag a", &|c| !c.flags.is_empty());
    assert_eq!(c.flags, ["a"]);
    assert!(c.configs.is_empty() && c.segments.is_empty() && c.experiments.is_empty());
    assert_eq!(c.source, Some(Source::Server));
    assert_eq!(c.previous_version.map(|v| v + 1), Some(c.version));
    assert!(c.flag_changed("a") && !c.flag_changed("b"));

    s.ok(
        "POST",
        "/configs",
        json!({"name": "theme", "config_data": {"color": "blue"}}),
    );
    let c = take("config theme", &|c| !c.configs.is_empty());
    assert_eq!(
        (c.flags.len(), c.configs.as_slice()),
        (0, &["theme".to_owned()][..])
    );

    s.ok(
        "POST",
        "/segments",
        json!({"name": "gold", "criteria": {"tier": "gold"}}),
    );
    assert_eq!(
        take("segment gold", &|c| !c.segments.is_empty()).segments,
        ["gold"]
    );

    s.ok(
        "POST",
        "/experiments",
        json!({"name": "exp", "variants": ["control", "b"], "is_active": true}),
    );
    assert_eq!(
        take("experiment exp", &|c| !c.experiments.is_empty()).experiments,
        ["exp"]
    );

    s.ok("DELETE", "/flags/b", json!({}));
    assert_eq!(
        take("flag b removed", &|c| !c.flags.is_empty()).flags,
        ["b"]
    );

    // The async channel saw the same changes.
    let mut via_channel = 0;
    while rx.try_recv().is_ok() {
        via_channel += 1;
    }
    assert!(via_channel >= 5, "{via_channel}");
    assert!(client.remove_listener(id));
    assert!(!client.remove_listener(id));
}

#[test]
fn a_refused_sdk_key_fails_wait_until_ready_at_once() {
    let s = Server::start();
    let client = builder(&s.url, "ofk_not_a_key").build().unwrap();
    let started = Instant::now();
    let res = client.wait_until_ready(Duration::from_secs(30));
    assert!(matches!(res, Err(SdkError::Unauthorized(_))), "{res:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(client.status().state, State::Error);
    assert!(!client.is_enabled("anything", &Context::new("u1")));
}

#[test]
fn works_without_a_tokio_runtime() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let s = Server::start();
    let key = s.sdk_key();
    s.ok("POST", "/flags", json!({"name": "f", "is_enabled": true}));
    let client = builder(&s.url, &key).build().unwrap();
    client.wait_until_ready(LONG).unwrap();
    assert!(client.is_enabled("f", &Context::new("u1")));
    // Clones share everything and can move between threads.
    let clone = client.clone();
    std::thread::spawn(move || {
        assert!(clone.is_enabled("f", &Context::new("u2")));
        clone.track("visit", &Context::new("u2"), None);
    })
    .join()
    .unwrap();
    client.flush(LONG).unwrap();
    assert_eq!(client.stats().items_sent, 1);
    client.close().unwrap();
    assert!(
        client.is_enabled("f", &Context::new("u1")),
        "evaluates after close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_inside_a_multi_thread_tokio_runtime() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok("POST", "/flags", json!({"name": "f", "is_enabled": true}));
    let client = builder(&s.url, &key).build().unwrap();
    client.wait_until_ready_async(LONG).await.unwrap();
    assert!(client.is_enabled("f", &Context::new("u1")));
    client.track("visit", &Context::new("u1"), Some(1.0));
    client.flush_async(LONG).await.unwrap();
    // The blocking forms work here too.
    client.wait_until_ready(LONG).unwrap();
    client.track("visit", &Context::new("u2"), Some(1.0));
    client.flush(LONG).unwrap();
    assert_eq!(client.stats().items_sent, 2);
    s.ok("PUT", "/flags/f", json!({"is_enabled": false}));
    let mut rx = client.subscribe();
    let change = tokio::time::timeout(LONG, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.flags, ["f"]);
    client.close_async().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn works_inside_a_current_thread_tokio_runtime() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok("POST", "/flags", json!({"name": "f", "is_enabled": true}));
    let client = builder(&s.url, &key).build().unwrap();
    client.wait_until_ready_async(LONG).await.unwrap();
    // The background work has its own thread, so blocking here cannot deadlock it.
    client.wait_until_ready(LONG).unwrap();
    assert!(client.is_enabled("f", &Context::new("u1")));
    client.track("visit", &Context::new("u1"), None);
    client.flush(LONG).unwrap();
    assert_eq!(client.stats().items_sent, 1);
    drop(client); // flushes and stops in bounded time, inside the runtime
}

#[test]
fn requests_carry_the_key_extra_headers_and_accept_gzip() {
    let fake = FakeServer::start(|req| {
        if req.path.starts_with("/sdk/v1/ruleset") {
            Reply::json(200, r#"{"version": 1, "flags": []}"#)
        } else {
            Reply::json(404, "{}")
        }
    });
    let client = builder(&fake.url, "ofk_secret")
        .header("X-Tenant", "acme")
        .build()
        .unwrap();
    client.wait_until_ready(LONG).unwrap();
    let req = &fake.requests("/sdk/v1/ruleset")[0];
    assert_eq!(req.header("authorization"), Some("Bearer ofk_secret"));
    assert_eq!(req.header("x-tenant"), Some("acme"));
    assert!(
        req.header("accept-encoding")
            .is_some_and(|e| e.contains("gzip"))
    );
    assert!(
        req.header("user-agent")
            .is_some_and(|u| u.starts_with("optifork-sdk-rust/"))
    );
    let bad = builder(&fake.url, "key").header("Bad Header", "x").build();
    assert!(
        matches!(bad, Err(SdkError::InvalidOption { .. })),
        "{bad:?}"
    );
}
