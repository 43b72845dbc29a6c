//! Command-line options; every option can also be set through an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// OptiFork's server: admin API, remote evaluation, SDK sync and exposure ingestion.
#[derive(Clone, Debug, Parser)]
#[command(name = "optifork-server", version, about)]
pub struct Settings {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "OPTIFORK_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Database: `postgres://…` for PostgreSQL, otherwise an SQLite file path
    /// (`sqlite://path` also works).
    #[arg(long, env = "OPTIFORK_DATABASE_URL", default_value = "optifork.db")]
    pub database_url: String,

    /// Redis URL (optional): shares ruleset changes and rate limits between replicas.
    #[arg(long, env = "OPTIFORK_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel this deployment uses.
    #[arg(long, env = "OPTIFORK_REDIS_PREFIX", default_value = "optifork")]
    pub redis_prefix: String,

    /// API requests allowed per client IP per window (0: unlimited). SDK sync with a valid
    /// SDK key is not counted.
    #[arg(long, env = "OPTIFORK_RATE_LIMIT_API", default_value_t = 1000)]
    pub rate_limit_api: u32,

    /// Flag evaluations allowed per user per window (0: unlimited).
    #[arg(
        long,
        env = "OPTIFORK_RATE_LIMIT_EVALUATIONS",
        default_value_t = 10_000
    )]
    pub rate_limit_evaluations: u32,

    /// Config fetches allowed per client (API key, or IP without one) per window (0:
    /// unlimited).
    #[arg(long, env = "OPTIFORK_RATE_LIMIT_CONFIGS", default_value_t = 100)]
    pub rate_limit_configs: u32,

    /// The rate-limit window in seconds (the seed's limits are per hour).
    #[arg(long, env = "OPTIFORK_RATE_LIMIT_WINDOW_SECS", default_value_t = 3600)]
    pub rate_limit_window_secs: u64,

    /// Take the client's IP from `X-Forwarded-For` (set this behind a load balancer you
    /// control, never when clients reach the server directly).
    #[arg(long, env = "OPTIFORK_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// `Access-Control-Allow-Origin` for the OFREP and SDK routes, so that browser apps on
    /// other origins can call them with an SDK key (empty: no CORS headers).
    #[arg(long, env = "OPTIFORK_CORS_ORIGIN", default_value = "*")]
    pub cors_origin: String,

    /// An admin API key to create at start, for automation. Any string of 16 characters
    /// or more.
    #[arg(long, env = "OPTIFORK_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// Turn authentication off entirely. For local experiments only: anyone who can reach
    /// the server can change everything.
    #[arg(long, env = "OPTIFORK_INSECURE_DEV_MODE", default_value_t = false)]
    pub insecure_dev_mode: bool,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "OPTIFORK_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most exposures or events accepted in one SDK batch.
    #[arg(long, env = "OPTIFORK_MAX_BATCH", default_value_t = 10_000)]
    pub max_batch: usize,

    /// Exposures logged by evaluation routes are written in batches of at most this many.
    #[arg(long, env = "OPTIFORK_EXPOSURE_BATCH", default_value_t = 1000)]
    pub exposure_batch: usize,

    /// ... or after this many milliseconds, whichever comes first.
    #[arg(long, env = "OPTIFORK_EXPOSURE_FLUSH_MS", default_value_t = 200)]
    pub exposure_flush_ms: u64,

    /// Exposures queued beyond this many are dropped (and counted) rather than letting
    /// memory grow when the database is slow.
    #[arg(long, env = "OPTIFORK_EXPOSURE_QUEUE", default_value_t = 100_000)]
    pub exposure_queue: usize,

    /// How long the ids of ingested exposure and event batches are remembered, in hours: a
    /// client retrying a batch within this window is not counted twice. Older ids are pruned
    /// hourly. 0 keeps them forever.
    #[arg(long, env = "OPTIFORK_BATCH_ID_RETENTION_HOURS", default_value_t = 72)]
    pub batch_id_retention_hours: u64,

    /// How often to check the database for changes made by other replicas (rulesets, API
    /// keys), in milliseconds. With Redis, changes also arrive at once by pub/sub.
    #[arg(long, env = "OPTIFORK_DB_POLL_MS", default_value_t = 2000)]
    pub db_poll_ms: u64,

    /// Seconds between SSE heartbeats (comment lines that keep proxies from closing idle
    /// streams).
    #[arg(long, env = "OPTIFORK_SSE_HEARTBEAT_SECS", default_value_t = 15)]
    pub sse_heartbeat_secs: u64,

    /// Instead of serving: GET this URL (plain HTTP) and exit 0 on a 2xx answer, 1 otherwise.
    /// For container health checks (the image has no curl).
    #[arg(long, value_name = "URL")]
    pub probe: Option<String>,

    /// Log filter (tracing's EnvFilter syntax). Connection-level errors of clients that hang
    /// up mid-request are not logged by default.
    #[arg(long, env = "OPTIFORK_LOG", default_value = "info,warp::server=off")]
    pub log: String,
}

impl Settings {
    /// How long queued exposures may wait before being written.
    pub fn exposure_flush(&self) -> Duration {
        Duration::from_millis(self.exposure_flush_ms.max(1))
    }
}
