//! `GET /sdk/v1/stream`: Server-Sent Events announcing ruleset changes.
//!
//! The protocol, which the SDK relies on:
//!
//! ```text
//! event: ruleset
//! id: 42
//! data: {"environment":"production","version":42}
//! ```
//!
//! One such event is sent when the stream opens (the current version, so a client that
//! reconnects learns at once whether it missed anything; skipped when `Last-Event-ID` already
//! names the current version), then one per change of the key's environment. Comment lines
//! (`: ping`) keep idle connections alive through proxies. The client then fetches
//! `/sdk/v1/ruleset` with its ETag. Streams end when the server shuts down, so that shutdown
//! is not held up by idle connections.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, TryStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use warp::Reply;
use warp::sse::Event;

use super::{Call, Reply as HandlerReply};
use crate::state::{AppState, RulesetChanged};
use crate::web::parse_etag;

fn event(environment: &str, version: i64) -> Event {
    Event::default()
        .event("ruleset")
        .id(version.to_string())
        .data(format!(
            r#"{{"environment":{},"version":{version}}}"#,
            serde_json::Value::from(environment)
        ))
}

/// One subscriber's state, owned by its stream. Dropping it (client gone, server stopping)
/// decrements the open-stream gauge.
struct Subscription {
    environment: String,
    state: Arc<AppState>,
    changes: broadcast::Receiver<RulesetChanged>,
    shutdown: watch::Receiver<bool>,
    sent: i64,
    first: Option<Event>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.state.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Subscription {
    /// The next event to send, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => return None,
                msg = self.changes.recv() => match msg {
                    Ok(c) if c.environment == self.environment && c.version > self.sent => {
                        self.sent = c.version;
                        return Some(event(&self.environment, c.version));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        // Missed some announcements: say what is current now.
                        if let Ok(snap) = self.state.snapshot(&self.environment)
                            && snap.version > self.sent
                        {
                            self.sent = snap.version;
                            return Some(event(&self.environment, snap.version));
                        }
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// GET /sdk/v1/stream
pub async fn stream(call: Call) -> HandlerReply {
    let environment = call.environment()?;
    let state = Arc::clone(&call.state);
    // Subscribe before reading the current version, so no change can fall in between.
    let changes = state.subscribe();
    let shutdown = state.shutdown_receiver();
    let current = state.snapshot(&environment)?.version;
    let last_seen = call.req.header("last-event-id").and_then(parse_etag);
    state.open_streams.fetch_add(1, Ordering::Relaxed);
    let first = (last_seen != Some(current)).then(|| event(&environment, current));
    let subscription = Subscription {
        sent: current.max(last_seen.unwrap_or(0)),
        environment,
        changes,
        shutdown,
        first,
        state: Arc::clone(&state),
    };
    let events = futures_util::stream::unfold(subscription, |mut sub| async move {
        let event = sub.next().await?;
        Some((Ok::<_, Infallible>(event), sub))
    });
    let heartbeat = Duration::from_secs(state.settings.sse_heartbeat_secs.max(1));
    let events = warp::sse::keep_alive()
        .interval(heartbeat)
        .text("ping")
        .stream(events);
    let mut resp = warp::sse::reply(SyncStream(Mutex::new(Box::pin(events)))).into_response();
    // Ask proxies (nginx) not to buffer the stream.
    resp.headers_mut()
        .insert("x-accel-buffering", http::HeaderValue::from_static("no"));
    Ok(resp)
}

/// Makes a `Send` stream `Sync`, as warp's SSE reply requires. The stream is only polled
/// through `&mut`, so the mutex is never actually locked.
struct SyncStream<S>(Mutex<Pin<Box<S>>>);

impl<S: TryStream> Stream for SyncStream<S> {
    type Item = Result<S::Ok, S::Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().0.get_mut() {
            Ok(s) => s.as_mut().try_poll_next(cx),
            Err(poisoned) => poisoned.into_inner().as_mut().try_poll_next(cx),
        }
    }
}
