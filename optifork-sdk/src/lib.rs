//! OptiFork's Rust SDK: feature flags, remote configs, segments and A/B experiments evaluated
//! **in your process**, against a ruleset the client keeps fresh from an OptiFork server.
//!
//! An evaluation is a lock-free read of the current compiled ruleset plus
//! [`optifork_core`]'s evaluation: tens of nanoseconds, no I/O, no allocation for boolean and
//! number flags. It never waits for the network and never panics; problems are reported as
//! OpenFeature reasons and the caller's default is served.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use optifork_sdk::{Client, Context};
//!
//! let client = Client::builder("http://127.0.0.1:8000", std::env::var("OPTIFORK_SDK_KEY").unwrap())
//!     .build()?;
//! client.wait_until_ready(Duration::from_secs(5))?;
//!
//! let user = Context::new("user-123").with("country", "US").with("tier", "premium");
//! if client.is_enabled("new_checkout", &user) {
//!     // ...
//! }
//! let limit = client.int_value("upload_limit_mb", &user, 10);
//! let theme = client.config("theme", &user);           // resolved JSON, or None
//! let arm = client.assign("checkout_redesign", &user); // records an exposure if enrolled
//! client.track("purchase", &user, Some(49.90));        // a metric event
//! # let _ = (limit, theme, arm);
//! # Ok::<(), optifork_sdk::SdkError>(())
//! ```
//!
//! Without a server (tests, tools), serve a fixed ruleset:
//!
//! ```
//! use optifork_sdk::{Client, Context};
//! let client = Client::builder("", "")
//!     .offline(true)
//!     .bootstrap_json(r#"{"version": 1, "flags": [{"name": "beta", "is_enabled": true}]}"#)
//!     .build()?;
//! assert!(client.is_enabled("beta", &Context::new("u1")));
//! # Ok::<(), optifork_sdk::SdkError>(())
//! ```
//!
//! # Options
//!
//! Set on [`ClientBuilder`]:
//!
//! | option | default | |
//! |---|---|---|
//! | [`poll_interval`](ClientBuilder::poll_interval) | 30 s | jittered ±10%; no polling while the stream is up |
//! | [`streaming`](ClientBuilder::streaming) | on | Server-Sent Events change stream |
//! | [`request_timeout`](ClientBuilder::request_timeout) | 10 s | each request (and connecting) |
//! | [`stream_idle_timeout`](ClientBuilder::stream_idle_timeout) | 60 s | reconnect a silent stream |
//! | [`bootstrap_json`](ClientBuilder::bootstrap_json), [`bootstrap_file`](ClientBuilder::bootstrap_file) | none | served until the server answers |
//! | [`snapshot_path`](ClientBuilder::snapshot_path) | none | the last good ruleset, kept on disk |
//! | [`exposure_batch_size`](ClientBuilder::exposure_batch_size) | 500 | at most 10,000 |
//! | [`flush_interval`](ClientBuilder::flush_interval) | 5 s | longest wait before sending |
//! | [`exposure_buffer_capacity`](ClientBuilder::exposure_buffer_capacity) | 10,000 | overflow dropped and counted |
//! | [`exposure_dedup_capacity`](ClientBuilder::exposure_dedup_capacity) | 100,000 | LRU of recent exposures |
//! | [`send_context_with_exposures`](ClientBuilder::send_context_with_exposures) | off | attributes travel with exposures |
//! | [`header`](ClientBuilder::header) | none | extra HTTP headers |
//! | [`backoff`](ClientBuilder::backoff) | 1 s doubling to 60 s | jittered |
//! | [`close_timeout`](ClientBuilder::close_timeout) | 5 s | last flush on close or drop |
//! | [`runtime`](ClientBuilder::runtime) | [`BackgroundRuntime::Auto`] | where background work runs |
//! | [`offline`](ClientBuilder::offline) | off | never contact the server |
//!
//! # Freshness
//!
//! At start the client serves the bootstrap or the persisted snapshot (whichever has the
//! higher version), if any, and fetches `GET /sdk/v1/ruleset` at once. It then holds the
//! change stream `GET /sdk/v1/stream` (Server-Sent Events) open; each announced version it
//! does not have is fetched with `If-None-Match`, so a change reaches the client within
//! moments. While the stream is down (or with streaming off) it polls every poll interval;
//! an unchanged ruleset costs a `304`. Failed fetches and stream reconnects back off
//! exponentially with jitter ("equal jitter": a random wait between half and all of
//! `min(max, initial × 2^attempt)`), so a fleet of clients spreads its retries out and never
//! stampedes a recovering server.
//!
//! A ruleset that does not parse or compile (an operator this SDK does not know, say) is
//! refused: the last good one is kept, the refusal is counted ([`Stats::rulesets_refused`])
//! and reported in [`Status::last_error`]. Each good ruleset from the server is written to
//! the snapshot path, atomically (a temporary file, flushed, then renamed).
//!
//! [`Client::status`] says how fresh the served ruleset is ([`State`]: not ready, ready,
//! stale, error), where it came from ([`Source`]: server, bootstrap, snapshot), its version
//! and when it was installed and last confirmed. [`Client::wait_until_ready`] waits for the
//! server's ruleset. [`Client::on_change`] and [`Client::subscribe`] tell which flags,
//! configs, segments and experiments changed.
//!
//! # Exposures and events
//!
//! An exposure is recorded when an experiment assignment enrolls the user
//! (`in_experiment`), and when a flag marked `track` serves a value. Each (user,
//! flag or experiment, variant) is recorded once while it stays in a bounded LRU set
//! ([`ClientBuilder::exposure_dedup_capacity`]). [`Client::track`] records metric events.
//! Both go into one bounded buffer ([`ClientBuilder::exposure_buffer_capacity`]): when it is
//! full, new items are dropped and counted ([`Stats::dropped_buffer_full`]), never letting
//! memory grow during an outage.
//!
//! A background sender sends batches (`POST /sdk/v1/exposures`, `POST /sdk/v1/events`) when
//! one is full or every flush interval. Delivery is **exactly once** as long as the server
//! is eventually reachable: each batch has a `batch_id` that it keeps across retries, and the
//! server acknowledges a repeated `batch_id` without writing it twice. Failed attempts (network
//! errors, timeouts, 5xx, 408, 429) are retried with backoff, one batch at a time, in order;
//! a batch the server refuses outright (another 4xx) is dropped and counted; a 413 splits it.
//! Items still unsent when the client closes (after the close timeout) are counted
//! ([`Stats::items_unsent_at_close`]), as are items dropped for lack of a targeting key.
//!
//! [`Client::flush`] sends now and waits until everything recorded before the call is
//! acknowledged. [`Client::close`], and dropping the last clone of the client, flush within
//! the close timeout.
//!
//! # Threading model
//!
//! [`Client`] is `Send + Sync` and cheap to clone; clones share one ruleset, one buffer and
//! one set of background tasks. Evaluations load the current ruleset with
//! [`arc_swap::ArcSwap::load`]: no lock, and no write to a shared reference count, so they
//! scale with threads; a new ruleset is swapped in whole, and an evaluation sees either the
//! old one or the new one. [`Client::evaluator`] pins one ruleset for several evaluations
//! whose results borrow from it.
//!
//! The background work (fetching, streaming, sending) runs on tokio. With
//! [`BackgroundRuntime::Auto`] (the default) it is spawned on the runtime the client is built
//! in when that is a multi-thread runtime; otherwise (built outside any runtime, or in a
//! current-thread runtime) it gets a dedicated thread, `optifork-sdk`, with its own
//! current-thread runtime. Blocking methods ([`Client::wait_until_ready`],
//! [`Client::flush`], [`Client::close`], dropping the last clone) may be called from
//! anywhere; inside a multi-thread runtime they use `block_in_place`. Async code should
//! prefer their `_async` versions. Change listeners run on the background thread or task.
//!
//! # OpenFeature
//!
//! With the cargo feature `openfeature`, [`openfeature::OptiForkProvider`] is a provider for
//! the `open-feature` crate (0.3). That version has no provider events, so configuration
//! changes are only available through [`Client::on_change`] / [`Client::subscribe`].

mod backoff;
mod builder;
mod changes;
mod client;
mod delivery;
mod error;
#[cfg(feature = "openfeature")]
pub mod openfeature;
mod shared;
mod signal;
mod sse;
mod status;
mod sync;

pub use builder::{BackgroundRuntime, ClientBuilder, MAX_BATCH_SIZE};
pub use changes::Change;
pub use client::{Client, Evaluator, ExperimentAssignment, FlagDetails, ListenerId};
pub use error::SdkError;
pub use status::{Source, State, Stats, Status};

pub use optifork_core;
pub use optifork_core::{
    Assignment, AssignmentReason, CompileError, Context, Details, Engine, ErrorCode, Evaluation,
    FlagValue, Reason, ResolvedConfig, Ruleset, Value,
};
