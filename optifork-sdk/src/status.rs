//! What the client knows about its freshness, and its counters.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Where the ruleset being served came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Fetched from the server by this client.
    Server,
    /// The bootstrap ruleset given to the builder.
    Bootstrap,
    /// The persisted snapshot of an earlier run's last good ruleset.
    Snapshot,
    /// Installed by the application with
    /// [`Client::update_ruleset_json`](crate::Client::update_ruleset_json).
    Manual,
}

impl Source {
    /// The source in lower case (`server`, `bootstrap`, `snapshot`, `manual`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Server => "server",
            Source::Bootstrap => "bootstrap",
            Source::Snapshot => "snapshot",
            Source::Manual => "manual",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How fresh the served ruleset is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Nothing to serve yet: no bootstrap or snapshot, and the server has not answered yet.
    /// Evaluations serve the callers' defaults (reason `ERROR`, `FLAG_NOT_FOUND`).
    NotReady,
    /// Serving the server's current ruleset: the last contact with the server succeeded (or
    /// the client is offline and serves its bootstrap or snapshot).
    Ready,
    /// Serving a ruleset the server has not confirmed lately: the server is unreachable,
    /// refused the key, sent a ruleset that was refused, or has not been reached yet while a
    /// bootstrap or snapshot is served.
    Stale,
    /// Nothing to serve, and the server could not be reached or refused the key.
    Error,
}

impl State {
    /// The state in upper snake case (`NOT_READY`, `READY`, `STALE`, `ERROR`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::NotReady => "NOT_READY",
            State::Ready => "READY",
            State::Stale => "STALE",
            State::Error => "ERROR",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of the client's freshness, from [`Client::status`](crate::Client::status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Ready, stale, ...
    pub state: State,
    /// Where the served ruleset came from; `None` while nothing is served.
    pub source: Option<Source>,
    /// The served ruleset's version.
    pub version: Option<u64>,
    /// The served ruleset's environment.
    pub environment: Option<String>,
    /// When the served ruleset was installed (the last good update).
    pub updated_at: Option<SystemTime>,
    /// When the server last confirmed the served ruleset (a 200 or a 304).
    pub confirmed_at: Option<SystemTime>,
    /// The last problem met (unreachable server, refused key, refused ruleset); cleared by
    /// the next success.
    pub last_error: Option<String>,
    /// Whether the change stream is connected right now.
    pub streaming: bool,
}

impl Status {
    pub(crate) fn new() -> Status {
        Status {
            state: State::NotReady,
            source: None,
            version: None,
            environment: None,
            updated_at: None,
            confirmed_at: None,
            last_error: None,
            streaming: false,
        }
    }

    /// Whether a ruleset is being served (ready or stale).
    pub fn has_ruleset(&self) -> bool {
        self.source.is_some()
    }
}

/// Counters since the client was built, from [`Client::stats`](crate::Client::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Ruleset requests sent (initial fetch, polls, fetches a stream event asked for).
    pub ruleset_requests: u64,
    /// Of those, answered with a new ruleset (200).
    pub ruleset_updates: u64,
    /// Of those, answered "not modified" (304).
    pub ruleset_not_modified: u64,
    /// Of those, failed (network error, timeout, error status).
    pub ruleset_errors: u64,
    /// Rulesets received but refused because they did not parse or compile.
    pub rulesets_refused: u64,
    /// Times the change stream connected.
    pub stream_connects: u64,
    /// `ruleset` events received on the change stream.
    pub stream_events: u64,
    /// Exposures queued for sending.
    pub exposures_queued: u64,
    /// Exposures not queued because the same (user, flag or experiment, variant) was
    /// recorded recently.
    pub exposures_deduplicated: u64,
    /// Metric events queued for sending.
    pub events_queued: u64,
    /// Exposures and events dropped because the buffer was full.
    pub dropped_buffer_full: u64,
    /// Exposures and events dropped as unsendable: no targeting key, a non-finite value.
    pub dropped_invalid: u64,
    /// Exposures and events recorded after [`Client::close`](crate::Client::close).
    pub dropped_closed: u64,
    /// Exposures and events the server acknowledged.
    pub items_sent: u64,
    /// Batches the server acknowledged.
    pub batches_sent: u64,
    /// Of those, acknowledged as duplicates (a retry of a batch the server already had).
    pub batches_duplicate: u64,
    /// Attempts to send a batch that failed and were retried.
    pub batch_retries: u64,
    /// Exposures and events in batches the server refused outright (a 4xx other than 408,
    /// 413 and 429); retrying could not help.
    pub items_refused: u64,
    /// Exposures and events still unsent when the client closed.
    pub items_unsent_at_close: u64,
    /// Exposures and events waiting in the buffer now.
    pub buffered: u64,
}

/// The counters behind [`Stats`]; relaxed atomics, never on the evaluation path.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) ruleset_requests: AtomicU64,
    pub(crate) ruleset_updates: AtomicU64,
    pub(crate) ruleset_not_modified: AtomicU64,
    pub(crate) ruleset_errors: AtomicU64,
    pub(crate) rulesets_refused: AtomicU64,
    pub(crate) stream_connects: AtomicU64,
    pub(crate) stream_events: AtomicU64,
    pub(crate) exposures_queued: AtomicU64,
    pub(crate) events_queued: AtomicU64,
    pub(crate) dropped_buffer_full: AtomicU64,
    pub(crate) dropped_invalid: AtomicU64,
    pub(crate) dropped_closed: AtomicU64,
    pub(crate) items_sent: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
    pub(crate) batches_duplicate: AtomicU64,
    pub(crate) batch_retries: AtomicU64,
    pub(crate) items_refused: AtomicU64,
    pub(crate) items_unsent_at_close: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            ruleset_requests: g(&self.ruleset_requests),
            ruleset_updates: g(&self.ruleset_updates),
            ruleset_not_modified: g(&self.ruleset_not_modified),
            ruleset_errors: g(&self.ruleset_errors),
            rulesets_refused: g(&self.rulesets_refused),
            stream_connects: g(&self.stream_connects),
            stream_events: g(&self.stream_events),
            exposures_queued: g(&self.exposures_queued),
            exposures_deduplicated: 0,
            events_queued: g(&self.events_queued),
            dropped_buffer_full: g(&self.dropped_buffer_full),
            dropped_invalid: g(&self.dropped_invalid),
            dropped_closed: g(&self.dropped_closed),
            items_sent: g(&self.items_sent),
            batches_sent: g(&self.batches_sent),
            batches_duplicate: g(&self.batches_duplicate),
            batch_retries: g(&self.batch_retries),
            items_refused: g(&self.items_refused),
            items_unsent_at_close: g(&self.items_unsent_at_close),
            buffered: 0,
        }
    }
}
