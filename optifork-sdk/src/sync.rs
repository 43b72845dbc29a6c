//! Keeping the ruleset fresh: the initial fetch, ETag polling, the change stream (SSE), and
//! the background tasks' lifecycle.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::watch;

use crate::backoff::jittered;
use crate::builder::{BackgroundRuntime, Options};
use crate::delivery::Sender;
use crate::error::SdkError;
use crate::shared::{Refused, Shared, write_snapshot};
use crate::sse::SseParser;
use crate::status::{Source, bump};

thread_local! {
    /// Set on the SDK's own thread, where waiting for the background work would deadlock.
    static IN_BACKGROUND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a blocking wait without starving a multi-thread tokio runtime the caller may be on.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

pub(crate) fn in_background() -> bool {
    IN_BACKGROUND.with(|b| b.get())
}

fn http_client(o: &Options) -> Result<reqwest::Client, SdkError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &o.headers {
        let bad = |what: &str| SdkError::InvalidOption {
            option: "header",
            reason: format!("{what} {name:?}"),
        };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid header name"))?;
        let v = HeaderValue::from_str(value).map_err(|_| bad("invalid value for header"))?;
        headers.append(n, v);
    }
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", o.sdk_key)).map_err(|_| {
        SdkError::InvalidOption {
            option: "sdk_key",
            reason: "not a valid header value".into(),
        }
    })?;
    auth.set_sensitive(true);
    headers.insert(header::AUTHORIZATION, auth);
    reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(concat!("optifork-sdk-rust/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(o.request_timeout)
        .build()
        .map_err(|e| SdkError::Start(format!("HTTP client: {e}")))
}

/// Sets `done` when the background work ends, however it ends (also when its runtime is
/// dropped under it), so that nobody waits for it in vain.
struct DoneGuard(Arc<Shared>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.0.delivery.close();
        self.0.delivery.progress.update(|p| p.stopped = true);
        self.0.done.update(|d| *d = true);
    }
}

/// Starts the background work where the options say.
pub(crate) fn start(shared: &Arc<Shared>) -> Result<(), SdkError> {
    let http = if shared.options.offline {
        None
    } else {
        Some(http_client(&shared.options)?)
    };
    let work = run(Arc::clone(shared), http);
    let handle = match &shared.options.runtime {
        BackgroundRuntime::Handle(h) => Some(h.clone()),
        BackgroundRuntime::Dedicated => None,
        BackgroundRuntime::Auto => tokio::runtime::Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread),
    };
    match handle {
        Some(h) => {
            h.spawn(work);
        }
        None => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SdkError::Start(format!("runtime: {e}")))?;
            std::thread::Builder::new()
                .name("optifork-sdk".into())
                .spawn(move || {
                    IN_BACKGROUND.with(|b| b.set(true));
                    rt.block_on(work);
                })
                .map_err(|e| SdkError::Start(format!("thread: {e}")))?;
        }
    }
    Ok(())
}

/// Asks the background work to stop (after its final flush) and waits up to `wait` for it.
/// Returns whether it finished in time.
pub(crate) fn stop(shared: &Shared, wait: Duration) -> bool {
    shared.shutdown.update(|s| *s = true);
    if in_background() {
        return shared.done.get(|d| *d);
    }
    blocking(|| shared.done.wait_blocking(wait, |d| *d))
}

async fn run(shared: Arc<Shared>, http: Option<reqwest::Client>) {
    let _done = DoneGuard(Arc::clone(&shared));
    let Some(http) = http else {
        shared.shutdown.wait(|s| *s).await;
        return;
    };
    let o = &shared.options;
    let base = o.server_url.trim_end_matches('/');
    let sync = Arc::new(Sync {
        shared: Arc::clone(&shared),
        http: http.clone(),
        ruleset_url: format!("{base}/sdk/v1/ruleset"),
        stream_url: format!("{base}/sdk/v1/stream"),
        etag: tokio::sync::Mutex::new(None),
        stream_up: watch::channel(false).0,
    });
    let poller = tokio::spawn(Arc::clone(&sync).poll_loop());
    let streamer = o
        .streaming
        .then(|| tokio::spawn(Arc::clone(&sync).stream_loop()));
    let sender = Sender {
        http,
        exposures_url: format!("{base}/sdk/v1/exposures"),
        events_url: format!("{base}/sdk/v1/events"),
        flush_interval: o.flush_interval,
        backoff: o.backoff,
        close_timeout: o.close_timeout,
        request_timeout: o.request_timeout,
    };
    let s = Arc::clone(&shared);
    let sender = tokio::spawn(async move { sender.run(&s.delivery, &s.counters).await });
    shared.shutdown.wait(|s| *s).await;
    poller.abort();
    if let Some(s) = streamer {
        s.abort();
    }
    shared.delivery.close();
    let abort = sender.abort_handle();
    if tokio::time::timeout(o.close_timeout + Duration::from_secs(1), sender)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// The freshness side: fetches, polls, streams.
struct Sync {
    shared: Arc<Shared>,
    http: reqwest::Client,
    ruleset_url: String,
    stream_url: String,
    /// The ETag of the server ruleset being served; the lock also serializes fetches.
    etag: tokio::sync::Mutex<Option<String>>,
    /// Whether the change stream is connected (the poller rests while it is).
    stream_up: watch::Sender<bool>,
}

#[derive(Debug, PartialEq)]
enum Fetched {
    Updated,
    NotModified,
    Failed,
}

impl Sync {
    /// One conditional fetch of the ruleset; installs it when it changed.
    async fn fetch(&self) -> Fetched {
        let mut etag = self.etag.lock().await;
        let c = &self.shared.counters;
        bump(&c.ruleset_requests);
        let mut req = self
            .http
            .get(&self.ruleset_url)
            .timeout(self.shared.options.request_timeout);
        if let Some(tag) = etag.as_deref() {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let fail = |msg: String, unauthorized: bool| {
            bump(&c.ruleset_errors);
            tracing::debug!(error = %msg, "optifork: ruleset fetch failed");
            self.shared.failed(msg, unauthorized);
            Fetched::Failed
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return fail(format!("cannot reach the server: {e}"), false),
        };
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            bump(&c.ruleset_not_modified);
            self.shared.confirmed();
            return Fetched::NotModified;
        }
        if matches!(status.as_u16(), 401 | 403) {
            let body = resp.text().await.unwrap_or_default();
            tracing::error!(%status, %body, "optifork: the server refused the SDK key");
            return fail(
                format!("the server refused the SDK key ({status}): {body}"),
                true,
            );
        }
        if !status.is_success() {
            return fail(format!("the server answered {status}"), false);
        }
        let new_tag = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return fail(format!("reading the ruleset: {e}"), false),
        };
        match self.shared.install(&body, Source::Server) {
            Ok(_) => {
                bump(&c.ruleset_updates);
                *etag = new_tag;
                if let Some(path) = self.shared.options.snapshot_path.clone() {
                    let written =
                        tokio::task::spawn_blocking(move || write_snapshot(&path, &body)).await;
                    if let Ok(Err(e)) = written {
                        tracing::warn!(error = %e, "optifork: cannot write the snapshot");
                    }
                }
                Fetched::Updated
            }
            Err(Refused::Invalid(e)) => {
                bump(&c.rulesets_refused);
                tracing::error!(error = %e, "optifork: refused a ruleset that does not compile; keeping the last good one");
                fail(
                    format!("refused a ruleset that does not compile: {e}"),
                    false,
                )
            }
        }
    }

    /// The version of the server ruleset being served, if one is.
    fn server_version(&self) -> Option<u64> {
        self.shared.status.get(|c| {
            (c.status.source == Some(Source::Server))
                .then_some(c.status.version)
                .flatten()
        })
    }

    /// Polls: at once, then every (jittered) poll interval, backing off after failures;
    /// resting while the change stream is connected.
    async fn poll_loop(self: Arc<Self>) {
        let o = &self.shared.options;
        let mut up = self.stream_up.subscribe();
        let mut failures = 0u32;
        loop {
            while *up.borrow_and_update() {
                if up.changed().await.is_err() {
                    return;
                }
            }
            let delay = if self.fetch().await == Fetched::Failed {
                let d = o.backoff.delay(failures).min(jittered(o.poll_interval));
                failures = failures.saturating_add(1);
                d
            } else {
                failures = 0;
                jittered(o.poll_interval)
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = up.wait_for(|on| *on) => {}
            }
        }
    }

    /// Holds the change stream open, reconnecting with backoff.
    async fn stream_loop(self: Arc<Self>) {
        let o = &self.shared.options;
        let mut attempt = 0u32;
        loop {
            let mut req = self
                .http
                .get(&self.stream_url)
                .header(header::ACCEPT, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache");
            if let Some(v) = self.server_version() {
                req = req.header("Last-Event-ID", v.to_string());
            }
            match tokio::time::timeout(o.request_timeout, req.send()).await {
                Ok(Ok(resp)) if resp.status().is_success() => {
                    attempt = 0;
                    bump(&self.shared.counters.stream_connects);
                    self.shared.set_streaming(true);
                    self.stream_up.send_replace(true);
                    // Catch up with (or confirm) the current version: changes made while
                    // the stream was down are not replayed.
                    self.fetch().await;
                    self.read(resp).await;
                    self.shared.set_streaming(false);
                    self.stream_up.send_replace(false);
                }
                Ok(Ok(resp)) if matches!(resp.status().as_u16(), 404 | 405 | 501) => {
                    tracing::warn!(status = %resp.status(), "optifork: the server has no change stream; polling only");
                    return;
                }
                Ok(Ok(resp)) => {
                    tracing::debug!(status = %resp.status(), "optifork: the change stream was refused");
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "optifork: cannot open the change stream")
                }
                Err(_) => tracing::debug!("optifork: opening the change stream timed out"),
            }
            let delay = o.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(delay).await;
        }
    }

    /// Reads events until the stream ends, fails or stays silent too long.
    async fn read(&self, mut resp: reqwest::Response) {
        let idle = self.shared.options.stream_idle_timeout;
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        loop {
            match tokio::time::timeout(idle, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => parser.push(&chunk, &mut events),
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "optifork: the change stream broke");
                    return;
                }
                Err(_) => {
                    tracing::debug!("optifork: the change stream went silent; reconnecting");
                    return;
                }
            }
            for ev in events.drain(..) {
                if ev.event != "ruleset" {
                    continue;
                }
                bump(&self.shared.counters.stream_events);
                let announced = serde_json::from_str::<serde_json::Value>(&ev.data)
                    .ok()
                    .and_then(|d| d["version"].as_u64())
                    .or_else(|| ev.id.as_deref().and_then(|i| i.parse().ok()));
                if announced.is_none() || announced != self.server_version() {
                    self.fetch().await;
                }
            }
        }
    }
}
