//! [`Client`]: evaluation, freshness, exposures and events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::Guard;
use optifork_core::{
    Assignment, AssignmentReason, Context, Details, Engine, ErrorCode, Evaluation, FlagValue,
    Reason, ResolvedConfig,
};
use serde_json::Value as Json;
use tokio::sync::broadcast;

use crate::builder::{ClientBuilder, Options};
use crate::changes::Change;
use crate::delivery::Delivery;
use crate::error::SdkError;
use crate::shared::{Refused, Shared};
use crate::status::{Source, State, Stats, Status};
use crate::sync;

/// An OptiFork client: evaluates flags, configs, segments and experiments in process against
/// the latest ruleset, which it keeps fresh in the background.
///
/// Cloning is cheap (two `Arc`s) and every clone shares everything; `Client` is `Send +
/// Sync`. Evaluation never blocks, never waits for the network and never panics. The
/// background work stops, after a last flush of exposures and events, on
/// [`close`](Self::close) or when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

/// Stops the background work when the last clone of the client goes.
struct Owner {
    shared: Arc<Shared>,
    closed: AtomicBool,
}

impl Owner {
    fn close(&self) -> bool {
        if self.closed.swap(true, Ordering::SeqCst) {
            return self.shared.done.get(|d| *d);
        }
        let wait = self.shared.options.close_timeout + Duration::from_secs(1);
        sync::stop(&self.shared, wait)
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server_url", &self.shared.options.server_url)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// A typed flag result with an owned variant name, from the `*_details` methods of
/// [`Client`]. ([`Evaluator`] returns the borrowing [`Details`] instead.)
#[derive(Clone, Debug, PartialEq)]
pub struct FlagDetails<T> {
    /// The flag's value, or the caller's default.
    pub value: T,
    /// The variant served, when the flag's value is used.
    pub variant: Option<String>,
    /// Why (OpenFeature's reasons).
    pub reason: Reason,
    /// What went wrong, with [`Reason::Error`].
    pub error: Option<ErrorCode>,
    /// The index of the rule that matched, if one did.
    pub rule_index: Option<usize>,
}

impl<T> FlagDetails<T> {
    fn from_details<U>(d: Details<'_, U>, value: impl FnOnce(U) -> T) -> FlagDetails<T> {
        FlagDetails {
            value: value(d.value),
            variant: d.variant.map(str::to_owned),
            reason: d.reason,
            error: d.error,
            rule_index: d.rule_index,
        }
    }
}

/// An experiment assignment with an owned variant name, from [`Client::assign`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentAssignment {
    /// The variant to show; the control variant when not in the experiment.
    pub variant: String,
    /// Whether the user is enrolled (and so was recorded as an exposure).
    pub in_experiment: bool,
    /// Why.
    pub reason: AssignmentReason,
}

/// Identifies a change listener, to remove it with [`Client::remove_listener`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

impl Client {
    /// Starts building a client for the server at `server_url` (such as
    /// `https://flags.example.com`) with an SDK key (scope `sdk`, bound to one environment).
    pub fn builder(server_url: impl Into<String>, sdk_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(server_url, sdk_key)
    }

    pub(crate) fn start(mut options: Options) -> Result<Client, SdkError> {
        // Not kept: once installed, the bootstrap's text is of no further use.
        let bootstrap = options.bootstrap.take();
        let shared = Arc::new(Shared::new(options));
        shared.load_initial(bootstrap)?;
        sync::start(&shared)?;
        Ok(Client {
            _owner: Arc::new(Owner {
                shared: Arc::clone(&shared),
                closed: AtomicBool::new(false),
            }),
            shared,
        })
    }

    /// Pins the current ruleset for a series of evaluations that borrow from it and allocate
    /// nothing (string and JSON values, variant names, configs without overrides). Every
    /// evaluation through one `Evaluator` sees the same ruleset, even if a new one arrives
    /// meanwhile. Exposures are recorded as through the client.
    ///
    /// Hold it briefly (for a request, not for the life of a thread): a pinned ruleset
    /// cannot be freed.
    #[inline]
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            engine: self.shared.engine.load(),
            shared: &self.shared,
        }
    }

    /// Whether a boolean flag is on for this context. Anything else (an unknown flag, a
    /// non-boolean flag, an error, no ruleset yet) is `false`.
    #[inline]
    pub fn is_enabled(&self, flag: &str, ctx: &Context) -> bool {
        self.evaluator().is_enabled(flag, ctx)
    }

    /// A boolean flag's value; `default` on error or type mismatch.
    #[inline]
    pub fn bool_value(&self, flag: &str, ctx: &Context, default: bool) -> bool {
        self.evaluator().bool_details(flag, ctx, default).value
    }

    /// A string flag's value (copied out); `default` on error or type mismatch. Use
    /// [`evaluator`](Self::evaluator) to borrow it without a copy.
    pub fn string_value(&self, flag: &str, ctx: &Context, default: &str) -> String {
        self.evaluator().string_value(flag, ctx, default).to_owned()
    }

    /// A number flag's value; `default` on error or type mismatch.
    #[inline]
    pub fn number_value(&self, flag: &str, ctx: &Context, default: f64) -> f64 {
        self.evaluator().number_details(flag, ctx, default).value
    }

    /// A number flag's value as an integer; `default` on error, type mismatch or a
    /// non-integral value.
    #[inline]
    pub fn int_value(&self, flag: &str, ctx: &Context, default: i64) -> i64 {
        self.evaluator().int_details(flag, ctx, default).value
    }

    /// A JSON flag's value (cloned); `default` on error or type mismatch.
    pub fn json_value(&self, flag: &str, ctx: &Context, default: Json) -> Json {
        let ev = self.evaluator();
        let d = ev.json_details(flag, ctx, &Json::Null);
        if d.variant.is_some() {
            d.value.clone()
        } else {
            default
        }
    }

    /// A boolean flag's value with its variant and reason.
    pub fn bool_details(&self, flag: &str, ctx: &Context, default: bool) -> FlagDetails<bool> {
        FlagDetails::from_details(self.evaluator().bool_details(flag, ctx, default), |v| v)
    }

    /// A string flag's value with its variant and reason.
    pub fn string_details(&self, flag: &str, ctx: &Context, default: &str) -> FlagDetails<String> {
        FlagDetails::from_details(
            self.evaluator().string_details(flag, ctx, default),
            str::to_owned,
        )
    }

    /// A number flag's value with its variant and reason.
    pub fn number_details(&self, flag: &str, ctx: &Context, default: f64) -> FlagDetails<f64> {
        FlagDetails::from_details(self.evaluator().number_details(flag, ctx, default), |v| v)
    }

    /// An integral number flag's value with its variant and reason (a non-integral value is
    /// a type mismatch).
    pub fn int_details(&self, flag: &str, ctx: &Context, default: i64) -> FlagDetails<i64> {
        FlagDetails::from_details(self.evaluator().int_details(flag, ctx, default), |v| v)
    }

    /// A JSON flag's value with its variant and reason.
    pub fn json_details(&self, flag: &str, ctx: &Context, default: Json) -> FlagDetails<Json> {
        let ev = self.evaluator();
        let d = ev.json_details(flag, ctx, &Json::Null);
        if d.variant.is_some() {
            FlagDetails::from_details(d, Json::clone)
        } else {
            FlagDetails::from_details(d, |_| default)
        }
    }

    /// Evaluates a flag of any type: its value (`None` when the caller's default applies),
    /// variant and reason.
    pub fn evaluate(&self, flag: &str, ctx: &Context) -> FlagDetails<Option<FlagValue>> {
        let ev = self.evaluator();
        let e = ev.evaluate(flag, ctx);
        FlagDetails {
            value: e.value.cloned(),
            variant: e.variant.map(str::to_owned),
            reason: e.reason,
            error: e.error,
            rule_index: e.rule_index,
        }
    }

    /// A remote config resolved for this context: `config_data` with every matching
    /// override deep-merged over it. `None` for an unknown or inactive config.
    pub fn config(&self, name: &str, ctx: &Context) -> Option<Json> {
        self.evaluator()
            .config(name, ctx)
            .map(|c| c.value.into_owned())
    }

    /// The names of the active segments this context belongs to, in ruleset order.
    pub fn segments(&self, ctx: &Context) -> Vec<String> {
        self.evaluator().segments(ctx).map(str::to_owned).collect()
    }

    /// Whether the context is in a segment; `None` when there is no such segment.
    pub fn in_segment(&self, segment: &str, ctx: &Context) -> Option<bool> {
        self.evaluator().in_segment(segment, ctx)
    }

    /// Assigns the context to one of an experiment's variants. An enrolled user
    /// (`in_experiment`) is recorded as an exposure; everyone else gets the control variant.
    pub fn assign(&self, experiment: &str, ctx: &Context) -> ExperimentAssignment {
        let ev = self.evaluator();
        let a = ev.assign(experiment, ctx);
        ExperimentAssignment {
            variant: a.variant.to_owned(),
            in_experiment: a.in_experiment,
            reason: a.reason,
        }
    }

    /// Records a metric event (a conversion, a purchase's value) for the context's user, to
    /// be sent with the exposures. Contexts without a targeting key and non-finite values
    /// are dropped and counted ([`Stats::dropped_invalid`]).
    pub fn track(&self, event: &str, ctx: &Context, value: Option<f64>) {
        self.shared
            .delivery
            .track(&self.shared.counters, event, ctx, value, None);
    }

    /// [`track`](Self::track) with free-form properties (a JSON object).
    pub fn track_with_properties(
        &self,
        event: &str,
        ctx: &Context,
        value: Option<f64>,
        properties: Json,
    ) {
        self.shared
            .delivery
            .track(&self.shared.counters, event, ctx, value, Some(properties));
    }

    /// How fresh the served ruleset is, and where it came from.
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// Whether a ruleset is being served (from the server, a bootstrap or a snapshot).
    pub fn has_ruleset(&self) -> bool {
        self.shared.status.get(|c| c.status.source.is_some())
    }

    /// The served ruleset's version, if any.
    pub fn version(&self) -> Option<u64> {
        self.shared.status.get(|c| c.status.version)
    }

    /// Counters: requests, updates, refused rulesets, exposures queued, deduplicated,
    /// dropped, sent, retried.
    pub fn stats(&self) -> Stats {
        let mut s = self.shared.counters.snapshot();
        s.exposures_deduplicated = self.shared.delivery.dedup_hits();
        s.buffered = self.shared.delivery.buffered();
        s
    }

    fn ready_result(&self, waited: Duration) -> Result<Status, SdkError> {
        let (status, unauthorized) = self
            .shared
            .status
            .get(|c| (c.status.clone(), c.unauthorized));
        if status.state == State::Ready {
            Ok(status)
        } else if unauthorized {
            Err(SdkError::Unauthorized(
                status.last_error.unwrap_or_default(),
            ))
        } else {
            Err(SdkError::NotReady {
                waited,
                last_error: status.last_error,
            })
        }
    }

    fn ready_or_refused(c: &crate::shared::StatusCell) -> bool {
        c.status.state == State::Ready || c.unauthorized
    }

    /// Blocks until the server's ruleset is served (state [`State::Ready`]), for at most
    /// `timeout`. Fails at once if the server refuses the key. Meanwhile evaluations serve
    /// the bootstrap or snapshot, if any, or the callers' defaults. In async code use
    /// [`wait_until_ready_async`](Self::wait_until_ready_async).
    pub fn wait_until_ready(&self, timeout: Duration) -> Result<Status, SdkError> {
        sync::blocking(|| {
            self.shared
                .status
                .wait_blocking(timeout, Self::ready_or_refused)
        });
        self.ready_result(timeout)
    }

    /// [`wait_until_ready`](Self::wait_until_ready) for async code (needs a tokio runtime).
    pub async fn wait_until_ready_async(&self, timeout: Duration) -> Result<Status, SdkError> {
        let _ =
            tokio::time::timeout(timeout, self.shared.status.wait(Self::ready_or_refused)).await;
        self.ready_result(timeout)
    }

    /// Calls `listener` after each new ruleset is installed, with the names of the flags,
    /// configs, segments and experiments whose definitions changed (not called when nothing
    /// did). It runs on the SDK's background thread or task, after the new ruleset is
    /// already being served: keep it quick, and do not block on the client in it. A panic
    /// in a listener is caught and logged.
    pub fn on_change(&self, listener: impl Fn(&Change) + Send + Sync + 'static) -> ListenerId {
        ListenerId(self.shared.add_listener(Arc::new(listener)))
    }

    /// Removes a listener; returns whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.shared.remove_listener(id.0)
    }

    /// A channel of changes for async code: every change [`on_change`](Self::on_change)
    /// would see. A receiver that falls more than 64 changes behind gets
    /// `RecvError::Lagged` and continues from the newest.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.shared.changes.subscribe()
    }

    /// Installs a ruleset given by the application (its JSON, as the server sends it), as if
    /// it had come from the server: checked, swapped in, listeners told (source
    /// [`Source::Manual`]). A ruleset that does not compile is refused and the current one
    /// kept. It is served until the server's ruleset changes (a poll answered "not
    /// modified" keeps it).
    pub fn update_ruleset_json(&self, json: &str) -> Result<Arc<Change>, SdkError> {
        self.shared
            .install(json.as_bytes(), Source::Manual)
            .map_err(|Refused::Invalid(e)| SdkError::InvalidRuleset(e))
    }

    /// Sends every exposure and event recorded so far now, and blocks until the server has
    /// acknowledged them all (or they were refused), for at most `timeout`. In async code use
    /// [`flush_async`](Self::flush_async).
    pub fn flush(&self, timeout: Duration) -> Result<(), SdkError> {
        let d = &self.shared.delivery;
        let target = d.request_flush();
        let done = sync::blocking(|| {
            d.progress
                .wait_blocking(timeout, |p| Delivery::settled(p, target))
        });
        if done {
            Ok(())
        } else {
            Err(SdkError::Timeout(timeout))
        }
    }

    /// [`flush`](Self::flush) for async code (needs a tokio runtime).
    pub async fn flush_async(&self, timeout: Duration) -> Result<(), SdkError> {
        let d = &self.shared.delivery;
        let target = d.request_flush();
        tokio::time::timeout(timeout, d.progress.wait(|p| Delivery::settled(p, target)))
            .await
            .map_err(|_| SdkError::Timeout(timeout))
    }

    /// Stops the background work: no more updates, and what is queued is sent (within the
    /// close timeout, default 5 s); exposures and events recorded afterwards are dropped and
    /// counted. Evaluation keeps working on the last ruleset. Also happens, best effort,
    /// when the last clone is dropped. Idempotent. In async code use
    /// [`close_async`](Self::close_async).
    pub fn close(&self) -> Result<(), SdkError> {
        if self._owner.close() {
            Ok(())
        } else {
            Err(SdkError::Timeout(self.shared.options.close_timeout))
        }
    }

    /// [`close`](Self::close) for async code (needs a tokio runtime).
    pub async fn close_async(&self) -> Result<(), SdkError> {
        self._owner.closed.store(true, Ordering::SeqCst);
        self.shared.shutdown.update(|s| *s = true);
        let wait = self.shared.options.close_timeout + Duration::from_secs(1);
        tokio::time::timeout(wait, self.shared.done.wait(|d| *d))
            .await
            .map_err(|_| SdkError::Timeout(self.shared.options.close_timeout))
    }
}

/// A pinned ruleset, from [`Client::evaluator`]: evaluations borrow from it and allocate
/// nothing. Exposures are recorded as through the client.
pub struct Evaluator<'c> {
    engine: Guard<Arc<Engine>>,
    shared: &'c Shared,
}

impl std::fmt::Debug for Evaluator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("engine", &*self.engine)
            .finish()
    }
}

impl Evaluator<'_> {
    /// The compiled engine itself (evaluations through it record no exposures).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The pinned ruleset's version.
    pub fn version(&self) -> u64 {
        self.engine.version()
    }

    #[inline]
    fn expose_flag(&self, flag: &str, ctx: &Context, variant: &str, value: Option<&FlagValue>) {
        let enabled = match value {
            Some(FlagValue::Bool(b)) => Some(*b),
            _ => None,
        };
        self.shared
            .delivery
            .expose(&self.shared.counters, false, flag, ctx, variant, enabled);
    }

    /// Evaluates a flag: value, variant, reason, rule.
    #[inline]
    pub fn evaluate(&self, flag: &str, ctx: &Context) -> Evaluation<'_> {
        let e = self.engine.evaluate(flag, ctx);
        if e.track
            && let Some(variant) = e.variant
        {
            self.expose_flag(flag, ctx, variant, e.value);
        }
        e
    }

    /// Whether a boolean flag is on; see [`Client::is_enabled`].
    #[inline]
    pub fn is_enabled(&self, flag: &str, ctx: &Context) -> bool {
        let e = self.engine.evaluate(flag, ctx);
        match e.value {
            Some(FlagValue::Bool(on)) => {
                if e.track
                    && let Some(variant) = e.variant
                {
                    self.expose_flag(flag, ctx, variant, e.value);
                }
                *on
            }
            _ => false,
        }
    }

    /// Evaluates and extracts a typed value as the core's typed getters do, recording an
    /// exposure when the flag is tracked and its value is used.
    #[inline]
    fn typed<'e, T>(
        &'e self,
        flag: &str,
        ctx: &Context,
        default: T,
        extract: impl FnOnce(&'e FlagValue) -> Option<T>,
    ) -> Details<'e, T> {
        let e = self.engine.evaluate(flag, ctx);
        let Some(v) = e.value else {
            return Details {
                value: default,
                variant: None,
                reason: e.reason,
                error: e.error,
                rule_index: e.rule_index,
            };
        };
        match extract(v) {
            Some(value) => {
                if e.track
                    && let Some(variant) = e.variant
                {
                    self.expose_flag(flag, ctx, variant, e.value);
                }
                Details {
                    value,
                    variant: e.variant,
                    reason: e.reason,
                    error: None,
                    rule_index: e.rule_index,
                }
            }
            None => Details {
                value: default,
                variant: None,
                reason: Reason::Error,
                error: Some(ErrorCode::TypeMismatch),
                rule_index: e.rule_index,
            },
        }
    }

    /// A boolean flag's value with details.
    #[inline]
    pub fn bool_details(&self, flag: &str, ctx: &Context, default: bool) -> Details<'_, bool> {
        self.typed(flag, ctx, default, |v| match v {
            FlagValue::Bool(b) => Some(*b),
            _ => None,
        })
    }

    /// A boolean flag's value.
    #[inline]
    pub fn bool_value(&self, flag: &str, ctx: &Context, default: bool) -> bool {
        self.bool_details(flag, ctx, default).value
    }

    /// A string flag's value with details, borrowed.
    #[inline]
    pub fn string_details<'e>(
        &'e self,
        flag: &str,
        ctx: &Context,
        default: &'e str,
    ) -> Details<'e, &'e str> {
        self.typed(flag, ctx, default, |v| match v {
            FlagValue::String(s) => Some(&**s),
            _ => None,
        })
    }

    /// A string flag's value, borrowed.
    #[inline]
    pub fn string_value<'e>(&'e self, flag: &str, ctx: &Context, default: &'e str) -> &'e str {
        self.string_details(flag, ctx, default).value
    }

    /// A number flag's value with details.
    #[inline]
    pub fn number_details(&self, flag: &str, ctx: &Context, default: f64) -> Details<'_, f64> {
        self.typed(flag, ctx, default, |v| match v {
            FlagValue::Number(n) => Some(*n),
            _ => None,
        })
    }

    /// A number flag's value.
    #[inline]
    pub fn number_value(&self, flag: &str, ctx: &Context, default: f64) -> f64 {
        self.number_details(flag, ctx, default).value
    }

    /// An integral number flag's value with details (a non-integral value is a type
    /// mismatch).
    #[inline]
    pub fn int_details(&self, flag: &str, ctx: &Context, default: i64) -> Details<'_, i64> {
        self.typed(flag, ctx, default, |v| match v {
            FlagValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Some(*n as i64),
            _ => None,
        })
    }

    /// An integral number flag's value.
    #[inline]
    pub fn int_value(&self, flag: &str, ctx: &Context, default: i64) -> i64 {
        self.int_details(flag, ctx, default).value
    }

    /// A JSON flag's value with details, borrowed.
    #[inline]
    pub fn json_details<'e>(
        &'e self,
        flag: &str,
        ctx: &Context,
        default: &'e Json,
    ) -> Details<'e, &'e Json> {
        self.typed(flag, ctx, default, |v| match v {
            FlagValue::Json(j) => Some(j),
            _ => None,
        })
    }

    /// A JSON flag's value, borrowed.
    #[inline]
    pub fn json_value<'e>(&'e self, flag: &str, ctx: &Context, default: &'e Json) -> &'e Json {
        self.json_details(flag, ctx, default).value
    }

    /// A remote config resolved for this context (borrowed when no override matches).
    pub fn config(&self, name: &str, ctx: &Context) -> Option<ResolvedConfig<'_>> {
        self.engine.config(name, ctx)
    }

    /// The names of the active segments the context belongs to, in ruleset order.
    pub fn segments<'e>(&'e self, ctx: &'e Context) -> impl Iterator<Item = &'e str> + 'e {
        self.engine.segments(ctx)
    }

    /// Whether the context is in a segment; `None` when there is no such segment.
    pub fn in_segment(&self, segment: &str, ctx: &Context) -> Option<bool> {
        self.engine.in_segment(segment, ctx)
    }

    /// Assigns the context to an experiment's variant, recording an exposure when enrolled.
    #[inline]
    pub fn assign(&self, experiment: &str, ctx: &Context) -> Assignment<'_> {
        let a = self.engine.assign(experiment, ctx);
        if a.in_experiment {
            self.shared.delivery.expose(
                &self.shared.counters,
                true,
                experiment,
                ctx,
                a.variant,
                None,
            );
        }
        a
    }
}
