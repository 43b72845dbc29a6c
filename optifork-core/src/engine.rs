//! The compiled engine and everything that evaluates against it.
//!
//! Evaluation never fails: problems are reported in the result (an OpenFeature reason and
//! error code) and the caller's default is served. Results borrow from the engine, so
//! evaluating a flag allocates nothing.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use ahash::AHashMap;
use serde_json::Value as Json;

use crate::bucket::{BUCKETS, Layout, bucket_with_seed};
use crate::condition::{Condition, Node, Resolver, SegmentNode, compile_condition};
use crate::error::{CompileError, JsonPath};
use crate::model::FlagKind;
use crate::value::{Attr, Context, Value};

/// An immutable, compiled ruleset. Cheap to share (`Arc<Engine>`), safe to use from any
/// number of threads; build a new one to change anything.
pub struct Engine {
    pub(crate) environment: Box<str>,
    pub(crate) version: u64,
    pub(crate) flags: Box<[CFlag]>,
    pub(crate) flag_index: AHashMap<Box<str>, u32>,
    pub(crate) configs: Box<[CConfig]>,
    pub(crate) config_index: AHashMap<Box<str>, u32>,
    pub(crate) segments: Arc<[SegmentNode]>,
    pub(crate) segment_names: Box<[Box<str>]>,
    pub(crate) segment_index: AHashMap<Box<str>, u32>,
    pub(crate) experiments: Box<[CExperiment]>,
    pub(crate) experiment_index: AHashMap<Box<str>, u32>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("environment", &self.environment)
            .field("version", &self.version)
            .field("flags", &self.flags.len())
            .field("configs", &self.configs.len())
            .field("segments", &self.segments.len())
            .field("experiments", &self.experiments.len())
            .finish()
    }
}

/// A value a flag serves.
#[derive(Clone, Debug, PartialEq)]
pub enum FlagValue {
    /// From a boolean flag.
    Bool(bool),
    /// From a string flag.
    String(Box<str>),
    /// From a number flag.
    Number(f64),
    /// From a JSON flag (any JSON, including strings and booleans).
    Json(Json),
}

impl FlagValue {
    /// The value as JSON.
    pub fn to_json(&self) -> Json {
        match self {
            FlagValue::Bool(b) => Json::Bool(*b),
            FlagValue::String(s) => Json::String(s.to_string()),
            FlagValue::Number(n) => crate::value::number_to_json(*n),
            FlagValue::Json(j) => j.clone(),
        }
    }
}

/// Why a flag evaluated the way it did (OpenFeature's resolution reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The flag serves one value to everyone: no rules, targeting or percentage.
    Static,
    /// No rule matched (or the fallthrough targeting did not): the default or off variant.
    Default,
    /// A rule or the flag's targeting matched.
    TargetingMatch,
    /// A percentage rollout placed the user.
    Split,
    /// The flag is off.
    Disabled,
    /// A prerequisite flag did not serve a required variant (a custom OpenFeature reason).
    PrerequisiteFailed,
    /// Something went wrong; see the error code. The caller's default is served.
    Error,
}

impl Reason {
    /// The reason as OpenFeature spells it (`TARGETING_MATCH`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::PrerequisiteFailed => "PREREQUISITE_FAILED",
            Reason::Error => "ERROR",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, when the reason is [`Reason::Error`] (OpenFeature's error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No flag of that name in the ruleset.
    FlagNotFound,
    /// The flag's value is not of the type asked for.
    TypeMismatch,
    /// A percentage rollout needs the targeting key (or `bucket_by` attribute) and the
    /// context has none.
    TargetingKeyMissing,
}

impl ErrorCode {
    /// The code as OpenFeature spells it (`FLAG_NOT_FOUND`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The full result of evaluating a flag.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation<'e> {
    /// The value served; `None` when the caller's default applies (an error, or an off flag
    /// without an off variant).
    pub value: Option<&'e FlagValue>,
    /// The name of the variant served.
    pub variant: Option<&'e str>,
    /// Why.
    pub reason: Reason,
    /// What went wrong, with [`Reason::Error`].
    pub error: Option<ErrorCode>,
    /// The index of the rule that matched, if one did.
    pub rule_index: Option<usize>,
    /// Whether the flag asks SDKs to record an exposure for this evaluation.
    pub track: bool,
}

impl Evaluation<'_> {
    fn error(code: ErrorCode) -> Evaluation<'static> {
        Evaluation {
            value: None,
            variant: None,
            reason: Reason::Error,
            error: Some(code),
            rule_index: None,
            track: false,
        }
    }
}

/// A typed flag result: the value (or the caller's default) with its variant and reason.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Details<'e, T> {
    /// The flag's value, or the caller's default.
    pub value: T,
    /// The variant served, when the flag's value is used.
    pub variant: Option<&'e str>,
    /// Why.
    pub reason: Reason,
    /// What went wrong, with [`Reason::Error`].
    pub error: Option<ErrorCode>,
    /// The index of the rule that matched, if one did.
    pub rule_index: Option<usize>,
}

/// A config resolved for a context.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedConfig<'e> {
    /// `config_data` with every matching override deep-merged over it.
    pub value: Cow<'e, Json>,
    /// The indexes of the overrides that matched, in priority order.
    pub matched_overrides: Vec<usize>,
}

/// Why an experiment assigned what it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssignmentReason {
    /// Enrolled by the hash.
    Assigned,
    /// No experiment of that name.
    NotFound,
    /// The experiment is not active.
    Inactive,
    /// The user does not match the experiment's targeting.
    TargetingMismatch,
    /// The user falls outside the experiment's range of its layer.
    OutsideLayer,
    /// The user is eligible but outside the allocation.
    NotAllocated,
    /// The context has no targeting key (or `bucket_by` attribute) to hash.
    TargetingKeyMissing,
}

impl AssignmentReason {
    /// The reason in upper snake case (`NOT_ALLOCATED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentReason::Assigned => "ASSIGNED",
            AssignmentReason::NotFound => "EXPERIMENT_NOT_FOUND",
            AssignmentReason::Inactive => "INACTIVE",
            AssignmentReason::TargetingMismatch => "TARGETING_MISMATCH",
            AssignmentReason::OutsideLayer => "OUTSIDE_LAYER",
            AssignmentReason::NotAllocated => "NOT_ALLOCATED",
            AssignmentReason::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        }
    }
}

impl fmt::Display for AssignmentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An experiment's answer for one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment<'e> {
    /// The variant to show; the control variant when not in the experiment.
    pub variant: &'e str,
    /// Whether the user is enrolled (only enrolled users are exposures).
    pub in_experiment: bool,
    /// Why.
    pub reason: AssignmentReason,
}

pub(crate) struct CVariant {
    pub(crate) name: Box<str>,
    pub(crate) value: FlagValue,
}

pub(crate) enum CServe {
    Variant(u32),
    Split {
        layout: Layout,
        /// Flag variant index per layout slot.
        variants: Box<[u32]>,
        bucket_by: Option<Box<str>>,
    },
}

pub(crate) struct CPrereq {
    pub(crate) flag: u32,
    pub(crate) variants: Box<[u32]>,
}

pub(crate) struct CFlag {
    pub(crate) name: Box<str>,
    pub(crate) kind: FlagKind,
    pub(crate) enabled: bool,
    pub(crate) track: bool,
    pub(crate) variants: Box<[CVariant]>,
    pub(crate) off: Option<u32>,
    pub(crate) prereqs: Box<[CPrereq]>,
    pub(crate) rules: Box<[(Node, CServe)]>,
    pub(crate) targeting: Node,
    pub(crate) has_targeting: bool,
    pub(crate) rollout_bp: u32,
    pub(crate) default: CServe,
    pub(crate) seed: u64,
    pub(crate) bucket_by: Option<Box<str>>,
}

impl CFlag {
    pub(crate) fn variant_index(&self, name: &str) -> Option<u32> {
        self.variants
            .iter()
            .position(|v| &*v.name == name)
            .map(|i| i as u32)
    }
}

pub(crate) struct COverride {
    pub(crate) node: Node,
    pub(crate) data: Json,
}

pub(crate) struct CConfig {
    pub(crate) name: Box<str>,
    pub(crate) active: bool,
    pub(crate) data: Json,
    pub(crate) overrides: Box<[COverride]>,
}

pub(crate) struct CLayer {
    pub(crate) name: Box<str>,
    pub(crate) seed: u64,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

pub(crate) struct CExperiment {
    pub(crate) name: Box<str>,
    pub(crate) active: bool,
    pub(crate) variants: Box<[Box<str>]>,
    pub(crate) control: u32,
    pub(crate) targeting: Node,
    pub(crate) layout: Layout,
    pub(crate) seed: u64,
    pub(crate) bucket_by: Option<Box<str>>,
    pub(crate) layer: Option<CLayer>,
}

/// An evaluation before variant indexes are turned into names.
#[derive(Clone, Copy)]
struct Outcome {
    variant: Option<u32>,
    reason: Reason,
    error: Option<ErrorCode>,
    rule: Option<usize>,
}

impl Outcome {
    fn served(variant: u32, reason: Reason, rule: Option<usize>) -> Outcome {
        Outcome {
            variant: Some(variant),
            reason,
            error: None,
            rule,
        }
    }
    fn off(flag: &CFlag, reason: Reason) -> Outcome {
        Outcome {
            variant: flag.off,
            reason,
            error: None,
            rule: None,
        }
    }
    fn error(code: ErrorCode, rule: Option<usize>) -> Outcome {
        Outcome {
            variant: None,
            reason: Reason::Error,
            error: Some(code),
            rule,
        }
    }
}

/// The identifier a percentage hashes: the targeting key, or the `bucket_by` attribute (a
/// string, or an integral number written in decimal).
#[inline]
fn unit<'c>(
    ctx: &'c Context,
    bucket_by: Option<&str>,
    buf: &'c mut itoa::Buffer,
) -> Option<&'c str> {
    let Some(attr) = bucket_by else {
        return ctx.key();
    };
    match ctx.attr(attr)? {
        Attr::Key(k) => Some(k),
        Attr::Value(Value::String(s)) => Some(s),
        Attr::Value(Value::Number(n)) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
            Some(buf.format(*n as i64))
        }
        Attr::Value(_) => None,
    }
}

impl Engine {
    /// The environment this engine's ruleset belongs to.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The ruleset's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The names of all flags, in ruleset order.
    pub fn flag_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.flags.iter().map(|f| &*f.name)
    }

    /// The names of all configs, in ruleset order.
    pub fn config_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.configs.iter().map(|c| &*c.name)
    }

    /// The names of all segments, in ruleset order.
    pub fn segment_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.segment_names.iter().map(|s| &**s)
    }

    /// The names of all experiments, in ruleset order.
    pub fn experiment_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.experiments.iter().map(|e| &*e.name)
    }

    /// The kind of a flag, if it exists.
    pub fn flag_kind(&self, flag: &str) -> Option<FlagKind> {
        self.flag(flag).map(|f| f.kind)
    }

    #[inline]
    fn flag(&self, name: &str) -> Option<&CFlag> {
        self.flag_index.get(name).map(|&i| &self.flags[i as usize])
    }

    /// Evaluates a flag: value, variant, reason and the rule that matched.
    ///
    /// ```
    /// use optifork_core::{Context, Engine, Reason};
    /// let engine = Engine::from_json(r#"{"flags": [{"name": "beta", "is_enabled": true,
    ///     "rules": [{"condition": {"tier": "premium"}, "serve": {"variant": "on"}}],
    ///     "default": {"variant": "off"}}]}"#).unwrap();
    /// let e = engine.evaluate("beta", &Context::new("u1").with("tier", "premium"));
    /// assert_eq!((e.variant, e.reason, e.rule_index), (Some("on"), Reason::TargetingMatch, Some(0)));
    /// ```
    pub fn evaluate(&self, flag: &str, ctx: &Context) -> Evaluation<'_> {
        match self.flag_index.get(flag) {
            Some(&i) => self.evaluation(i, ctx),
            None => Evaluation::error(ErrorCode::FlagNotFound),
        }
    }

    /// Evaluates every flag (for bulk APIs), in ruleset order.
    pub fn evaluate_all<'e>(
        &'e self,
        ctx: &'e Context,
    ) -> impl Iterator<Item = (&'e str, Evaluation<'e>)> + 'e {
        (0..self.flags.len() as u32)
            .map(move |i| (&*self.flags[i as usize].name, self.evaluation(i, ctx)))
    }

    fn evaluation(&self, index: u32, ctx: &Context) -> Evaluation<'_> {
        let f = &self.flags[index as usize];
        let o = self.eval_flag(f, ctx);
        let v = o.variant.map(|v| &f.variants[v as usize]);
        Evaluation {
            value: v.map(|v| &v.value),
            variant: v.map(|v| &*v.name),
            reason: o.reason,
            error: o.error,
            rule_index: o.rule,
            track: f.track,
        }
    }

    fn eval_flag(&self, f: &CFlag, ctx: &Context) -> Outcome {
        if !f.enabled {
            return Outcome::off(f, Reason::Disabled);
        }
        for p in &f.prereqs {
            let pre = self.eval_flag(&self.flags[p.flag as usize], ctx);
            let on = !matches!(
                pre.reason,
                Reason::Disabled | Reason::PrerequisiteFailed | Reason::Error
            );
            if !on || !pre.variant.is_some_and(|v| p.variants.contains(&v)) {
                return Outcome::off(f, Reason::PrerequisiteFailed);
            }
        }
        for (i, (node, serve)) in f.rules.iter().enumerate() {
            if node.matches_ctx(ctx, &self.segments) {
                return self.serve(f, serve, ctx, Reason::TargetingMatch, Some(i));
            }
        }
        if f.has_targeting && !f.targeting.matches_ctx(ctx, &self.segments) {
            return Outcome::off(f, Reason::Default);
        }
        let mut reason = if f.has_targeting {
            Reason::TargetingMatch
        } else if f.rules.is_empty() {
            Reason::Static
        } else {
            Reason::Default
        };
        if f.rollout_bp < BUCKETS {
            if f.rollout_bp == 0 {
                return Outcome::off(f, Reason::Default);
            }
            let mut buf = itoa::Buffer::new();
            let Some(id) = unit(ctx, f.bucket_by.as_deref(), &mut buf) else {
                return Outcome::error(ErrorCode::TargetingKeyMissing, None);
            };
            if bucket_with_seed(f.seed, id) >= f.rollout_bp {
                return Outcome::off(f, Reason::Split);
            }
            reason = Reason::Split;
        }
        self.serve(f, &f.default, ctx, reason, None)
    }

    #[inline]
    fn serve(
        &self,
        f: &CFlag,
        serve: &CServe,
        ctx: &Context,
        reason: Reason,
        rule: Option<usize>,
    ) -> Outcome {
        match serve {
            CServe::Variant(v) => Outcome::served(*v, reason, rule),
            CServe::Split {
                layout,
                variants,
                bucket_by,
            } => {
                let mut buf = itoa::Buffer::new();
                let by = bucket_by.as_deref().or(f.bucket_by.as_deref());
                let Some(id) = unit(ctx, by, &mut buf) else {
                    return Outcome::error(ErrorCode::TargetingKeyMissing, rule);
                };
                match layout.variant(bucket_with_seed(f.seed, id)) {
                    Some(slot) => Outcome::served(variants[slot], Reason::Split, rule),
                    // Unreachable: a flag's rollout tiles the whole bucket space.
                    None => Outcome::off(f, Reason::Default),
                }
            }
        }
    }

    /// Whether a flag serves `true`. Anything else (an unknown flag, a non-boolean flag, an
    /// error) is `false`.
    #[inline]
    pub fn is_enabled(&self, flag: &str, ctx: &Context) -> bool {
        matches!(self.evaluate(flag, ctx).value, Some(FlagValue::Bool(true)))
    }

    fn typed<'e, T>(
        &'e self,
        flag: &str,
        ctx: &Context,
        default: T,
        extract: impl FnOnce(&'e FlagValue) -> Option<T>,
    ) -> Details<'e, T> {
        let e = self.evaluate(flag, ctx);
        match e.value {
            None => Details {
                value: default,
                variant: None,
                reason: e.reason,
                error: e.error,
                rule_index: e.rule_index,
            },
            Some(v) => match extract(v) {
                Some(value) => Details {
                    value,
                    variant: e.variant,
                    reason: e.reason,
                    error: None,
                    rule_index: e.rule_index,
                },
                None => Details {
                    value: default,
                    variant: None,
                    reason: Reason::Error,
                    error: Some(ErrorCode::TypeMismatch),
                    rule_index: e.rule_index,
                },
            },
        }
    }

    /// A boolean flag's value with details; `default` on error or type mismatch.
    pub fn bool_details(&self, flag: &str, ctx: &Context, default: bool) -> Details<'_, bool> {
        self.typed(flag, ctx, default, |v| match v {
            FlagValue::Bool(b) => Some(*b),
            _ => None,
        })
    }

    /// A boolean flag's value; `default` on error or type mismatch.
    pub fn bool_value(&self, flag: &str, ctx: &Context, default: bool) -> bool {
        self.bool_details(flag, ctx, default).value
    }

    /// A string flag's value with details; `default` on error or type mismatch.
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

    /// A string flag's value; `default` on error or type mismatch.
    pub fn string_value<'e>(&'e self, flag: &str, ctx: &Context, default: &'e str) -> &'e str {
        self.string_details(flag, ctx, default).value
    }

    /// A number flag's value with details; `default` on error or type mismatch.
    pub fn number_details(&self, flag: &str, ctx: &Context, default: f64) -> Details<'_, f64> {
        self.typed(flag, ctx, default, |v| match v {
            FlagValue::Number(n) => Some(*n),
            _ => None,
        })
    }

    /// A number flag's value; `default` on error or type mismatch.
    pub fn number_value(&self, flag: &str, ctx: &Context, default: f64) -> f64 {
        self.number_details(flag, ctx, default).value
    }

    /// A number flag's value as an integer with details: a non-integral value (or one outside
    /// `i64`) is a type mismatch.
    pub fn int_details(&self, flag: &str, ctx: &Context, default: i64) -> Details<'_, i64> {
        self.typed(flag, ctx, default, |v| match v {
            FlagValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Some(*n as i64),
            _ => None,
        })
    }

    /// A number flag's value as an integer; `default` on error or type mismatch.
    pub fn int_value(&self, flag: &str, ctx: &Context, default: i64) -> i64 {
        self.int_details(flag, ctx, default).value
    }

    /// A JSON flag's value with details; `default` on error or type mismatch.
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

    /// A JSON flag's value; `default` on error or type mismatch.
    pub fn json_value<'e>(&'e self, flag: &str, ctx: &Context, default: &'e Json) -> &'e Json {
        self.json_details(flag, ctx, default).value
    }

    /// Resolves a config for a context: `config_data` with every matching override
    /// deep-merged over it, the first override winning where several disagree. `None` for an
    /// unknown or inactive config. Borrows when no override matches.
    pub fn config(&self, name: &str, ctx: &Context) -> Option<ResolvedConfig<'_>> {
        let c = &self.configs[*self.config_index.get(name)? as usize];
        if !c.active {
            return None;
        }
        let matched: Vec<usize> = c
            .overrides
            .iter()
            .enumerate()
            .filter(|(_, o)| o.node.matches_ctx(ctx, &self.segments))
            .map(|(i, _)| i)
            .collect();
        if matched.is_empty() {
            return Some(ResolvedConfig {
                value: Cow::Borrowed(&c.data),
                matched_overrides: matched,
            });
        }
        let mut value = c.data.clone();
        for &i in matched.iter().rev() {
            deep_merge(&mut value, &c.overrides[i].data);
        }
        Some(ResolvedConfig {
            value: Cow::Owned(value),
            matched_overrides: matched,
        })
    }

    /// The names of the active segments the context belongs to, in ruleset order.
    pub fn segments<'e>(&'e self, ctx: &'e Context) -> impl Iterator<Item = &'e str> + 'e {
        self.segments
            .iter()
            .zip(self.segment_names.iter())
            .filter(move |(s, _)| s.active && s.node.matches_ctx(ctx, &self.segments))
            .map(|(_, name)| &**name)
    }

    /// Whether the context is in a segment; `None` when there is no such segment.
    pub fn in_segment(&self, name: &str, ctx: &Context) -> Option<bool> {
        let s = &self.segments[*self.segment_index.get(name)? as usize];
        Some(s.active && s.node.matches_ctx(ctx, &self.segments))
    }

    /// Assigns a user to an experiment's variant.
    ///
    /// Users who are not enrolled (inactive experiment, targeting not matched, outside the
    /// layer or the allocation, no key) get the control variant and `in_experiment: false`.
    pub fn assign(&self, experiment: &str, ctx: &Context) -> Assignment<'_> {
        let Some(&i) = self.experiment_index.get(experiment) else {
            return Assignment {
                variant: "control",
                in_experiment: false,
                reason: AssignmentReason::NotFound,
            };
        };
        let e = &self.experiments[i as usize];
        let out = |reason| Assignment {
            variant: &e.variants[e.control as usize],
            in_experiment: false,
            reason,
        };
        if !e.active {
            return out(AssignmentReason::Inactive);
        }
        if !e.targeting.matches_ctx(ctx, &self.segments) {
            return out(AssignmentReason::TargetingMismatch);
        }
        let mut buf = itoa::Buffer::new();
        let Some(id) = unit(ctx, e.bucket_by.as_deref(), &mut buf) else {
            return out(AssignmentReason::TargetingKeyMissing);
        };
        if let Some(layer) = &e.layer {
            let b = bucket_with_seed(layer.seed, id);
            if b < layer.start || b >= layer.end {
                return out(AssignmentReason::OutsideLayer);
            }
        }
        match e.layout.variant(bucket_with_seed(e.seed, id)) {
            Some(v) => Assignment {
                variant: &e.variants[v],
                in_experiment: true,
                reason: AssignmentReason::Assigned,
            },
            None => out(AssignmentReason::NotAllocated),
        }
    }

    /// Compiles a condition against this ruleset's segments, so that `$segment` resolves.
    pub fn compile_condition(&self, json: &Json) -> Result<Condition, CompileError> {
        let node = compile_condition(
            json,
            &JsonPath::root(),
            &Resolver::with_segments(&self.segment_index),
        )?;
        Ok(Condition::with_segments(node, Arc::clone(&self.segments)))
    }
}

/// Merges `over` into `base`: objects merge key by key, recursively; anything else replaces.
pub fn deep_merge(base: &mut Json, over: &Json) {
    match (base, over) {
        (Json::Object(b), Json::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}
