//! Evaluation through the SDK's `Client` while rulesets are swapped in: latency (median,
//! p99, p99.9) on 1 and 2 threads, with and without a swap every millisecond, and
//! throughput scaling from 1 to 2 threads. A custom harness, because criterion reports no
//! tail percentiles.
//!
//! Run: `cargo bench -p optifork-benches --bench sdk` (release profile). Optional
//! `SDK_BENCH_SECS` (default 3) sets the length of each measurement.
//!
//! Latencies are per call, timed one by one with `Instant::now()`, so they include one clock
//! read (printed as "clock overhead"; subtract it for the evaluation alone).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use optifork_benches::feature_ruleset;
use optifork_sdk::{Client, Context};

/// Nanosecond histogram up to 1 ms; slower calls land in the last bucket.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; 1_000_001],
            total: 0,
            max: 0,
        }
    }
    fn record(&mut self, ns: u64) {
        self.counts[ns.min(1_000_000) as usize] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }
    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }
    fn percentile(&self, p: f64) -> u64 {
        let target = ((self.total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (ns, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return ns as u64;
            }
        }
        self.max
    }
}

fn user() -> Context {
    Context::new("user-12345")
        .with("country", "US")
        .with("email", "jane@example.com")
        .with("age", 34)
        .with("tier", "free")
        .with("app_version", "2.4.1")
}

fn client() -> Client {
    Client::builder("", "")
        .offline(true)
        .bootstrap_json(feature_ruleset().to_string())
        .build()
        .expect("client")
}

/// Swaps a new ruleset into the client every millisecond (alternating two versions, each
/// parsed, compiled and diffed by the client as a server update would be) until stopped.
fn swapper(
    client: Client,
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let mut a = feature_ruleset();
    a["version"] = 2.into();
    let mut b = feature_ruleset();
    b["version"] = 3.into();
    b["flags"][0]["rollout_percentage"] = 60.into();
    let texts = [a.to_string(), b.to_string()];
    std::thread::spawn(move || {
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            client
                .update_ruleset_json(&texts[i % 2])
                .expect("valid ruleset");
            i += 1;
            swaps.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

struct Run {
    hist: Histogram,
    ops_per_sec: f64,
    swaps_per_sec: f64,
}

/// Runs `threads` evaluators for `secs` (first timing each call, then counting calls
/// untimed for throughput), with or without the swapper.
fn run(threads: usize, swaps_on: bool, secs: f64) -> Run {
    let c = client();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = swaps_on.then(|| swapper(c.clone(), Arc::clone(&stop), Arc::clone(&swaps)));
    let phase = Duration::from_secs_f64(secs);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                let ctx = user();
                // Warm up.
                for _ in 0..100_000 {
                    black_box(c.is_enabled(black_box("simple"), black_box(&ctx)));
                }
                let mut hist = Histogram::new();
                let end = Instant::now() + phase;
                'timed: loop {
                    for _ in 0..1000 {
                        let t0 = Instant::now();
                        black_box(c.is_enabled(black_box("simple"), black_box(&ctx)));
                        let t1 = Instant::now();
                        hist.record((t1 - t0).as_nanos() as u64);
                    }
                    if Instant::now() >= end {
                        break 'timed;
                    }
                }
                let mut n = 0u64;
                let t = Instant::now();
                let end = t + phase;
                loop {
                    for _ in 0..10_000 {
                        black_box(c.is_enabled(black_box("simple"), black_box(&ctx)));
                    }
                    n += 10_000;
                    if Instant::now() >= end {
                        break;
                    }
                }
                (hist, n as f64 / t.elapsed().as_secs_f64())
            })
        })
        .collect();
    let mut hist = Histogram::new();
    let mut ops = 0.0;
    for w in workers {
        let (h, o) = w.join().expect("worker");
        hist.merge(&h);
        ops += o;
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = swapper {
        s.join().expect("swapper");
    }
    let swaps_per_sec = swaps.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    Run {
        hist,
        ops_per_sec: ops,
        swaps_per_sec,
    }
}

fn clock_overhead() -> u64 {
    let mut h = Histogram::new();
    for _ in 0..1_000_000 {
        let t0 = Instant::now();
        let t1 = Instant::now();
        h.record((t1 - t0).as_nanos() as u64);
    }
    h.percentile(0.5)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this quickly as a check.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs: f64 = std::env::var("SDK_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 0.05 } else { 3.0 });
    println!("optifork-sdk: Client::is_enabled(\"simple\") on the feature ruleset");
    if quick {
        println!("(a quick check of the harness; `cargo bench` gives the figures)");
    }
    println!(
        "clock overhead (median of back-to-back Instant::now): {} ns",
        clock_overhead()
    );
    println!(
        "{:<24} {:>8} {:>8} {:>9} {:>9} {:>14} {:>10}",
        "scenario", "median", "p99", "p99.9", "max", "evals/s", "swaps/s"
    );
    let mut results = Vec::new();
    for (threads, swaps) in [(1, false), (1, true), (2, false), (2, true)] {
        let r = run(threads, swaps, secs);
        println!(
            "{:<24} {:>5} ns {:>5} ns {:>6} ns {:>6} ns {:>14.0} {:>10.0}",
            format!(
                "{threads} thread{}, {}",
                if threads == 1 { "" } else { "s" },
                if swaps { "swap/ms" } else { "no swaps" }
            ),
            r.hist.percentile(0.5),
            r.hist.percentile(0.99),
            r.hist.percentile(0.999),
            r.hist.max,
            r.ops_per_sec,
            r.swaps_per_sec,
        );
        results.push(r);
    }
    let scale = |one: &Run, two: &Run| two.ops_per_sec / one.ops_per_sec;
    println!(
        "throughput 2 threads / 1 thread: {:.2}x without swaps, {:.2}x with a swap every ms (target >= 1.8x)",
        scale(&results[0], &results[2]),
        scale(&results[1], &results[3])
    );
    let added = |quiet: &Run, busy: &Run| {
        busy.hist.percentile(0.999) as i64 - quiet.hist.percentile(0.999) as i64
    };
    println!(
        "p99.9 added by swaps: {} ns on 1 thread, {} ns on 2 threads (target <= 1000 ns)",
        added(&results[0], &results[1]),
        added(&results[2], &results[3])
    );
}
