//! The SDK's errors.

use std::path::PathBuf;
use std::time::Duration;

use optifork_core::CompileError;

/// What can go wrong when building or driving a [`Client`](crate::Client).
///
/// Evaluation never returns an error: it serves defaults and reports reasons instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The server URL does not parse or is not `http`/`https`.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A builder option is out of range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The bootstrap ruleset file could not be read.
    #[error("cannot read the bootstrap ruleset {}: {source}", path.display())]
    BootstrapIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bootstrap ruleset does not parse or compile.
    #[error("the bootstrap ruleset is invalid: {0}")]
    InvalidBootstrap(#[source] CompileError),
    /// A ruleset given to [`Client::update_ruleset_json`](crate::Client::update_ruleset_json)
    /// does not parse or compile; the last good ruleset is kept.
    #[error("the ruleset is invalid: {0}")]
    InvalidRuleset(#[source] CompileError),
    /// The background thread, runtime or HTTP client could not be started.
    #[error("could not start the SDK's background work: {0}")]
    Start(String),
    /// The server refused the SDK key (401 or 403).
    #[error("the server refused the SDK key: {0}")]
    Unauthorized(String),
    /// [`Client::wait_until_ready`](crate::Client::wait_until_ready) gave up: no ruleset was
    /// received from the server in time.
    #[error("not ready after {waited:?}{}", last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    NotReady {
        /// How long it waited.
        waited: Duration,
        /// The last error met while trying, if any.
        last_error: Option<String>,
    },
    /// [`Client::flush`](crate::Client::flush) or [`Client::close`](crate::Client::close)
    /// ran out of time before every queued item was acknowledged.
    #[error("timed out after {0:?} with items still unacknowledged")]
    Timeout(Duration),
}
