//! `GET /metrics` in Prometheus' text format: requests by route and status, latency
//! histograms by route, ruleset version per environment, the exposure queue, open SSE streams.
//!
//! Counters are atomics preallocated per route (routes are a static table), so recording a
//! request takes no lock and no allocation.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::api::ROUTES;
use crate::state::AppState;

/// Latency bucket upper bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Statuses counted separately; anything else is counted by class (`2xx`...).
const STATUSES: [u16; 16] = [
    200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 429, 500, 503,
];

struct RouteMetrics {
    statuses: [AtomicU64; STATUSES.len()],
    classes: [AtomicU64; 6],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl RouteMetrics {
    fn new() -> RouteMetrics {
        RouteMetrics {
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            classes: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// Request metrics for every route (plus one slot for requests that matched none).
pub struct Metrics {
    routes: Vec<RouteMetrics>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Zeroed metrics.
    pub fn new() -> Metrics {
        Metrics {
            routes: (0..=ROUTES.len()).map(|_| RouteMetrics::new()).collect(),
        }
    }

    /// Records one request of route `index` (`None`: no route matched).
    pub fn record(&self, index: Option<usize>, status: u16, elapsed: Duration) {
        let m = &self.routes[index.unwrap_or(ROUTES.len()).min(ROUTES.len())];
        match STATUSES.iter().position(|&s| s == status) {
            Some(i) => m.statuses[i].fetch_add(1, Ordering::Relaxed),
            None => m.classes[usize::from(status / 100).min(5)].fetch_add(1, Ordering::Relaxed),
        };
        let secs = elapsed.as_secs_f64();
        for (i, &bound) in BUCKETS.iter().enumerate() {
            if secs <= bound {
                m.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        m.count.fetch_add(1, Ordering::Relaxed);
        m.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

fn label(route: Option<usize>) -> (String, String) {
    match route.and_then(|i| ROUTES.get(i)) {
        Some(r) => (r.method.as_str().to_owned(), r.path.to_owned()),
        None => ("any".into(), "unmatched".into()),
    }
}

/// The metrics page.
pub fn render(state: &AppState) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let m = &state.metrics;
    out.push_str("# HELP optifork_http_requests_total HTTP requests by route and status.\n");
    out.push_str("# TYPE optifork_http_requests_total counter\n");
    for (i, r) in m.routes.iter().enumerate() {
        let (method, path) = label((i < ROUTES.len()).then_some(i));
        for (j, &status) in STATUSES.iter().enumerate() {
            let n = r.statuses[j].load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "optifork_http_requests_total{{method=\"{method}\",route=\"{path}\",status=\"{status}\"}} {n}"
                );
            }
        }
        for (class, counter) in r.classes.iter().enumerate() {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "optifork_http_requests_total{{method=\"{method}\",route=\"{path}\",status=\"{class}xx\"}} {n}"
                );
            }
        }
    }
    out.push_str("# HELP optifork_http_request_duration_seconds Time to answer, by route.\n");
    out.push_str("# TYPE optifork_http_request_duration_seconds histogram\n");
    for (i, r) in m.routes.iter().enumerate() {
        let count = r.count.load(Ordering::Relaxed);
        if count == 0 {
            continue;
        }
        let (method, path) = label((i < ROUTES.len()).then_some(i));
        for (j, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "optifork_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{path}\",le=\"{bound}\"}} {}",
                r.buckets[j].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "optifork_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{path}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "optifork_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{path}\"}} {}",
            r.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "optifork_http_request_duration_seconds_count{{method=\"{method}\",route=\"{path}\"}} {count}"
        );
    }
    out.push_str("# HELP optifork_ruleset_version The live ruleset version per environment.\n");
    out.push_str("# TYPE optifork_ruleset_version gauge\n");
    for (env, version) in state.versions() {
        let _ = writeln!(
            out,
            "optifork_ruleset_version{{environment=\"{env}\"}} {version}"
        );
    }
    let stats = &state.ingest.stats;
    let gauges: [(&str, &str, &str, u64); 7] = [
        (
            "optifork_exposure_queue_depth",
            "gauge",
            "Exposures waiting to be written.",
            state.ingest.depth() as u64,
        ),
        (
            "optifork_exposures_queued_total",
            "counter",
            "Exposures queued by evaluation routes.",
            stats.queued.load(Ordering::Relaxed),
        ),
        (
            "optifork_exposures_written_total",
            "counter",
            "Queued exposures written to the database.",
            stats.written.load(Ordering::Relaxed),
        ),
        (
            "optifork_exposures_dropped_total",
            "counter",
            "Exposures dropped because the queue was full.",
            stats.dropped.load(Ordering::Relaxed),
        ),
        (
            "optifork_sse_connections",
            "gauge",
            "Open SSE streams.",
            u64::try_from(state.open_streams.load(Ordering::Relaxed)).unwrap_or(0),
        ),
        (
            "optifork_process_resident_memory_bytes",
            "gauge",
            "Resident memory of this process.",
            resident_bytes(),
        ),
        (
            "optifork_process_open_fds",
            "gauge",
            "Open file descriptors of this process.",
            open_fds(),
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    out
}

/// Resident set size from /proc (0 where unavailable).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Open file descriptors from /proc (0 where unavailable).
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}
