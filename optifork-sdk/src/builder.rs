//! [`ClientBuilder`]: the client's options.

use std::path::PathBuf;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::client::Client;
use crate::error::SdkError;

/// The most items the server accepts in one batch.
pub const MAX_BATCH_SIZE: usize = 10_000;

/// Where the client's background work (fetching, streaming, sending) runs.
#[derive(Clone, Debug, Default)]
pub enum BackgroundRuntime {
    /// On the tokio runtime the client is built in, if that is a multi-thread runtime;
    /// otherwise (no runtime, or a current-thread one, whose only thread the application's
    /// own blocking calls could hold) on a dedicated thread with its own runtime.
    ///
    /// Work spawned on the application's runtime ends with that runtime: a client meant to
    /// outlive it (kept in a `static`, say) should use [`Dedicated`](Self::Dedicated).
    #[default]
    Auto,
    /// Always on a dedicated thread (`optifork-sdk`) with its own current-thread runtime.
    Dedicated,
    /// On this runtime.
    Handle(tokio::runtime::Handle),
}

#[derive(Clone, Debug)]
pub(crate) enum Bootstrap {
    Json(String),
    File(PathBuf),
}

/// Everything the builder sets, as the client uses it.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) server_url: String,
    pub(crate) sdk_key: String,
    pub(crate) poll_interval: Duration,
    pub(crate) streaming: bool,
    pub(crate) request_timeout: Duration,
    pub(crate) stream_idle_timeout: Duration,
    pub(crate) bootstrap: Option<Bootstrap>,
    pub(crate) snapshot_path: Option<PathBuf>,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) buffer_capacity: usize,
    pub(crate) dedup_capacity: usize,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) backoff: Backoff,
    pub(crate) close_timeout: Duration,
    pub(crate) exposure_context: bool,
    pub(crate) runtime: BackgroundRuntime,
    pub(crate) offline: bool,
}

/// Builds a [`Client`]. Start with [`Client::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// let client = optifork_sdk::Client::builder("https://flags.example.com", "ofk_sdk_...")
///     .poll_interval(Duration::from_secs(60))
///     .snapshot_path("/var/cache/myapp/optifork.json")
///     .build()?;
/// # Ok::<(), optifork_sdk::SdkError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientBuilder {
    opts: Options,
}

impl ClientBuilder {
    pub(crate) fn new(server_url: impl Into<String>, sdk_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            opts: Options {
                server_url: server_url.into(),
                sdk_key: sdk_key.into(),
                poll_interval: Duration::from_secs(30),
                streaming: true,
                request_timeout: Duration::from_secs(10),
                stream_idle_timeout: Duration::from_secs(60),
                bootstrap: None,
                snapshot_path: None,
                batch_size: 500,
                flush_interval: Duration::from_secs(5),
                buffer_capacity: 10_000,
                dedup_capacity: 100_000,
                headers: Vec::new(),
                backoff: Backoff {
                    initial: Duration::from_secs(1),
                    max: Duration::from_secs(60),
                },
                close_timeout: Duration::from_secs(5),
                exposure_context: false,
                runtime: BackgroundRuntime::Auto,
                offline: false,
            },
        }
    }

    /// How often to ask the server whether the ruleset changed (with `If-None-Match`, so an
    /// unchanged ruleset costs a 304). Default 30 s; each wait is jittered by ±10%. While the
    /// change stream is connected, the client does not poll.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.opts.poll_interval = interval;
        self
    }

    /// Whether to hold a Server-Sent Events stream open so changes arrive within moments
    /// (default on). While the stream is down the client polls.
    pub fn streaming(mut self, on: bool) -> Self {
        self.opts.streaming = on;
        self
    }

    /// The time limit of each request to the server (default 10 s). The change stream has
    /// no overall limit, only [`stream_idle_timeout`](Self::stream_idle_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.opts.request_timeout = timeout;
        self
    }

    /// How long the change stream may stay silent (no event, no heartbeat) before the client
    /// reconnects (default 60 s; the server sends a heartbeat every 15 s).
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.opts.stream_idle_timeout = timeout;
        self
    }

    /// A ruleset (its JSON, as `GET /sdk/v1/ruleset` returns it) to serve until the server
    /// answers. Checked by [`build`](Self::build): an invalid one is an error.
    pub fn bootstrap_json(mut self, json: impl Into<String>) -> Self {
        self.opts.bootstrap = Some(Bootstrap::Json(json.into()));
        self
    }

    /// Like [`bootstrap_json`](Self::bootstrap_json), read from a file by
    /// [`build`](Self::build).
    pub fn bootstrap_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.opts.bootstrap = Some(Bootstrap::File(path.into()));
        self
    }

    /// A file where the client keeps the last good ruleset it fetched (written atomically:
    /// a temporary file, then a rename), and from which it starts when the server is down.
    /// A missing or unreadable snapshot is ignored. When there is a bootstrap too, the one
    /// with the higher version is served first (the snapshot on a tie).
    pub fn snapshot_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.opts.snapshot_path = Some(path.into());
        self
    }

    /// Exposures and events per request (default 500, at most [`MAX_BATCH_SIZE`]). A full
    /// batch is sent at once.
    pub fn exposure_batch_size(mut self, size: usize) -> Self {
        self.opts.batch_size = size;
        self
    }

    /// How long recorded exposures and events may wait before being sent (default 5 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.opts.flush_interval = interval;
        self
    }

    /// How many exposures and events may wait to be sent (default 10,000). Beyond that new
    /// ones are dropped and counted ([`Stats::dropped_buffer_full`](crate::Stats)), so a
    /// long outage never grows memory without bound.
    pub fn exposure_buffer_capacity(mut self, capacity: usize) -> Self {
        self.opts.buffer_capacity = capacity;
        self
    }

    /// How many recent (user, flag or experiment, variant) triples are remembered to send
    /// each exposure once (default 100,000; least recently seen forgotten first). Memory is
    /// about 40 bytes per entry.
    pub fn exposure_dedup_capacity(mut self, capacity: usize) -> Self {
        self.opts.dedup_capacity = capacity;
        self
    }

    /// Sends the evaluation context's attributes with each exposure (default off: only the
    /// user id travels).
    pub fn send_context_with_exposures(mut self, on: bool) -> Self {
        self.opts.exposure_context = on;
        self
    }

    /// An extra HTTP header for every request (a proxy's credentials, a tenant id, ...).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.opts.headers.push((name.into(), value.into()));
        self
    }

    /// The retry backoff: the first retry waits about `initial`, each further one about
    /// twice as long, up to `max` (defaults 1 s and 60 s). Applies to failed fetches,
    /// stream reconnects and batch retries; every delay is jittered.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.opts.backoff = Backoff { initial, max };
        self
    }

    /// How long [`Client::close`] (and dropping the last clone of the client) may spend
    /// sending what is still queued (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.opts.close_timeout = timeout;
        self
    }

    /// Where the background work runs (default [`BackgroundRuntime::Auto`]).
    pub fn runtime(mut self, runtime: BackgroundRuntime) -> Self {
        self.opts.runtime = runtime;
        self
    }

    /// Never contact the server: serve the bootstrap or snapshot (or rulesets given to
    /// [`Client::update_ruleset_json`]) and drop exposures and events. For tests, tools and
    /// air-gapped deployments. The URL and key are not checked.
    pub fn offline(mut self, offline: bool) -> Self {
        self.opts.offline = offline;
        self
    }

    /// Checks the options, loads the bootstrap and snapshot, and starts the background work
    /// (without waiting for the server: see [`Client::wait_until_ready`]).
    pub fn build(self) -> Result<Client, SdkError> {
        let o = &self.opts;
        let invalid = |option, reason: &str| {
            Err(SdkError::InvalidOption {
                option,
                reason: reason.to_owned(),
            })
        };
        if !(1..=MAX_BATCH_SIZE).contains(&o.batch_size) {
            return invalid(
                "exposure_batch_size",
                "must be between 1 and 10,000 (the server's limit)",
            );
        }
        if o.buffer_capacity == 0 {
            return invalid("exposure_buffer_capacity", "must be at least 1");
        }
        if o.dedup_capacity == 0 {
            return invalid("exposure_dedup_capacity", "must be at least 1");
        }
        if o.poll_interval < Duration::from_millis(10) {
            return invalid("poll_interval", "must be at least 10 ms");
        }
        if o.flush_interval.is_zero() {
            return invalid("flush_interval", "must be more than zero");
        }
        if o.request_timeout.is_zero() || o.stream_idle_timeout.is_zero() {
            return invalid("request_timeout", "timeouts must be more than zero");
        }
        if o.backoff.initial.is_zero() || o.backoff.max < o.backoff.initial {
            return invalid(
                "backoff",
                "initial must be more than zero and no more than max",
            );
        }
        if !o.offline {
            check_url(&o.server_url)?;
        }
        Client::start(self.opts)
    }
}

fn check_url(url: &str) -> Result<(), SdkError> {
    let bad = |reason: &str| SdkError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if parsed.host_str().is_none() {
        return Err(bad("no host"));
    }
    Ok(())
}
