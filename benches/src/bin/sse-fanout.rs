//! Propagation and connection-cost benchmark for SSE streaming across replicas.
//!
//! Opens `--clients` SSE streams on the reader replica, measures that replica's resident
//! memory before and after (memory per idle connection), then makes `--writes` changes through
//! the writer replica and measures, for every client, the time from sending the write to
//! receiving the `ruleset` event with the new version. Prints p50/p99/max.
//!
//! Driven by `benches/load/sse-fanout.sh`, which starts PostgreSQL database, Redis and two
//! replicas. Usage:
//! `sse-fanout --writer http://127.0.0.1:A --reader http://127.0.0.1:B --admin-key K
//!  --sdk-key S --clients 1000 --writes 20`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

struct Args {
    writer: String,
    reader: String,
    admin_key: String,
    sdk_key: String,
    clients: usize,
    writes: usize,
}

fn args() -> Args {
    let mut a = Args {
        writer: String::new(),
        reader: String::new(),
        admin_key: String::new(),
        sdk_key: String::new(),
        clients: 1000,
        writes: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--writer" => a.writer = value,
            "--reader" => a.reader = value,
            "--admin-key" => a.admin_key = value,
            "--sdk-key" => a.sdk_key = value,
            "--clients" => a.clients = value.parse().expect("--clients"),
            "--writes" => a.writes = value.parse().expect("--writes"),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("http://ip:port")
}

/// A plain HTTP/1.1 request; returns (status, body).
async fn http(url: &str, method: &str, path: &str, key: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr(url)).await.expect("connect");
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

async fn gauge(url: &str, name: &str) -> u64 {
    let (_, text) = http(url, "GET", "/metrics", "", None).await;
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn rss(url: &str) -> u64 {
    gauge(url, "optifork_process_resident_memory_bytes").await
}

/// One SSE client: reports (client, version, instant) for every event.
async fn client(
    id: usize,
    reader: SocketAddr,
    key: Arc<String>,
    tx: mpsc::UnboundedSender<(usize, i64, Instant)>,
) {
    let Ok(mut s) = TcpStream::connect(reader).await else {
        eprintln!("client {id}: connect failed");
        return;
    };
    let req = format!(
        "GET /sdk/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return;
    }
    let mut lines = BufReader::new(s).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // Chunked encoding interleaves size lines; "id:<version>" lines are what matter.
        if let Some(v) = line
            .strip_prefix("id:")
            .and_then(|v| v.trim().parse::<i64>().ok())
            && tx.send((id, v, Instant::now())).is_err()
        {
            return;
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let a = args();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let reader = addr(&a.reader);
    let key = Arc::new(a.sdk_key.clone());
    let rss_before = rss(&a.reader).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    for id in 0..a.clients {
        tokio::spawn(client(id, reader, Arc::clone(&key), tx.clone()));
        if id % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await; // do not overflow the accept queue
        }
    }
    // Every client first receives the current version.
    let mut first_version = 0;
    let mut ready = 0;
    while ready < a.clients {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some((_, v, _))) => {
                first_version = first_version.max(v);
                ready += 1;
            }
            _ => break,
        }
    }
    println!(
        "connected {ready}/{} SSE clients to {} in {:?}",
        a.clients,
        a.reader,
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss(&a.reader).await;
    let per_conn = rss_after.saturating_sub(rss_before) as f64 / ready.max(1) as f64;
    println!(
        "reader: {} open SSE streams, {} open file descriptors",
        gauge(&a.reader, "optifork_sse_connections").await,
        gauge(&a.reader, "optifork_process_open_fds").await
    );
    println!(
        "reader RSS: {:.1} MB before, {:.1} MB with {ready} streams: {:.1} KB per idle connection",
        rss_before as f64 / 1e6,
        rss_after as f64 / 1e6,
        per_conn / 1024.0
    );
    if a.writes == 0 {
        return;
    }
    let mut latencies = Vec::with_capacity(a.writes * ready);
    let (status, _) = http(
        &a.writer,
        "POST",
        "/flags",
        &a.admin_key,
        Some(r#"{"name":"fanout_bench","is_enabled":true}"#),
    )
    .await;
    assert!(
        status == 201 || status == 409,
        "creating the bench flag: {status}"
    );
    // Drain the event of that creation.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    while rx.try_recv().is_ok() {}
    for w in 0..a.writes {
        let body = format!(r#"{{"description":"write {w}"}}"#);
        let sent = Instant::now();
        let (status, resp) = http(
            &a.writer,
            "PUT",
            "/flags/fanout_bench",
            &a.admin_key,
            Some(&body),
        )
        .await;
        assert_eq!(status, 200, "{resp}");
        let mut got = 0;
        while got < ready {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some((_, _, at))) => {
                    latencies.push(at.duration_since(sent));
                    got += 1;
                }
                _ => {
                    println!("write {w}: only {got}/{ready} clients heard of it within 10 s");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    println!(
        "propagation write(A) -> event(B) over {} deliveries ({} writes x {ready} clients): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        a.writes,
        pct(&latencies, 0.50).as_secs_f64() * 1e3,
        pct(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}
