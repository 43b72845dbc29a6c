//! `NativeClient`: an OptiFork client (wrapped by `Client` in `index.js`).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::{AsyncTask, Function, Unknown};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::{Env, Task};
use napi_derive::napi;
use optifork_sdk::{BackgroundRuntime, Change, Client, ClientBuilder, ListenerId, Status};

use crate::errors::{self, Result};
use crate::eval::{evaluation_methods, js};

/// The client's options, as `index.js` passes them (already checked for unknown names and
/// wrong types; ranges are checked here and by the SDK). Durations are milliseconds.
#[napi(object)]
pub struct NativeOptions {
    pub poll_interval_ms: Option<f64>,
    pub streaming: Option<bool>,
    pub request_timeout_ms: Option<f64>,
    pub stream_idle_timeout_ms: Option<f64>,
    /// A ruleset's JSON text.
    pub bootstrap: Option<String>,
    pub bootstrap_file: Option<String>,
    pub snapshot_path: Option<String>,
    pub exposure_batch_size: Option<f64>,
    pub flush_interval_ms: Option<f64>,
    pub exposure_buffer_capacity: Option<f64>,
    pub exposure_dedup_capacity: Option<f64>,
    pub send_context_with_exposures: Option<bool>,
    pub headers: Option<HashMap<String, String>>,
    pub backoff_initial_ms: Option<f64>,
    pub backoff_max_ms: Option<f64>,
    pub close_timeout_ms: Option<f64>,
    pub offline: Option<bool>,
}

/// How fresh a client's ruleset is. Times are milliseconds since the epoch.
#[napi(object)]
pub struct NativeStatus {
    pub state: String,
    pub source: Option<String>,
    pub version: Option<f64>,
    pub environment: Option<String>,
    pub updated_at: Option<f64>,
    pub confirmed_at: Option<f64>,
    pub last_error: Option<String>,
    pub streaming: bool,
}

fn millis(t: Option<SystemTime>) -> Option<f64> {
    t.map(|t| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as f64,
        Err(e) => -(e.duration().as_millis() as f64),
    })
}

impl From<Status> for NativeStatus {
    fn from(s: Status) -> NativeStatus {
        NativeStatus {
            state: s.state.as_str().to_owned(),
            source: s.source.map(|x| x.as_str().to_owned()),
            version: s.version.map(|v| v as f64),
            environment: s.environment,
            updated_at: millis(s.updated_at),
            confirmed_at: millis(s.confirmed_at),
            last_error: s.last_error,
            streaming: s.streaming,
        }
    }
}

/// What changed when a new ruleset was installed.
#[napi(object)]
pub struct NativeChange {
    pub previous_version: Option<f64>,
    pub version: f64,
    pub source: Option<String>,
    pub flags: Vec<String>,
    pub configs: Vec<String>,
    pub segments: Vec<String>,
    pub experiments: Vec<String>,
}

impl From<&Change> for NativeChange {
    fn from(c: &Change) -> NativeChange {
        NativeChange {
            previous_version: c.previous_version.map(|v| v as f64),
            version: c.version as f64,
            source: c.source.map(|s| s.as_str().to_owned()),
            flags: c.flags.clone(),
            configs: c.configs.clone(),
            segments: c.segments.clone(),
            experiments: c.experiments.clone(),
        }
    }
}

/// The outcome of a Promise-returning method: an error `code` and `message`, or the status.
#[napi(object)]
pub struct NativeOutcome {
    pub code: Option<String>,
    pub message: Option<String>,
    pub status: Option<NativeStatus>,
}

/// The client's counters.
#[napi(object)]
pub struct NativeStats {
    pub ruleset_requests: f64,
    pub ruleset_updates: f64,
    pub ruleset_not_modified: f64,
    pub ruleset_errors: f64,
    pub rulesets_refused: f64,
    pub stream_connects: f64,
    pub stream_events: f64,
    pub exposures_queued: f64,
    pub exposures_deduplicated: f64,
    pub events_queued: f64,
    pub dropped_buffer_full: f64,
    pub dropped_invalid: f64,
    pub dropped_closed: f64,
    pub items_sent: f64,
    pub batches_sent: f64,
    pub batches_duplicate: f64,
    pub batch_retries: f64,
    pub items_refused: f64,
    pub items_unsent_at_close: f64,
    pub buffered: f64,
}

fn duration(option: &str, ms: f64) -> Result<Duration> {
    if ms.is_finite() && ms >= 0.0 {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(errors::invalid_option(
            option,
            format!("invalid option {option}: {ms} is not a number of milliseconds (0 or more)"),
        ))
    }
}

fn count(option: &str, n: f64) -> Result<usize> {
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 {
        Ok(n as usize)
    } else {
        Err(errors::invalid_option(
            option,
            format!("invalid option {option}: {n} is not a count (an integer, 0 or more)"),
        ))
    }
}

fn configure(mut b: ClientBuilder, o: NativeOptions) -> Result<ClientBuilder> {
    if let Some(v) = o.poll_interval_ms {
        b = b.poll_interval(duration("pollIntervalMs", v)?);
    }
    if let Some(v) = o.streaming {
        b = b.streaming(v);
    }
    if let Some(v) = o.request_timeout_ms {
        b = b.request_timeout(duration("requestTimeoutMs", v)?);
    }
    if let Some(v) = o.stream_idle_timeout_ms {
        b = b.stream_idle_timeout(duration("streamIdleTimeoutMs", v)?);
    }
    if let Some(v) = o.bootstrap {
        b = b.bootstrap_json(v);
    }
    if let Some(v) = o.bootstrap_file {
        b = b.bootstrap_file(v);
    }
    if let Some(v) = o.snapshot_path {
        b = b.snapshot_path(v);
    }
    if let Some(v) = o.exposure_batch_size {
        b = b.exposure_batch_size(count("exposureBatchSize", v)?);
    }
    if let Some(v) = o.flush_interval_ms {
        b = b.flush_interval(duration("flushIntervalMs", v)?);
    }
    if let Some(v) = o.exposure_buffer_capacity {
        b = b.exposure_buffer_capacity(count("exposureBufferCapacity", v)?);
    }
    if let Some(v) = o.exposure_dedup_capacity {
        b = b.exposure_dedup_capacity(count("exposureDedupCapacity", v)?);
    }
    if let Some(v) = o.send_context_with_exposures {
        b = b.send_context_with_exposures(v);
    }
    for (k, v) in o.headers.unwrap_or_default() {
        b = b.header(k, v);
    }
    if o.backoff_initial_ms.is_some() || o.backoff_max_ms.is_some() {
        b = b.backoff(
            duration("backoffInitialMs", o.backoff_initial_ms.unwrap_or(1000.0))?,
            duration("backoffMaxMs", o.backoff_max_ms.unwrap_or(60_000.0))?,
        );
    }
    if let Some(v) = o.close_timeout_ms {
        b = b.close_timeout(duration("closeTimeoutMs", v)?);
    }
    if let Some(v) = o.offline {
        b = b.offline(v);
    }
    Ok(b)
}

/// A blocking client call run on libuv's thread pool; resolves to a [`NativeOutcome`].
pub struct Blocking {
    client: Client,
    kind: BlockingKind,
}

enum BlockingKind {
    WaitUntilReady(Duration),
    Flush(Duration),
    Close,
}

impl Task for Blocking {
    type Output = NativeOutcome;
    type JsValue = NativeOutcome;

    fn compute(&mut self) -> napi::Result<NativeOutcome> {
        let run = AssertUnwindSafe(|| {
            let result = match self.kind {
                BlockingKind::WaitUntilReady(t) => {
                    self.client.wait_until_ready(t).map(|s| Some(s.into()))
                }
                BlockingKind::Flush(t) => self.client.flush(t).map(|()| None),
                BlockingKind::Close => self.client.close().map(|()| None),
            };
            match result {
                Ok(status) => NativeOutcome {
                    code: None,
                    message: None,
                    status,
                },
                Err(e) => {
                    let (code, message) = errors::sdk_parts(&e);
                    NativeOutcome {
                        code: Some(code),
                        message: Some(message),
                        status: None,
                    }
                }
            }
        });
        Ok(catch_unwind(run).unwrap_or_else(|payload| NativeOutcome {
            code: Some("ERR_OPTIFORK_INTERNAL".to_owned()),
            message: Some(errors::panic_message(&*payload)),
            status: None,
        }))
    }

    fn resolve(&mut self, _env: Env, output: NativeOutcome) -> napi::Result<NativeOutcome> {
        Ok(output)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An OptiFork client.
#[napi]
pub struct NativeClient {
    client: Client,
    listeners: Mutex<HashMap<u32, ListenerId>>,
    next_listener: Mutex<u32>,
}

#[napi]
impl NativeClient {
    /// Builds a client and starts fetching the ruleset in the background.
    #[napi(constructor)]
    pub fn new(url: String, sdk_key: String, options: NativeOptions) -> Result<NativeClient> {
        errors::guard(|| {
            let builder = configure(
                Client::builder(url, sdk_key).runtime(BackgroundRuntime::Dedicated),
                options,
            )?;
            let client = builder.build().map_err(|e| errors::sdk(&e))?;
            Ok(NativeClient {
                client,
                listeners: Mutex::new(HashMap::new()),
                next_listener: Mutex::new(1),
            })
        })
    }

    /// Waits on the thread pool until the server's ruleset is served.
    #[napi(ts_return_type = "Promise<NativeOutcome>")]
    pub fn wait_until_ready(&self, timeout_ms: f64) -> Result<AsyncTask<Blocking>> {
        let t = duration("timeoutMs", timeout_ms)?;
        Ok(AsyncTask::new(Blocking {
            client: self.client.clone(),
            kind: BlockingKind::WaitUntilReady(t),
        }))
    }

    /// Sends everything recorded and waits on the thread pool for the acknowledgements.
    #[napi(ts_return_type = "Promise<NativeOutcome>")]
    pub fn flush(&self, timeout_ms: f64) -> Result<AsyncTask<Blocking>> {
        let t = duration("timeoutMs", timeout_ms)?;
        Ok(AsyncTask::new(Blocking {
            client: self.client.clone(),
            kind: BlockingKind::Flush(t),
        }))
    }

    /// Stops the background work after a last flush, on the thread pool.
    #[napi(ts_return_type = "Promise<NativeOutcome>")]
    pub fn close(&self) -> AsyncTask<Blocking> {
        AsyncTask::new(Blocking {
            client: self.client.clone(),
            kind: BlockingKind::Close,
        })
    }

    /// How fresh the served ruleset is.
    #[napi]
    pub fn status(&self) -> Result<NativeStatus> {
        errors::guard(|| Ok(self.client.status().into()))
    }

    /// The served ruleset's version, if any.
    #[napi(getter)]
    pub fn version(&self) -> Result<Option<f64>> {
        errors::guard(|| Ok(self.client.version().map(|v| v as f64)))
    }

    /// A handle for the fast evaluation functions (`fastIsEnabled`, `fastGetBool`).
    #[napi]
    pub fn handle<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        crate::fast::handle_value(env, crate::fast::Source::Client(self.client.clone()))
    }

    /// The names of every flag in the served ruleset.
    #[napi]
    pub fn flag_names(&self) -> Result<Vec<String>> {
        errors::guard(|| {
            Ok(self
                .client
                .evaluator()
                .engine()
                .flag_names()
                .map(str::to_owned)
                .collect())
        })
    }

    /// Records a metric event for the context's user.
    #[napi]
    pub fn track(
        &self,
        event: Unknown<'_>,
        context: Unknown<'_>,
        value: Option<f64>,
        properties: Option<serde_json::Value>,
    ) -> Result<()> {
        errors::guard(|| {
            let event = crate::convert::name(js(&event), "event")?;
            let ctx = crate::convert::context(js(&context))?;
            match properties {
                None => self.client.track(&event, &ctx, value),
                Some(p) => self.client.track_with_properties(&event, &ctx, value, p),
            }
            Ok(())
        })
    }

    /// Calls `callback(change)` on the JS thread after each new ruleset is installed. The
    /// callback does not keep the process alive. Returns an id for `removeListener`.
    #[napi]
    pub fn on_change(&self, callback: Function<'_, NativeChange, ()>) -> Result<u32> {
        errors::guard(|| self.add_listener(callback))
    }
}

impl NativeClient {
    fn add_listener(&self, callback: Function<'_, NativeChange, ()>) -> Result<u32> {
        let tsfn = callback
            .build_threadsafe_function::<NativeChange>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()
            .map_err(|e| errors::invalid_arg(format!("callback: {e}")))?;
        let id = self.client.on_change(move |change: &Change| {
            tsfn.call(
                NativeChange::from(change),
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        });
        let mut next = lock(&self.next_listener);
        let token = *next;
        *next += 1;
        lock(&self.listeners).insert(token, id);
        Ok(token)
    }
}

#[napi]
impl NativeClient {
    /// Removes a change callback; returns whether it was registered.
    #[napi]
    pub fn remove_listener(&self, token: u32) -> Result<bool> {
        errors::guard(|| {
            Ok(match lock(&self.listeners).remove(&token) {
                Some(id) => self.client.remove_listener(id),
                None => false,
            })
        })
    }

    /// Installs a ruleset (its JSON) as if it came from the server; returns what changed.
    #[napi]
    pub fn update_ruleset(&self, json: String) -> Result<NativeChange> {
        errors::guard(|| {
            self.client
                .update_ruleset_json(&json)
                .map(|c| NativeChange::from(&*c))
                .map_err(|e| errors::sdk(&e))
        })
    }

    /// The client's counters.
    #[napi]
    pub fn stats(&self) -> Result<NativeStats> {
        errors::guard(|| Ok(self.stats_now()))
    }
}

impl NativeClient {
    fn stats_now(&self) -> NativeStats {
        let s = self.client.stats();
        let f = |n: u64| n as f64;
        NativeStats {
            ruleset_requests: f(s.ruleset_requests),
            ruleset_updates: f(s.ruleset_updates),
            ruleset_not_modified: f(s.ruleset_not_modified),
            ruleset_errors: f(s.ruleset_errors),
            rulesets_refused: f(s.rulesets_refused),
            stream_connects: f(s.stream_connects),
            stream_events: f(s.stream_events),
            exposures_queued: f(s.exposures_queued),
            exposures_deduplicated: f(s.exposures_deduplicated),
            events_queued: f(s.events_queued),
            dropped_buffer_full: f(s.dropped_buffer_full),
            dropped_invalid: f(s.dropped_invalid),
            dropped_closed: f(s.dropped_closed),
            items_sent: f(s.items_sent),
            batches_sent: f(s.batches_sent),
            batches_duplicate: f(s.batches_duplicate),
            batch_retries: f(s.batch_retries),
            items_refused: f(s.items_refused),
            items_unsent_at_close: f(s.items_unsent_at_close),
            buffered: f(s.buffered),
        }
    }
}

evaluation_methods!(NativeClient, this => this.client.evaluator());
