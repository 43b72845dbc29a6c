//! OptiFork's evaluation core: the ruleset model, the condition language, stable bucketing and
//! the evaluation of flags, remote configs, segments and experiments.
//!
//! This crate is pure: no I/O, no async, no global state. The SDK, the server and the language
//! bindings all evaluate through it, so its semantics are OptiFork's contract.
//!
//! ```
//! use optifork_core::{Context, Engine};
//!
//! let engine = Engine::from_json(r#"{
//!   "environment": "production", "version": 7,
//!   "segments": [{"name": "premium_users", "criteria": {"tier": "premium"}}],
//!   "flags": [{
//!     "name": "new_checkout", "is_enabled": true, "rollout_percentage": 100,
//!     "targeting_rules": {"$or": [{"$segment": "premium_users"}, {"country": {"$in": ["US", "CA"]}}]}
//!   }]
//! }"#)?;
//! let ctx = Context::new("user-123").with("country", "US");
//! assert!(engine.is_enabled("new_checkout", &ctx));
//! # Ok::<(), optifork_core::CompileError>(())
//! ```
//!
//! # The pieces
//!
//! * [`model`]: the wire form ([`Ruleset`], [`Flag`], [`Config`], [`Segment`], [`Experiment`]),
//!   serde types with the seed API's field names.
//! * [`Engine::compile`]: checks a ruleset and turns it into an immutable [`Engine`]
//!   (regexes compiled, `$in` lists as sets, names resolved to indexes, hashing seeds
//!   precomputed). Anything that could not be evaluated is a [`CompileError`] carrying the
//!   [`JsonPath`] of the culprit.
//! * [`Engine`]: evaluates. Results borrow from the engine; evaluating a boolean or string
//!   flag allocates nothing.
//! * [`Condition`]: a condition compiled on its own (for UIs and tools).
//! * [`bucket()`]: the stable hash. Specified in `docs/bucketing.md`, pinned by golden vectors.
//!
//! # Flags
//!
//! A flag evaluates in this order, and the first step that decides wins:
//!
//! 1. `is_enabled: false` → the off variant, reason `DISABLED`.
//! 2. A prerequisite flag is off or does not serve one of the required variants → the off
//!    variant, reason `PREREQUISITE_FAILED`.
//! 3. `rules`, in order: the first whose condition matches serves its variant (reason
//!    `TARGETING_MATCH`) or its weighted rollout (reason `SPLIT`), with its `rule_index`.
//! 4. The fallthrough, which is the seed's whole flag: a user who does not match
//!    `targeting_rules` gets the off variant (`DEFAULT`); a user whose bucket is not below
//!    `rollout_percentage` gets the off variant (`SPLIT`); everyone else gets `default` (reason
//!    `SPLIT` when a percentage placed them, `TARGETING_MATCH` when `targeting_rules` matched,
//!    `DEFAULT` when rules exist and none matched, `STATIC` when the flag has no rules,
//!    targeting or percentage at all).
//!
//! A boolean flag without variants has `on` (`true`) and `off` (`false`); `default` is `on`
//! unless set, and the off variant is `off` unless `off_variant` names another. A flag
//! without an off variant serves nothing when off, and typed getters return the caller's
//! default. A percentage that needs the targeting key when the context has none gives reason
//! `ERROR` with `TARGETING_KEY_MISSING`.
//!
//! # Conditions
//!
//! Conditions are JSON in MongoDB's query style. `{"tier": "premium"}` is one; so is
//! `{"country": {"$in": ["US", "CA"]}, "age": {"$gte": 18}}`. Several fields in one object, or
//! several operators on one field, must all hold. `null` and `{}` match everyone.
//!
//! | operator | meaning |
//! |---|---|
//! | `{"f": v}`, `$eq` | equal (an array field: any element equal, or the whole array equal) |
//! | `$ne` | not `$eq` (a missing field matches) |
//! | `$gt $gte $lt $lte` | order within one type: numbers, strings (by UTF-8 bytes), booleans |
//! | `$in`, `$nin` | equal to one of / none of a list |
//! | `$exists` | the field is present (even if `null`) / absent |
//! | `$regex` with optional `$options` (`i` case-insensitive, `m`, `s`, `x`) | string matches |
//! | `$all` | array contains every listed value |
//! | `$size` | array has exactly n elements |
//! | `$elemMatch` | some element satisfies: operators (`{"$gte": 80}`) or a document condition |
//! | `$not` on a field | the field's operators do not all hold (a missing field matches) |
//! | `$and $or $nor` | over a non-empty array of conditions |
//! | `$not` at top level | the condition does not hold |
//! | `$vgt $vgte $vlt $vlte $veq $vne` | semantic-version order (SemVer 2.0 precedence) |
//! | `{"$segment": "name"}` | the context is in that (active) segment |
//!
//! Attribute names may be dot paths into objects (`address.city`); a numeric part also indexes
//! arrays (`items.0.sku`); a path that crosses an array reaches every element's field. As in
//! MongoDB, a positive test holds when any reached value (or any element of a reached array)
//! satisfies it, and `$ne`, `$nin`, `$not` and `$vne` are the negation of the positive test,
//! so they match a missing attribute. A type mismatch is simply no match, and `18` equals
//! `18.0`. The attribute `targetingKey` reads the context's key unless set explicitly.
//!
//! ## Where OptiFork differs from MongoDB
//!
//! * Top-level `$not` (MongoDB only has `$not` on a field) and `$segment` are OptiFork's.
//! * The semver operators are OptiFork's. Versions parse leniently: a leading `v` is dropped
//!   and missing minor/patch numbers are zero (`2.3` is `2.3.0`); build metadata is ignored;
//!   an attribute that does not parse as a version matches nothing (but `$vne` matches it, as
//!   the negation of `$veq`).
//! * `$regex` uses Rust's `regex` syntax, which has no look-around or backreferences (such
//!   patterns are refused when the rule is saved); matching is linear-time. `$options`
//!   accepts `i m s x`. `$regex` must be a string: there are no regex literals in JSON.
//! * `$gt`/`$gte`/`$lt`/`$lte` with an array or object operand are refused, and ordering
//!   never crosses types (MongoDB orders across BSON types for sorting; its query operators
//!   also only match within a type bracket, so results agree for scalars).
//! * `$in` lists cannot contain regular expressions.
//! * Objects compare equal regardless of key order (MongoDB compares embedded documents field
//!   by field, in order).
//! * All numbers are 64-bit floats: integers beyond 2^53 lose precision.
//! * A path through an array of documents is missing only when no element has the field
//!   (MongoDB also treats `{"a.b": null}` as matching when some element lacks `b`).
//! * `$exists` takes only `true`/`false`, and `$size` only a non-negative integer.
//! * An object mixing operators and plain fields (`{"$gt": 1, "x": 2}`) is refused.
//! * `$where`, `$expr`, `$type`, `$mod`, `$text` and geo operators do not exist: they are
//!   refused as unknown operators when the rule is saved.
//!
//! ## Limits
//!
//! Conditions may nest [`MAX_DEPTH`] levels; prerequisite and segment-reference chains may be
//! [`MAX_CHAIN`] long; a regex may compile to at most 1 MiB. Deeper or longer ones are
//! refused at compile time, so evaluation can never exhaust the stack.
//!
//! # Bucketing
//!
//! `bucket = XXH64(utf8(unit), seed = XXH64(utf8(salt), 0)) mod 10000`, where the salt is the
//! flag's or experiment's `salt` (default: its name) and the unit is the targeting key or the
//! `bucket_by` attribute (a string, or an integral number in decimal). A percentage `p` holds
//! buckets `[0, p × 100)`, so raising it never removes anyone. Rollouts lay variants out in
//! their listed order; experiments scale each variant's range by the allocation from its
//! start, so raising the allocation only adds users, each to the variant they would have had
//! at 100%. Moving weight between two adjacent variants moves only the users between them.
//!
//! # Experiments
//!
//! Inactive experiments, users outside the targeting, outside the layer's range or outside
//! the allocation get the control variant (default `control`, which must exist) and are not
//! in the experiment. Running experiments of one layer must claim disjoint ranges; the layer
//! hash uses the layer's name as salt, independent of each experiment's own salt.
//!
//! # Configs
//!
//! A config resolves to `config_data` with each matching override deep-merged over it
//! (objects merge key by key; anything else replaces). Overrides are in priority order: the
//! first matching one wins where several set the same key. Inactive configs resolve to
//! nothing.
//!
//! # Forward compatibility
//!
//! Unknown fields in a ruleset are ignored, so that an older SDK can read a newer server's
//! ruleset. Unknown operators are not: a condition the SDK cannot evaluate is refused (and
//! the SDK keeps its last good ruleset).

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub mod bucket;
mod compile;
mod condition;
mod engine;
mod error;
pub mod model;
mod value;

pub use bucket::{BUCKETS, bucket};
pub use compile::{MAX_CHAIN, from_json_str, from_json_value};
pub use condition::{Condition, MAX_DEPTH};
pub use engine::{
    Assignment, AssignmentReason, Details, Engine, ErrorCode, Evaluation, FlagValue, Reason,
    ResolvedConfig, deep_merge,
};
pub use error::{CompileError, ErrorKind, JsonPath, PathSegment};
pub use model::{
    Config, ConfigOverride, Experiment, ExperimentVariant, Flag, FlagKind, LayerRange,
    Prerequisite, Rule, Ruleset, Segment, Serve, Variant, WeightedVariant,
};
pub use value::{Context, Value};
