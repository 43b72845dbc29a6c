//! Experiment ingestion and results at scale (BENCHMARKS.md): sends `--exposures` exposures and
//! `--events` metric events through `POST /sdk/v1/exposures` and `/sdk/v1/events` (batches of
//! `--batch`, `--concurrency` connections), reporting rows per second, then times
//! `GET /experiments/bench_exp/results` five times (median and all runs).
//!
//! Driven by `benches/load/experiment-load.sh`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        Conn {
            reader: BufReader::new(stream),
        }
    }

    /// One keep-alive request; returns (status, body).
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes()).await.expect("write");
        s.write_all(body).await.expect("write");
        let mut status = 0u16;
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).await.expect("read");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if status == 0 {
                status = l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
            } else if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut buf = vec![0; length];
        self.reader.read_exact(&mut buf).await.expect("body");
        (status, buf)
    }
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn ts(base_secs: i64, offset_ms: i64) -> String {
    let t = base_secs * 1000 + offset_ms;
    let (secs, ms) = (t.div_euclid(1000), t.rem_euclid(1000));
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn send_batches(
    addr: String,
    key: String,
    path: &'static str,
    batches: Vec<Vec<u8>>,
) -> usize {
    let mut conn = Conn::open(&addr).await;
    let mut sent = 0;
    for b in batches {
        let (status, body) = conn.request("POST", path, &key, &b).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        sent += 1;
    }
    sent
}

async fn ingest(
    addr: &str,
    key: &str,
    path: &'static str,
    batches: Vec<Vec<u8>>,
    rows: usize,
    concurrency: usize,
) -> f64 {
    let mut lanes: Vec<Vec<Vec<u8>>> = vec![Vec::new(); concurrency];
    for (i, b) in batches.into_iter().enumerate() {
        lanes[i % concurrency].push(b);
    }
    let started = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|lane| tokio::spawn(send_batches(addr.to_owned(), key.to_owned(), path, lane)))
        .collect();
    for t in tasks {
        t.await.expect("sender");
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let addr = arg("--server", "127.0.0.1:8000");
    let admin = arg("--admin-key", "");
    let sdk = arg("--sdk-key", "");
    let exposures: usize = arg("--exposures", "1000000").parse().unwrap();
    let events: usize = arg("--events", "1000000").parse().unwrap();
    let batch: usize = arg("--batch", "5000").parse().unwrap();
    let concurrency: usize = arg("--concurrency", "4").parse().unwrap();
    let base = 1_790_000_000i64; // 2026-09-21

    let mut conn = Conn::open(&addr).await;
    let experiment = br#"{"name":"bench_exp","variants":["control","treatment"],"traffic_splits":{"control":50,"treatment":50},"is_active":true,
      "metrics":[{"name":"conversion","event":"purchase","type":"conversion"},{"name":"revenue","event":"purchase","type":"sum"},
                 {"name":"order_value","event":"purchase","type":"mean"},{"name":"views","event":"pageview","type":"count"}]}"#;
    let (status, body) = conn
        .request("POST", "/experiments", &admin, experiment)
        .await;
    assert!(
        status == 201 || status == 409,
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Exposures: one per user, alternating variants.
    let prep = Instant::now();
    let exposure_batches: Vec<Vec<u8>> = (0..exposures)
        .collect::<Vec<_>>()
        .chunks(batch)
        .enumerate()
        .map(|(b, chunk)| {
            let mut s = format!(r#"{{"batch_id":"exp-{b}","exposures":["#);
            for (j, i) in chunk.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                let variant = if i % 2 == 0 { "control" } else { "treatment" };
                s.push_str(&format!(
                    r#"{{"experiment":"bench_exp","user_id":"u{i}","variant":"{variant}","timestamp":"{}"}}"#,
                    ts(base, (*i % 3_600_000) as i64)
                ));
            }
            s.push_str("]}");
            s.into_bytes()
        })
        .collect();
    // Events: purchases by about a third of the users (more for treatment), page views for all.
    let event_batches: Vec<Vec<u8>> = (0..events)
        .collect::<Vec<_>>()
        .chunks(batch)
        .enumerate()
        .map(|(b, chunk)| {
            let mut s = format!(r#"{{"batch_id":"ev-{b}","events":["#);
            for (j, k) in chunk.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                let user = (k * 7919) % exposures.max(1);
                let at = ts(base + 7200, (*k % 3_600_000) as i64);
                if k % 3 == 0 || (user % 2 == 1 && k % 3 == 1 && k % 10 < 2) {
                    let value = 5.0 + (k % 50) as f64;
                    s.push_str(&format!(r#"{{"event":"purchase","user_id":"u{user}","value":{value},"timestamp":"{at}"}}"#));
                } else {
                    s.push_str(&format!(r#"{{"event":"pageview","user_id":"u{user}","timestamp":"{at}"}}"#));
                }
            }
            s.push_str("]}");
            s.into_bytes()
        })
        .collect();
    println!(
        "prepared {} + {} batches in {:?}",
        exposure_batches.len(),
        event_batches.len(),
        prep.elapsed()
    );

    let rate = ingest(
        &addr,
        &sdk,
        "/sdk/v1/exposures",
        exposure_batches,
        exposures,
        concurrency,
    )
    .await;
    println!(
        "ingested {exposures} exposures through POST /sdk/v1/exposures: {rate:.0} rows/s (batch {batch}, {concurrency} connections)"
    );
    let rate = ingest(
        &addr,
        &sdk,
        "/sdk/v1/events",
        event_batches,
        events,
        concurrency,
    )
    .await;
    println!("ingested {events} events through POST /sdk/v1/events: {rate:.0} rows/s");

    let mut times = Vec::new();
    let mut last = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, body) = conn
            .request("GET", "/experiments/bench_exp/results", &admin, b"")
            .await;
        times.push(started.elapsed());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        last = body;
    }
    let mut sorted = times.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "GET /experiments/bench_exp/results: median {:.0} ms (runs: {})",
        ms(sorted[2]),
        times
            .iter()
            .map(|t| format!("{:.0}", ms(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let v: serde_json::Value = serde_json::from_slice(&last).unwrap();
    println!(
        "users: control {}, treatment {}; conversion p-value {}",
        v["variants"][0]["users"],
        v["variants"][1]["users"],
        v["metrics"][0]["comparisons"][0]["frequentist"]["p_value"]
    );
}
