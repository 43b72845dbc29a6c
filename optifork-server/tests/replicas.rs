//! Two server processes on one PostgreSQL database and one Redis acting as one: writes through
//! either replica reach the other's ruleset and SSE streams; without Redis they converge by
//! polling; rate limits hold across both.

mod common;

use std::time::{Duration, Instant};

use common::{RedisServer, Server, SseReader, send};
use serde_json::{Value, json};

async fn etag(s: &Server, key: &str) -> i64 {
    let resp = s
        .http
        .get(s.url("/sdk/v1/ruleset"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    resp.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap()
}

async fn wait_subscribed(s: &Server) {
    for _ in 0..200 {
        let (_, ready) = send(s.http.get(s.url("/readyz"))).await;
        if ready["redis"] == "subscribed" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never subscribed to Redis", s.url);
}

/// Two replicas sharing PostgreSQL and a Redis. The database poll is slow (3 s) so that a
/// change seen within 500 ms came through Redis.
async fn replicas(redis: &RedisServer, prefix: &str, extra: &[&str]) -> Option<(Server, Server)> {
    let url = redis.url();
    let mut args = vec![
        "--redis-url",
        &url,
        "--redis-prefix",
        prefix,
        "--db-poll-ms",
        "3000",
    ];
    args.extend_from_slice(extra);
    let a = Server::start_with(common::Backend::Postgres, &args).await?;
    let b = a.replica(&args);
    wait_subscribed(&a).await;
    wait_subscribed(&b).await;
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_reaches_b_ruleset_and_stream_then_polling_covers_a_redis_outage() {
    let mut redis = RedisServer::start();
    let prefix = format!("it-{}", uuid::Uuid::new_v4().simple());
    let Some((a, b)) = replicas(&redis, &prefix, &[]).await else {
        return;
    };
    let sdk = a.sdk_key("production").await;
    // B learns about the new key through Redis ("keys") or its poll.
    let mut stream = None;
    for _ in 0..100 {
        let resp = b
            .http
            .get(b.url("/sdk/v1/stream"))
            .bearer_auth(&sdk)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            stream = Some(SseReader::new(resp));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stream = stream.expect("B accepts the SDK key");
    stream
        .next(Duration::from_secs(5))
        .await
        .expect("current version");

    // 1. Push through Redis: each write on A is on B's stream and ruleset within 500 ms, five
    //    times in a row (a 3 s poll cannot explain that).
    for i in 0..5 {
        let started = Instant::now();
        let (status, _) = send(a.post(
            "/flags",
            &json!({"name": format!("f{i}"), "is_enabled": true}),
        ))
        .await;
        assert_eq!(status, 201);
        let event = stream
            .next(Duration::from_secs(5))
            .await
            .expect("pushed on B's stream");
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_millis(500),
            "write {i} reached B's stream after {elapsed:?}"
        );
        let version: i64 = event.id.parse().unwrap();
        assert_eq!(etag(&b, &sdk).await, version);
        let (_, rs) = send(b.http.get(b.url("/sdk/v1/ruleset")).bearer_auth(&sdk)).await;
        assert!(
            rs["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == format!("f{i}"))
        );
    }
    // Writes through B reach A the same way.
    send(b.post("/flags", &json!({"name": "from_b"}))).await;
    let started = Instant::now();
    while etag(&a, &sdk).await != etag(&b, &sdk).await {
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "B's write did not reach A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stream
        .next(Duration::from_secs(5))
        .await
        .expect("B's own write is on its stream");

    // 2. Redis stops: both keep serving, writes still work, and B converges by polling.
    redis.stop();
    let (status, _) = send(a.post("/flags", &json!({"name": "during_outage"}))).await;
    assert_eq!(status, 201);
    let (status, _) = send(b.get("/flags/f0?user_id=1")).await;
    assert_eq!(status, 200, "B serves while Redis is down");
    let want = etag(&a, &sdk).await;
    let started = Instant::now();
    while etag(&b, &sdk).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B did not converge by polling"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The poll also pushes to B's streams.
    let event = stream
        .next(Duration::from_secs(5))
        .await
        .expect("pushed after the poll");
    assert_eq!(event.id.parse::<i64>().unwrap(), want);

    // 3. Redis is back: subscriptions resume and pushes are fast again.
    redis.start_again();
    wait_subscribed(&a).await;
    wait_subscribed(&b).await;
    let started = Instant::now();
    send(a.post("/flags", &json!({"name": "after_outage"}))).await;
    let event = stream
        .next(Duration::from_secs(5))
        .await
        .expect("pushed after Redis returned");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "push resumed slowly: {:?}",
        started.elapsed()
    );
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["version"].as_i64().unwrap(), etag(&a, &sdk).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_by_polling_without_redis() {
    let Some(a) = Server::start_with(common::Backend::Postgres, &["--db-poll-ms", "200"]).await
    else {
        return;
    };
    let b = a.replica(&["--db-poll-ms", "200"]);
    let sdk = a.sdk_key("production").await;
    send(a.post("/flags", &json!({"name": "x", "is_enabled": true}))).await;
    let started = Instant::now();
    loop {
        let (status, body) = send(b.http.get(b.url("/flags/x?user_id=1")).bearer_auth(&sdk)).await;
        if status == 200 && body["enabled"] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no convergence: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_across_replicas() {
    let redis = RedisServer::start();
    let prefix = format!("it-{}", uuid::Uuid::new_v4().simple());
    let Some((a, b)) = replicas(&redis, &prefix, &["--rate-limit-api", "10"]).await else {
        return;
    };
    let mut ok = 0;
    let mut limited = 0;
    for i in 0..16 {
        let s = if i % 2 == 0 { &a } else { &b };
        match send(s.get("/flags")).await.0 {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (ok, limited),
        (10, 6),
        "the limit of 10 must hold across both replicas together"
    );
}
