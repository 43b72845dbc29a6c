//! `optifork.Client`: evaluation against a ruleset kept fresh from an OptiFork server, with
//! exposures and events sent back.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use optifork_sdk::{BackgroundRuntime, Change, Client, ClientBuilder, ListenerId, Status};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDateTime, PyDict, PyFloat, PyInt, PyString, PyTzInfo};

use crate::convert::{self, type_name};
use crate::engine::ruleset_text;
use crate::errors;
use crate::eval::evaluation_methods;

/// Every option `Client(url, sdk_key, **options)` accepts.
const OPTIONS: &[&str] = &[
    "poll_interval",
    "streaming",
    "request_timeout",
    "stream_idle_timeout",
    "bootstrap",
    "bootstrap_file",
    "snapshot_path",
    "exposure_batch_size",
    "flush_interval",
    "exposure_buffer_capacity",
    "exposure_dedup_capacity",
    "send_context_with_exposures",
    "headers",
    "backoff_initial",
    "backoff_max",
    "close_timeout",
    "offline",
];

/// A client of an OptiFork server.
#[pyclass(module = "optifork", name = "Client", frozen)]
pub(crate) struct PyClient {
    client: Client,
    /// Change callbacks, to remove them by identity.
    listeners: Mutex<Vec<(Py<PyAny>, ListenerId)>>,
}

/// A duration in seconds (an int or a float, not negative).
fn seconds(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>())
    {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number of seconds, not {}",
            type_name(value)
        )));
    }
    let s: f64 = value.extract()?;
    Duration::try_from_secs_f64(s).map_err(|_| {
        errors::invalid_option(
            py,
            name,
            format!("invalid option {name}: {s} is not a number of seconds (0 or more)"),
        )
    })
}

fn boolean(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    match value.cast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{name} must be a bool, not {}",
            type_name(value)
        ))),
    }
}

fn count(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<usize> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, not {}",
            type_name(value)
        )));
    }
    let n: i128 = value.extract()?;
    usize::try_from(n).map_err(|_| {
        errors::invalid_option(
            py,
            name,
            format!("invalid option {name}: {n} is not a count (0 or more)"),
        )
    })
}

fn path(name: &str, value: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    value.extract::<PathBuf>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a str or os.PathLike, not {}",
            type_name(value)
        ))
    })
}

/// Applies `**options` to a builder. Unknown names and wrong types raise `TypeError`;
/// out-of-range values `InvalidOptionError` (here or in `build`).
fn configure(
    py: Python<'_>,
    mut b: ClientBuilder,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<ClientBuilder> {
    let mut backoff = (None, None);
    for (k, v) in options.into_iter().flat_map(|o| o.iter()) {
        let name: String = k.extract()?;
        b = match name.as_str() {
            "poll_interval" => b.poll_interval(seconds(py, &name, &v)?),
            "streaming" => b.streaming(boolean(&name, &v)?),
            "request_timeout" => b.request_timeout(seconds(py, &name, &v)?),
            "stream_idle_timeout" => b.stream_idle_timeout(seconds(py, &name, &v)?),
            "bootstrap" => b.bootstrap_json(ruleset_text(&v, "bootstrap")?),
            "bootstrap_file" => b.bootstrap_file(path(&name, &v)?),
            "snapshot_path" => b.snapshot_path(path(&name, &v)?),
            "exposure_batch_size" => b.exposure_batch_size(count(py, &name, &v)?),
            "flush_interval" => b.flush_interval(seconds(py, &name, &v)?),
            "exposure_buffer_capacity" => b.exposure_buffer_capacity(count(py, &name, &v)?),
            "exposure_dedup_capacity" => b.exposure_dedup_capacity(count(py, &name, &v)?),
            "send_context_with_exposures" => b.send_context_with_exposures(boolean(&name, &v)?),
            "headers" => {
                let headers = v.cast::<PyDict>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "headers must be a dict of str to str, not {}",
                        type_name(&v)
                    ))
                })?;
                for (hk, hv) in headers.iter() {
                    let (Ok(hk), Ok(hv)) = (hk.extract::<String>(), hv.extract::<String>()) else {
                        return Err(PyTypeError::new_err("headers must be a dict of str to str"));
                    };
                    b = b.header(hk, hv);
                }
                b
            }
            "backoff_initial" => {
                backoff.0 = Some(seconds(py, &name, &v)?);
                b
            }
            "backoff_max" => {
                backoff.1 = Some(seconds(py, &name, &v)?);
                b
            }
            "close_timeout" => b.close_timeout(seconds(py, &name, &v)?),
            "offline" => b.offline(boolean(&name, &v)?),
            other => {
                return Err(PyTypeError::new_err(format!(
                    "Client() got an unknown option {other:?}; the options are: {}",
                    OPTIONS.join(", ")
                )));
            }
        };
    }
    if backoff != (None, None) {
        b = b.backoff(
            backoff.0.unwrap_or(Duration::from_secs(1)),
            backoff.1.unwrap_or(Duration::from_secs(60)),
        );
    }
    Ok(b)
}

fn timeout(value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "timeout must be a number of seconds (0 or more), not {value}"
        ))
    })
}

fn datetime(py: Python<'_>, t: Option<SystemTime>) -> PyResult<Option<Py<PyAny>>> {
    let Some(t) = t else { return Ok(None) };
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let utc = PyTzInfo::utc(py)?;
    Ok(Some(
        PyDateTime::from_timestamp(py, secs, Some(&utc))?
            .into_any()
            .unbind(),
    ))
}

/// How fresh a client's ruleset is, from `Client.status()` and `wait_until_ready()`.
#[pyclass(module = "optifork", name = "Status", frozen, get_all)]
pub(crate) struct PyStatus {
    /// `NOT_READY`, `READY`, `STALE` or `ERROR`.
    state: String,
    /// Where the served ruleset came from: `server`, `bootstrap`, `snapshot`, `manual`;
    /// `None` while nothing is served.
    source: Option<String>,
    /// The served ruleset's version.
    version: Option<u64>,
    /// The served ruleset's environment.
    environment: Option<String>,
    /// When the served ruleset was installed (an aware UTC datetime).
    updated_at: Option<Py<PyAny>>,
    /// When the server last confirmed it.
    confirmed_at: Option<Py<PyAny>>,
    /// The last problem met, cleared by the next success.
    last_error: Option<String>,
    /// Whether the change stream is connected.
    streaming: bool,
}

impl PyStatus {
    fn new(py: Python<'_>, s: Status) -> PyResult<PyStatus> {
        Ok(PyStatus {
            state: s.state.as_str().to_owned(),
            source: s.source.map(|x| x.as_str().to_owned()),
            version: s.version,
            environment: s.environment,
            updated_at: datetime(py, s.updated_at)?,
            confirmed_at: datetime(py, s.confirmed_at)?,
            last_error: s.last_error,
            streaming: s.streaming,
        })
    }
}

#[pymethods]
impl PyStatus {
    /// Whether the server's current ruleset is served.
    #[getter]
    fn is_ready(&self) -> bool {
        self.state == "READY"
    }

    fn __repr__(&self) -> String {
        format!(
            "Status(state={:?}, source={:?}, version={:?}, environment={:?}, streaming={}, last_error={:?})",
            self.state,
            self.source,
            self.version,
            self.environment,
            if self.streaming { "True" } else { "False" },
            self.last_error
        )
    }
}

/// What changed when a new ruleset was installed, given to `on_change` callbacks.
#[pyclass(module = "optifork", name = "Change", frozen, get_all)]
pub(crate) struct PyChange {
    /// The version served before; `None` when nothing was.
    previous_version: Option<u64>,
    /// The version served now.
    version: u64,
    /// Where the new ruleset came from (`server`, `bootstrap`, `snapshot`, `manual`).
    source: Option<String>,
    /// Flags added, removed or modified, sorted by name.
    flags: Vec<String>,
    /// Configs added, removed or modified, sorted by name.
    configs: Vec<String>,
    /// Segments added, removed or modified, sorted by name.
    segments: Vec<String>,
    /// Experiments added, removed or modified, sorted by name.
    experiments: Vec<String>,
}

impl From<&Change> for PyChange {
    fn from(c: &Change) -> PyChange {
        PyChange {
            previous_version: c.previous_version,
            version: c.version,
            source: c.source.map(|s| s.as_str().to_owned()),
            flags: c.flags.clone(),
            configs: c.configs.clone(),
            segments: c.segments.clone(),
            experiments: c.experiments.clone(),
        }
    }
}

#[pymethods]
impl PyChange {
    /// Whether the flag named `name` changed.
    fn flag_changed(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// Whether the config named `name` changed.
    fn config_changed(&self, name: &str) -> bool {
        self.configs.iter().any(|c| c == name)
    }

    fn __repr__(&self) -> String {
        format!(
            "Change(version={}, previous_version={:?}, source={:?}, flags={:?}, configs={:?}, segments={:?}, experiments={:?})",
            self.version,
            self.previous_version,
            self.source,
            self.flags,
            self.configs,
            self.segments,
            self.experiments
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

evaluation_methods!(PyClient, this => this.client.evaluator(), {
    /// Starts a client of the server at `url` with an SDK key, and starts fetching the
    /// ruleset in the background (see `wait_until_ready`). Options, all keyword-only:
    /// `poll_interval`, `request_timeout`, `stream_idle_timeout`, `flush_interval`,
    /// `close_timeout`, `backoff_initial`, `backoff_max` (seconds); `streaming`, `offline`,
    /// `send_context_with_exposures` (bool); `exposure_batch_size`,
    /// `exposure_buffer_capacity`, `exposure_dedup_capacity` (int); `bootstrap` (a ruleset
    /// as a dict or JSON str); `bootstrap_file`, `snapshot_path` (paths); `headers` (dict).
    #[new]
    #[pyo3(signature = (url, sdk_key, **options))]
    fn new(
        py: Python<'_>,
        url: String,
        sdk_key: String,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClient> {
        errors::guard(py, || {
            let builder = configure(
                py,
                Client::builder(url, sdk_key).runtime(BackgroundRuntime::Dedicated),
                options,
            )?;
            let client = py.detach(|| builder.build()).map_err(|e| errors::sdk(py, e))?;
            Ok(PyClient {
                client,
                listeners: Mutex::new(Vec::new()),
            })
        })
    }

    /// Waits (without holding the GIL) until the server's ruleset is served, for at most
    /// `timeout` seconds, and returns the status. Raises `NotReadyError` on timeout and
    /// `UnauthorizedError` at once if the server refuses the key. Meanwhile evaluations
    /// serve the bootstrap or snapshot, if any, or the callers' defaults.
    #[pyo3(signature = (timeout = 5.0))]
    fn wait_until_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<PyStatus> {
        errors::guard(py, || {
            let limit = self::timeout(timeout)?;
            let status = py
                .detach(|| self.client.wait_until_ready(limit))
                .map_err(|e| errors::sdk(py, e))?;
            PyStatus::new(py, status)
        })
    }

    /// How fresh the served ruleset is, and where it came from.
    fn status(&self, py: Python<'_>) -> PyResult<PyStatus> {
        errors::guard(py, || PyStatus::new(py, self.client.status()))
    }

    /// The served ruleset's version, if any.
    #[getter]
    fn version(&self) -> Option<u64> {
        self.client.version()
    }

    /// The names of every flag in the served ruleset.
    fn flag_names(&self) -> Vec<String> {
        self.client
            .evaluator()
            .engine()
            .flag_names()
            .map(str::to_owned)
            .collect()
    }

    /// Records a metric event (a conversion, a purchase's value) for the context's user; it
    /// is sent with the exposures. `value` is an optional finite number, `properties` an
    /// optional dict. Events of contexts without a targeting key are dropped and counted
    /// (`stats()["dropped_invalid"]`).
    #[pyo3(signature = (event, context = None, value = None, properties = None))]
    fn track(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        context: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
        properties: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        errors::guard(py, || {
            let event = convert::text(event)?;
            if event.is_empty() {
                return Err(PyValueError::new_err("event must not be empty"));
            }
            let ctx = convert::context(context)?;
            let value = match value.filter(|v| !v.is_none()) {
                None => None,
                Some(v) => {
                    if v.is_instance_of::<PyBool>()
                        || !(v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>())
                    {
                        return Err(PyTypeError::new_err(format!(
                            "value must be a number, not {}",
                            type_name(v)
                        )));
                    }
                    let f: f64 = v.extract()?;
                    if !f.is_finite() {
                        return Err(PyValueError::new_err(format!(
                            "value must be a finite number, not {f}"
                        )));
                    }
                    Some(f)
                }
            };
            match properties.filter(|p| !p.is_none()) {
                None => self.client.track(&event, &ctx, value),
                Some(p) => {
                    if !p.is_instance_of::<PyDict>() {
                        return Err(PyTypeError::new_err(format!(
                            "properties must be a dict, not {}",
                            type_name(p)
                        )));
                    }
                    let json = convert::to_json(p, "properties")?;
                    self.client.track_with_properties(&event, &ctx, value, json);
                }
            }
            Ok(())
        })
    }

    /// Sends every exposure and event recorded so far and waits (without holding the GIL)
    /// until the server has acknowledged them, for at most `timeout` seconds; raises
    /// `FlushTimeoutError` otherwise.
    #[pyo3(signature = (timeout = 5.0))]
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        errors::guard(py, || {
            let limit = self::timeout(timeout)?;
            py.detach(|| self.client.flush(limit))
                .map_err(|e| errors::sdk(py, e))
        })
    }

    /// Stops the background work after a last flush (within the `close_timeout` option,
    /// 5 s by default; raises `FlushTimeoutError` if items were left unsent). Evaluation
    /// keeps working on the last ruleset; events tracked afterwards are dropped. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        errors::guard(py, || {
            py.detach(|| self.client.close())
                .map_err(|e| errors::sdk(py, e))
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the client. A failure to flush is raised only when no other exception is
    /// already on its way out.
    #[pyo3(signature = (exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let closed = self.close(py);
        if exc_type.is_some_and(|t| !t.is_none()) {
            return Ok(false);
        }
        closed.map(|()| false)
    }

    /// Calls `callback(change)` after each new ruleset is installed, with an
    /// `optifork.Change` naming the flags, configs, segments and experiments that changed.
    /// It runs on the client's background thread (holding the GIL while it runs): keep it
    /// quick. An exception in it is reported through `sys.unraisablehook` and does not stop
    /// later updates. Returns `callback`, so it can be used as a decorator.
    fn on_change<'py>(
        &self,
        py: Python<'py>,
        callback: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        errors::guard(py, || {
            if !callback.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "callback must be callable, not {}",
                    type_name(&callback)
                )));
            }
            let cb = callback.clone().unbind();
            let id = self.client.on_change(move |change: &Change| {
                // Not while the interpreter shuts down: there is nobody left to tell.
                let _ = Python::try_attach(|py| {
                    let result = Py::new(py, PyChange::from(change))
                        .and_then(|c| cb.call1(py, (c,)));
                    if let Err(e) = result {
                        e.write_unraisable(py, Some(cb.bind(py)));
                    }
                });
            });
            lock(&self.listeners).push((callback.clone().unbind(), id));
            Ok(callback)
        })
    }

    /// Removes a callback given to `on_change` (compared with `==`, so a bound method given
    /// as `obj.method` is found again); returns whether it was registered.
    fn remove_listener(&self, py: Python<'_>, callback: &Bound<'_, PyAny>) -> PyResult<bool> {
        errors::guard(py, || {
            let registered: Vec<(Py<PyAny>, ListenerId)> = lock(&self.listeners)
                .iter()
                .map(|(cb, id)| (cb.clone_ref(py), *id))
                .collect();
            let mut matching = Vec::new();
            for (cb, id) in registered {
                // Python's __eq__ may run arbitrary code: not while holding the lock.
                if cb.bind(py).eq(callback)? {
                    matching.push(id);
                }
            }
            lock(&self.listeners).retain(|(_, id)| !matching.contains(id));
            let mut any = false;
            for id in matching {
                any |= self.client.remove_listener(id);
            }
            Ok(any)
        })
    }

    /// Installs a ruleset given by the application (a dict or JSON), as if it came from the
    /// server, and returns what changed. Raises `InvalidRulesetError` (keeping the current
    /// ruleset) when it does not compile. Served until the server's ruleset changes.
    fn update_ruleset(&self, py: Python<'_>, ruleset: &Bound<'_, PyAny>) -> PyResult<PyChange> {
        errors::guard(py, || {
            let text = ruleset_text(ruleset, "ruleset")?;
            let change = py
                .detach(|| self.client.update_ruleset_json(&text))
                .map_err(|e| errors::sdk(py, e))?;
            Ok(PyChange::from(&*change))
        })
    }

    /// The client's counters since it started (requests, updates, exposures queued, sent,
    /// dropped, ...), as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        errors::guard(py, || {
            let s = self.client.stats();
            let d = PyDict::new(py);
            for (k, v) in [
                ("ruleset_requests", s.ruleset_requests),
                ("ruleset_updates", s.ruleset_updates),
                ("ruleset_not_modified", s.ruleset_not_modified),
                ("ruleset_errors", s.ruleset_errors),
                ("rulesets_refused", s.rulesets_refused),
                ("stream_connects", s.stream_connects),
                ("stream_events", s.stream_events),
                ("exposures_queued", s.exposures_queued),
                ("exposures_deduplicated", s.exposures_deduplicated),
                ("events_queued", s.events_queued),
                ("dropped_buffer_full", s.dropped_buffer_full),
                ("dropped_invalid", s.dropped_invalid),
                ("dropped_closed", s.dropped_closed),
                ("items_sent", s.items_sent),
                ("batches_sent", s.batches_sent),
                ("batches_duplicate", s.batches_duplicate),
                ("batch_retries", s.batch_retries),
                ("items_refused", s.items_refused),
                ("items_unsent_at_close", s.items_unsent_at_close),
                ("buffered", s.buffered),
            ] {
                d.set_item(k, v)?;
            }
            Ok(d)
        })
    }

    fn __repr__(&self) -> String {
        let s = self.client.status();
        format!(
            "Client(state={}, version={:?})",
            s.state,
            s.version
        )
    }
});

impl Drop for PyClient {
    fn drop(&mut self) {
        // Dropping the last handle closes the client, which waits for the background
        // thread; that thread may be waiting for the GIL to run a change callback, so the GIL
        // is released meanwhile.
        let client = &self.client;
        let done = Python::try_attach(|py| {
            py.detach(|| {
                let _ = client.close();
            })
        });
        if done.is_none() {
            let _ = client.close();
        }
    }
}
