//! Exposures and metric events: recorded on evaluation, deduplicated, batched, retried,
//! delivered exactly once; the buffer bounded.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{FakeServer, Reply, Server, forward, wait_for};
use optifork_sdk::{Client, ClientBuilder, Context};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(15);

fn builder(url: &str, key: &str) -> ClientBuilder {
    Client::builder(url, key)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .flush_interval(Duration::from_millis(100))
}

fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

/// Counts rows of the server's database (SQLite, read while the server runs).
fn count(s: &Server, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(s.db_path()).unwrap();
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn experiment_users(s: &Server, name: &str) -> BTreeMap<String, (u64, u64)> {
    let results = s.ok("GET", &format!("/experiments/{name}/results"), json!(null));
    results["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["variant"].as_str().unwrap().to_owned(),
                (
                    v["users"].as_u64().unwrap(),
                    v["exposures"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn exposures_arrive_exactly_once() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok(
        "POST",
        "/experiments",
        json!({"name": "checkout", "variants": ["control", "one_page"],
               "traffic_splits": {"control": 50, "one_page": 50}, "is_active": true,
               "targeting_rules": {"country": "US"}}),
    );
    s.ok(
        "POST",
        "/flags",
        json!({"name": "banner", "is_enabled": true, "track": true}),
    );
    s.ok(
        "POST",
        "/flags",
        json!({"name": "plain", "is_enabled": true}),
    );
    let client = builder(&s.url, &key)
        .exposure_batch_size(7)
        .build()
        .unwrap();
    client.wait_until_ready(LONG).unwrap();

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..3 {
        for i in 0..40 {
            let user = Context::new(format!("u{i}")).with("country", "US");
            let a = client.assign("checkout", &user);
            assert!(a.in_experiment);
            if round == 0 {
                *expected.entry(a.variant.clone()).or_default() += 1;
            }
            assert!(client.is_enabled("banner", &user));
            assert!(client.is_enabled("plain", &user));
        }
        // Not enrolled: no exposure.
        let out = client.assign("checkout", &Context::new("fr").with("country", "FR"));
        assert!(!out.in_experiment);
        // No targeting key: nothing to record.
        client.is_enabled("banner", &Context::anonymous());
    }
    client.flush(LONG).unwrap();

    let stats = client.stats();
    assert_eq!(stats.exposures_queued, 80, "{stats:?}");
    assert_eq!(stats.exposures_deduplicated, 160, "{stats:?}");
    assert_eq!(stats.items_sent, 80, "{stats:?}");
    assert!(stats.batches_sent >= 80 / 7, "{stats:?}");
    assert_eq!(stats.batches_duplicate, 0);
    assert_eq!(stats.dropped_invalid, 3);

    let by_variant = experiment_users(&s, "checkout");
    for (variant, n) in &expected {
        assert_eq!(by_variant[variant], (*n, *n), "{variant}: {by_variant:?}");
    }
    let banner = s.ok("GET", "/flags/banner/exposures?limit=1000", json!(null));
    let rows = banner["exposures"].as_array().unwrap();
    assert_eq!(rows.len(), 40);
    assert!(
        rows.iter()
            .all(|r| r["variant"] == "on" && r["enabled"] == true)
    );
    let plain = s.ok("GET", "/flags/plain/exposures", json!(null));
    assert_eq!(plain["exposures"].as_array().unwrap().len(), 0);
}

#[test]
fn a_batch_whose_acknowledgement_is_lost_is_retried_with_its_batch_id_and_written_once() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok(
        "POST",
        "/experiments",
        json!({"name": "exp", "variants": ["control", "b"], "is_active": true}),
    );
    // A proxy that lets the first exposure batch reach the server, then loses the answer.
    let upstream = s.url.clone();
    let lost = Arc::new(AtomicBool::new(false));
    let lost_flag = Arc::clone(&lost);
    let proxy = FakeServer::start(move |req| {
        if req.path.starts_with("/sdk/v1/stream") {
            return Reply::json(404, "{}");
        }
        let reply = forward(&upstream, req);
        if req.path.starts_with("/sdk/v1/exposures") && !lost_flag.swap(true, Ordering::SeqCst) {
            return Reply::Drop;
        }
        reply
    });
    let client = builder(&proxy.url, &key).build().unwrap();
    client.wait_until_ready(LONG).unwrap();
    for i in 0..10 {
        assert!(
            client
                .assign("exp", &Context::new(format!("u{i}")))
                .in_experiment
        );
    }
    client.flush(LONG).unwrap();

    let posts = proxy.requests("/sdk/v1/exposures");
    assert_eq!(posts.len(), 2, "one lost answer, one retry");
    let id = |r: &common::Request| -> String {
        serde_json::from_slice::<Value>(&r.body).unwrap()["batch_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(id(&posts[0]), id(&posts[1]));
    assert_eq!(posts[0].body, posts[1].body);
    let stats = client.stats();
    assert!(stats.batch_retries >= 1, "{stats:?}");
    assert_eq!(
        (stats.batches_sent, stats.batches_duplicate),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.items_sent, 10);
    let total: u64 = experiment_users(&s, "exp").values().map(|v| v.1).sum();
    assert_eq!(total, 10, "written once");
}

#[test]
fn metric_events_are_sent_exactly_once() {
    let s = Server::start();
    let key = s.sdk_key();
    let client = builder(&s.url, &key).build().unwrap();
    client.wait_until_ready(LONG).unwrap();
    for i in 0..25 {
        let user = Context::new(format!("u{i}"));
        client.track("purchase", &user, Some(10.0));
        client.track_with_properties("signup", &user, None, json!({"plan": "pro"}));
    }
    client.track("purchase", &Context::anonymous(), Some(1.0));
    client.track("purchase", &Context::new("u1"), Some(f64::INFINITY));
    client.flush(LONG).unwrap();
    assert_eq!(client.stats().dropped_invalid, 2);
    assert_eq!(client.stats().items_sent, 50);
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM events WHERE event_name = 'purchase' AND value = 10.0"
        ),
        25
    );
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM events WHERE event_name = 'signup' AND properties LIKE '%pro%'"
        ),
        25
    );
}

#[test]
fn a_full_buffer_drops_and_counts_instead_of_growing() {
    let client = builder(&dead_url(), "key")
        .exposure_buffer_capacity(10)
        .exposure_batch_size(1000)
        .flush_interval(Duration::from_secs(3600))
        .close_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    for i in 0..100 {
        client.track("click", &Context::new(format!("u{i}")), None);
    }
    let stats = client.stats();
    assert_eq!(
        (
            stats.events_queued,
            stats.dropped_buffer_full,
            stats.buffered
        ),
        (10, 90, 10)
    );
    // The server stays unreachable: closing gives up in bounded time and says so.
    let _ = client.close();
    assert_eq!(client.stats().items_unsent_at_close, 10);
    client.track("click", &Context::new("late"), None);
    assert_eq!(client.stats().dropped_closed, 1);
}

#[test]
fn close_and_dropping_the_last_clone_flush_what_is_queued() {
    let s = Server::start();
    let key = s.sdk_key();
    let quiet = || {
        builder(&s.url, &key)
            .flush_interval(Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    let client = quiet();
    for i in 0..5 {
        client.track("visit", &Context::new(format!("u{i}")), None);
    }
    client.close().unwrap();
    assert_eq!(count(&s, "SELECT COUNT(*) FROM events"), 5);

    let client = quiet();
    let clone = client.clone();
    for i in 0..3 {
        clone.track("visit", &Context::new(format!("v{i}")), None);
    }
    drop(clone);
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM events"),
        5,
        "a clone is not the last"
    );
    drop(client);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM events"), 8);
}

#[test]
fn a_batch_the_server_refuses_is_dropped_and_counted_and_a_server_error_is_retried() {
    let first = Arc::new(AtomicBool::new(true));
    let f = Arc::clone(&first);
    let fake = FakeServer::start(move |req| {
        match req.path.as_str() {
            p if p.starts_with("/sdk/v1/ruleset") => {
                Reply::json(200, r#"{"version": 1, "flags": []}"#)
            }
            // A 503 first (retried), then a 400 (dropped).
            "/sdk/v1/events" if f.swap(false, Ordering::SeqCst) => Reply::json(503, "{}"),
            "/sdk/v1/events" => Reply::json(400, r#"{"error": {"code": "invalid_body"}}"#),
            _ => Reply::json(404, "{}"),
        }
    });
    let client = builder(&fake.url, "key").build().unwrap();
    client.track("x", &Context::new("u1"), None);
    client.flush(LONG).unwrap();
    let stats = client.stats();
    assert_eq!((stats.items_refused, stats.items_sent), (1, 0), "{stats:?}");
    assert_eq!(stats.batch_retries, 1);
    wait_for(LONG, "two attempts", || {
        fake.requests("/sdk/v1/events").len() == 2
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_while_a_batch_is_retried_gives_up_within_the_close_timeout() {
    let fake = FakeServer::start(|req| {
        if req.path.starts_with("/sdk/v1/ruleset") {
            Reply::json(200, r#"{"version": 1, "flags": []}"#)
        } else {
            Reply::json(503, "{}")
        }
    });
    let client = builder(&fake.url, "key")
        .streaming(false)
        .backoff(Duration::from_millis(50), Duration::from_secs(30))
        .close_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    client.track("x", &Context::new("u1"), None);
    let stats = || client.stats();
    while stats().batch_retries < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    let _ = client.close_async().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.stats().items_unsent_at_close, 1);
    assert_eq!(client.stats().items_sent, 0);
}
