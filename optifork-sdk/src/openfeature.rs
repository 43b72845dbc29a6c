//! An [OpenFeature](https://openfeature.dev) provider for the `open-feature` crate (0.3),
//! behind the cargo feature `openfeature`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), optifork_sdk::SdkError> {
//! use open_feature::{EvaluationContext, OpenFeature};
//! use optifork_sdk::{Client, openfeature::OptiForkProvider};
//!
//! let client = Client::builder("http://127.0.0.1:8000", "ofk_...").build()?;
//! let mut api = OpenFeature::singleton_mut().await;
//! api.set_provider(OptiForkProvider::new(client)).await; // waits until ready (5 s at most)
//! let flags = api.create_client();
//! let ctx = EvaluationContext::default().with_targeting_key("user-123").with_custom_field("country", "US");
//! let on = flags.get_bool_value("new_checkout", Some(&ctx), None).await.unwrap_or(false);
//! # Ok(()) }
//! ```
//!
//! # Mapping
//!
//! * Reasons: `STATIC`, `DEFAULT`, `TARGETING_MATCH`, `SPLIT`, `DISABLED` as OpenFeature
//!   defines them; a failed prerequisite is the custom reason `PREREQUISITE_FAILED`
//!   ([`EvaluationReason::Other`]).
//! * Errors (the crate's client returns them as `Err`; the application falls back to its
//!   default, e.g. `get_bool_value(..).await.unwrap_or(false)`):
//!   `FLAG_NOT_FOUND`, `TYPE_MISMATCH` (also for an integer asked of a non-integral number,
//!   and for a struct asked of a JSON value that is not an object), `TARGETING_KEY_MISSING`
//!   (a percentage needs a targeting key the context lacks), `PROVIDER_NOT_READY` (no
//!   ruleset yet: no bootstrap, no snapshot, server not reached).
//! * A flag that serves no value (an off flag without an off variant, or a non-boolean flag
//!   whose targeting excludes the user and that has no off variant) must give the caller's
//!   default, which version 0.3's provider interface does not pass to providers: such
//!   evaluations fail with the general error code `NO_VARIANT`, and the message names the
//!   real reason (`DISABLED`, `DEFAULT`, ...). Boolean flags without variants always serve
//!   a value.
//! * Flag metadata: `ruleset_version`, and `rule_index` when a rule matched.
//! * Context: the targeting key becomes the context's key; custom fields become attributes
//!   (integers and floats as numbers, date-times as RFC 3339 strings, structs given as a
//!   `serde_json::Value`, an `open_feature::StructValue` or an `optifork_core::Value` as
//!   objects; other structs are skipped).
//! * Status: [`State`] `NOT_READY` / `READY` / `STALE` / `ERROR` map to the provider statuses
//!   of the same names.
//!
//! # Events
//!
//! Version 0.3 of the `open-feature` crate has no provider events (no
//! `PROVIDER_CONFIGURATION_CHANGED`, no event handlers on the API or clients), so this
//! provider cannot emit them. Use [`Client::on_change`] or [`Client::subscribe`] on the
//! client (reachable with [`OptiForkProvider::client`]) to learn which flags changed.

use std::time::Duration;

use compact_str::CompactString;
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue,
};
use optifork_core::{Context, ErrorCode, Reason, Value};
use serde_json::Value as Json;

use crate::client::{Client, FlagDetails};
use crate::status::State;

/// The OpenFeature provider: evaluates through a [`Client`] (so exposures of tracked flags
/// are recorded as usual).
pub struct OptiForkProvider {
    client: Client,
    metadata: ProviderMetadata,
    init_timeout: Duration,
}

impl std::fmt::Debug for OptiForkProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptiForkProvider")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl OptiForkProvider {
    /// A provider over `client`. Its `initialize` waits up to 5 s for the client to be ready.
    pub fn new(client: Client) -> OptiForkProvider {
        OptiForkProvider {
            client,
            metadata: ProviderMetadata::new("OptiFork"),
            init_timeout: Duration::from_secs(5),
        }
    }

    /// How long `initialize` (run by `set_provider`) waits for the client to be ready.
    #[must_use]
    pub fn with_init_timeout(mut self, timeout: Duration) -> OptiForkProvider {
        self.init_timeout = timeout;
        self
    }

    /// The client, for change listeners, status, `track` and `flush`.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn finish<T>(&self, flag: &str, d: FlagDetails<T>) -> EvaluationResult<ResolutionDetails<T>> {
        if let Some(code) = d.error {
            if code == ErrorCode::FlagNotFound && !self.client.has_ruleset() {
                return Err(error(
                    EvaluationErrorCode::ProviderNotReady,
                    "no ruleset yet".into(),
                ));
            }
            let of = match code {
                ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
                ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
                ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
            };
            return Err(error(of, format!("{code} ({flag})")));
        }
        let Some(variant) = d.variant else {
            return Err(error(
                EvaluationErrorCode::General("NO_VARIANT".into()),
                format!(
                    "flag {flag} serves no value here (reason {}): the default applies",
                    d.reason
                ),
            ));
        };
        let mut metadata = FlagMetadata::default();
        if let Some(v) = self.client.version() {
            metadata.add_value("ruleset_version", v as i64);
        }
        if let Some(i) = d.rule_index {
            metadata.add_value("rule_index", i as i64);
        }
        Ok(ResolutionDetails {
            value: d.value,
            variant: Some(variant),
            reason: Some(reason(d.reason)),
            flag_metadata: Some(metadata),
        })
    }
}

fn error(code: EvaluationErrorCode, message: String) -> EvaluationError {
    EvaluationError {
        code,
        message: Some(message),
    }
}

/// An OptiFork reason as an OpenFeature reason.
pub fn reason(r: Reason) -> EvaluationReason {
    match r {
        Reason::Static => EvaluationReason::Static,
        Reason::Default => EvaluationReason::Default,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Split => EvaluationReason::Split,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::PrerequisiteFailed => EvaluationReason::Other("PREREQUISITE_FAILED".into()),
        Reason::Error => EvaluationReason::Error,
    }
}

/// An OpenFeature evaluation context as an OptiFork context.
pub fn context(ec: &EvaluationContext) -> Context {
    let attrs: Vec<(CompactString, Value)> = ec
        .custom_fields
        .iter()
        .filter_map(|(k, v)| field(v).map(|v| (CompactString::from(k.as_str()), v)))
        .collect();
    let mut ctx = Context::from_attributes(attrs);
    if let Some(key) = &ec.targeting_key {
        ctx.set_key(Some(key.as_str()));
    }
    ctx
}

fn field(v: &EvaluationContextFieldValue) -> Option<Value> {
    Some(match v {
        EvaluationContextFieldValue::Bool(b) => Value::Bool(*b),
        EvaluationContextFieldValue::Int(i) => Value::Number(*i as f64),
        EvaluationContextFieldValue::Float(f) => Value::Number(*f),
        EvaluationContextFieldValue::String(s) => Value::from(s.as_str()),
        EvaluationContextFieldValue::DateTime(dt) => {
            let t = chrono::DateTime::from_timestamp(dt.unix_timestamp(), dt.nanosecond())?;
            Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        EvaluationContextFieldValue::Struct(any) => {
            if let Some(j) = any.downcast_ref::<Json>() {
                Value::from(j)
            } else if let Some(s) = any.downcast_ref::<StructValue>() {
                struct_to_value(s)
            } else if let Some(v) = any.downcast_ref::<Value>() {
                v.clone()
            } else {
                return None;
            }
        }
    })
}

fn of_to_value(v: &open_feature::Value) -> Value {
    match v {
        open_feature::Value::Bool(b) => Value::Bool(*b),
        open_feature::Value::Int(i) => Value::Number(*i as f64),
        open_feature::Value::Float(f) => Value::Number(*f),
        open_feature::Value::String(s) => Value::from(s.as_str()),
        open_feature::Value::Array(a) => Value::Array(a.iter().map(of_to_value).collect()),
        open_feature::Value::Struct(s) => struct_to_value(s),
    }
}

fn struct_to_value(s: &StructValue) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (CompactString::from(k.as_str()), of_to_value(v)))
            .collect(),
    )
}

/// JSON as an OpenFeature value. OpenFeature has no null: null object fields are left out,
/// and null array elements are dropped.
fn json_to_of(j: &Json) -> Option<open_feature::Value> {
    Some(match j {
        Json::Null => return None,
        Json::Bool(b) => open_feature::Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => open_feature::Value::Int(i),
            None => open_feature::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => open_feature::Value::String(s.clone()),
        Json::Array(a) => open_feature::Value::Array(a.iter().filter_map(json_to_of).collect()),
        Json::Object(o) => open_feature::Value::Struct(StructValue {
            fields: o
                .iter()
                .filter_map(|(k, v)| json_to_of(v).map(|v| (k.clone(), v)))
                .collect(),
        }),
    })
}

#[open_feature::async_trait]
impl FeatureProvider for OptiForkProvider {
    async fn initialize(&mut self, _context: &EvaluationContext) {
        let _ = self.client.wait_until_ready_async(self.init_timeout).await;
    }

    fn status(&self) -> ProviderStatus {
        match self.client.status().state {
            State::NotReady => ProviderStatus::NotReady,
            State::Ready => ProviderStatus::Ready,
            State::Stale => ProviderStatus::STALE,
            State::Error => ProviderStatus::Error,
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let ctx = context(evaluation_context);
        self.finish(flag_key, self.client.bool_details(flag_key, &ctx, false))
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        let ctx = context(evaluation_context);
        self.finish(flag_key, self.client.int_details(flag_key, &ctx, 0))
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        let ctx = context(evaluation_context);
        self.finish(flag_key, self.client.number_details(flag_key, &ctx, 0.0))
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        let ctx = context(evaluation_context);
        self.finish(flag_key, self.client.string_details(flag_key, &ctx, ""))
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        let ctx = context(evaluation_context);
        let d = self.client.json_details(flag_key, &ctx, Json::Null);
        if d.variant.is_some() && !d.value.is_object() {
            return Err(error(
                EvaluationErrorCode::TypeMismatch,
                format!(
                    "flag {flag_key} serves {}, not an object",
                    json_type(&d.value)
                ),
            ));
        }
        let FlagDetails {
            value,
            variant,
            reason,
            error: e,
            rule_index,
        } = d;
        let value = match json_to_of(&value) {
            Some(open_feature::Value::Struct(s)) => s,
            _ => StructValue::default(),
        };
        self.finish(
            flag_key,
            FlagDetails {
                value,
                variant,
                reason,
                error: e,
                rule_index,
            },
        )
    }
}

fn json_type(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
