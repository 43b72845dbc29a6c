//! The ruleset as it travels: plain serde types using the seed API's field names.
//!
//! These types are the wire and storage form. They are deliberately permissive (conditions are
//! raw JSON, unknown fields are ignored so that an older SDK can read a newer server's
//! ruleset); [`crate::Engine::compile`] is where everything is checked.
//!
//! The seed's simple flag is valid as is:
//!
//! ```
//! let flag: optifork_core::Flag = serde_json::from_str(r#"{
//!     "name": "new_feature", "description": "", "is_enabled": true,
//!     "rollout_percentage": 50, "targeting_rules": {"tier": "premium"}
//! }"#).unwrap();
//! assert_eq!(flag.rollout_percentage, 50.0);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The name every environment gets unless told otherwise.
pub const DEFAULT_ENVIRONMENT: &str = "production";

fn default_environment() -> String {
    DEFAULT_ENVIRONMENT.to_owned()
}
fn hundred() -> f64 {
    100.0
}
fn yes() -> bool {
    true
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_hundred(x: &f64) -> bool {
    *x == 100.0
}
fn is_empty_condition(c: &Json) -> bool {
    c.is_null() || c.as_object().is_some_and(|o| o.is_empty())
}

/// Everything one environment evaluates: flags, configs, segments and experiments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ruleset {
    /// The environment this ruleset belongs to (default `production`).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Increases with every change; SDKs use it as the ETag.
    #[serde(default)]
    pub version: u64,
    /// Feature flags.
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// Remote configs.
    #[serde(default)]
    pub configs: Vec<Config>,
    /// Reusable named conditions.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// A/B experiments.
    #[serde(default)]
    pub experiments: Vec<Experiment>,
}

/// The type of value a flag serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// `true` / `false`.
    Boolean,
    /// A string.
    String,
    /// A number.
    Number,
    /// Any JSON value.
    Json,
}

impl FlagKind {
    /// The kind's name as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::Boolean => "boolean",
            FlagKind::String => "string",
            FlagKind::Number => "number",
            FlagKind::Json => "json",
        }
    }
}

/// A feature flag.
///
/// How it evaluates, in order: off (`is_enabled: false`) serves the off variant; a failed
/// prerequisite serves the off variant; the first of `rules` whose condition matches serves
/// that rule; otherwise the fallthrough: a user who does not match `targeting_rules` or falls
/// outside `rollout_percentage` gets the off variant, everyone else gets `default`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// Unique within the environment.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The kill switch: when false the flag serves its off variant to everyone.
    #[serde(default)]
    pub is_enabled: bool,
    /// The share of fallthrough users (0–100, 0.01% steps) who get `default`; the others get
    /// the off variant. Raising it never removes a user who was in.
    #[serde(default = "hundred", skip_serializing_if = "is_hundred")]
    pub rollout_percentage: f64,
    /// A condition the fallthrough requires (the seed's targeting); empty matches everyone.
    #[serde(default, skip_serializing_if = "is_empty_condition")]
    pub targeting_rules: Json,
    /// The type of the variants' values; inferred from them when absent (boolean when there
    /// are no variants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FlagKind>,
    /// Named values. A boolean flag without variants has `on` (true) and `off` (false).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// Ordered rules; the first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// What fallthrough users get. Default: `on` for boolean flags, else the first variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Serve>,
    /// What the flag serves when off. Default: `off` for boolean flags; for others, nothing
    /// (the caller's default value is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variant: Option<String>,
    /// Flags that must serve given variants for this one to be on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Prerequisite>,
    /// Labels for finding flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The hashing salt for this flag's percentages (default: its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// The attribute percentages hash (default: the targeting key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// Whether SDKs record an exposure each time this flag is evaluated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub track: bool,
}

/// One named value of a flag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Unique within the flag.
    pub name: String,
    /// The value served.
    pub value: Json,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A condition and what to serve when it matches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The condition; empty matches everyone.
    #[serde(default)]
    pub condition: Json,
    /// What a matching user gets.
    pub serve: Serve,
}

/// What to serve: one variant, or a weighted rollout over several.
///
/// Exactly one of `variant` and `rollout` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Serve {
    /// Serve this variant to everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Split users between variants by weight (percentages adding up to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Vec<WeightedVariant>>,
    /// The attribute this rollout hashes (default: the flag's `bucket_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
}

impl Serve {
    /// Serve one variant.
    pub fn variant(name: impl Into<String>) -> Serve {
        Serve {
            variant: Some(name.into()),
            ..Serve::default()
        }
    }
}

/// A variant and its share of a rollout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightedVariant {
    /// The variant's name.
    pub variant: String,
    /// Its share, in percent (0.01% steps).
    pub weight: f64,
}

/// A flag that must serve one of `variants` for the dependent flag to be on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Prerequisite {
    /// The flag required.
    pub flag: String,
    /// The variants that satisfy it; may be omitted for a boolean flag, meaning "serves true".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// A remote config: a JSON object with ordered overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Unique within the environment.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The general value (a JSON object).
    #[serde(default)]
    pub config_data: Json,
    /// The seed's environment column, kept for the API; the ruleset's environment decides
    /// where the config applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Inactive configs resolve to nothing.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Overrides in priority order: the first matching one wins where they disagree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<ConfigOverride>,
}

/// Values that replace parts of a config for the users who match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigOverride {
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The segment a user must be in (shorthand for `{"$segment": name}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// A condition the user must match (both must hold when `segment` is set too).
    #[serde(default, skip_serializing_if = "is_empty_condition")]
    pub condition: Json,
    /// The object deep-merged over the config's value.
    pub config_data: Json,
}

/// A named, reusable condition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Unique within the environment.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The condition a user must match to be in the segment.
    #[serde(default)]
    pub criteria: Json,
    /// Inactive segments match nobody.
    #[serde(default = "yes")]
    pub is_active: bool,
}

/// An A/B experiment.
///
/// Users who match `targeting_rules` (and fall in the layer's range, if any) are bucketed by
/// a stable hash of their id and the experiment's salt; `allocation` is the share of them
/// enrolled. Everyone else gets the control variant and is not in the experiment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Unique within the environment.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The seed's foreign key to the flag under test (informational in the ruleset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_id: Option<i64>,
    /// The name of the flag under test; must exist when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// The arms, control included: names or `{"name", "description"}` objects.
    pub variants: Vec<ExperimentVariant>,
    /// Percent per variant name, adding up to 100; equal shares when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_splits: Option<BTreeMap<String, f64>>,
    /// The condition a user must match to be eligible; empty matches everyone.
    #[serde(default, skip_serializing_if = "is_empty_condition")]
    pub targeting_rules: Json,
    /// Only active experiments enroll anyone.
    #[serde(default)]
    pub is_active: bool,
    /// The share of eligible users enrolled (0–100). Raising it never moves an enrolled user.
    #[serde(default = "hundred", skip_serializing_if = "is_hundred")]
    pub allocation: f64,
    /// The variant non-enrolled users get (default `control`); must be one of `variants`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// A mutually exclusive layer and this experiment's range of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerRange>,
    /// The hashing salt (default: the experiment's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// The attribute hashed (default: the targeting key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
}

/// An experiment arm. Deserializes from a plain name or from an object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "VariantForm")]
pub struct ExperimentVariant {
    /// Unique within the experiment.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl From<&str> for ExperimentVariant {
    fn from(name: &str) -> ExperimentVariant {
        ExperimentVariant {
            name: name.to_owned(),
            description: String::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a variant name or an object with a name")]
enum VariantForm {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        description: String,
    },
}

impl From<VariantForm> for ExperimentVariant {
    fn from(form: VariantForm) -> ExperimentVariant {
        match form {
            VariantForm::Name(name) => ExperimentVariant {
                name,
                description: String::new(),
            },
            VariantForm::Full { name, description } => ExperimentVariant { name, description },
        }
    }
}

/// Membership of a mutually exclusive layer: users are hashed by the layer's name, and only
/// those whose layer bucket falls in `range` (percent, start inclusive, end exclusive) are
/// eligible. Running experiments of one layer must not overlap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerRange {
    /// The layer's name (its salt).
    pub name: String,
    /// `[start, end)` in percent of the layer.
    pub range: [f64; 2],
}
