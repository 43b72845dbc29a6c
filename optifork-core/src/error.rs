//! Compile errors: everything that makes a ruleset impossible to evaluate, with the JSON path
//! of the culprit.

use std::fmt;

/// One step of a [`JsonPath`]: an object key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Where in a JSON document something is, from the document's root.
///
/// Displayed in JSONPath's normalized style: `$.flags[2].rules[0].condition.country["$in"]`
/// (member names that are not plain identifiers are bracketed and quoted). [`JsonPath::pointer`]
/// gives the same location as an RFC 6901 JSON Pointer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonPath(Vec<PathSegment>);

impl JsonPath {
    /// The root (`$`).
    pub fn root() -> JsonPath {
        JsonPath(Vec::new())
    }

    /// This path extended by an object key.
    #[must_use]
    pub fn key(&self, key: &str) -> JsonPath {
        let mut p = self.clone();
        p.0.push(PathSegment::Key(key.to_owned()));
        p
    }

    /// This path extended by an array index.
    #[must_use]
    pub fn index(&self, index: usize) -> JsonPath {
        let mut p = self.clone();
        p.0.push(PathSegment::Index(index));
        p
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// The path with its first `n` segments removed: a ruleset-level path such as
    /// `$.flags[3].rules[0]` becomes the entity-level `$.rules[0]` with `n = 2`.
    #[must_use]
    pub fn strip_prefix(&self, n: usize) -> JsonPath {
        JsonPath(self.0.iter().skip(n).cloned().collect())
    }

    /// The path as an RFC 6901 JSON Pointer (`/flags/2/rules/0`).
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            out.push('/');
            match seg {
                PathSegment::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
                PathSegment::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }
}

impl From<&serde_path_to_error::Path> for JsonPath {
    fn from(path: &serde_path_to_error::Path) -> JsonPath {
        use serde_path_to_error::Segment;
        JsonPath(
            path.iter()
                .filter_map(|seg| match seg {
                    Segment::Seq { index } => Some(PathSegment::Index(*index)),
                    Segment::Map { key } => Some(PathSegment::Key(key.clone())),
                    Segment::Enum { variant } => Some(PathSegment::Key(variant.clone())),
                    Segment::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for seg in &self.0 {
            match seg {
                PathSegment::Index(i) => write!(f, "[{i}]")?,
                PathSegment::Key(k) if is_identifier(k) => write!(f, ".{k}")?,
                PathSegment::Key(k) => write!(f, "[{}]", serde_json::Value::from(k.as_str()))?,
            }
        }
        Ok(())
    }
}

fn is_identifier(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A ruleset (or condition) that cannot be evaluated, and where.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct CompileError {
    /// Where the culprit is, from the root of the compiled document.
    pub path: JsonPath,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

impl CompileError {
    pub(crate) fn new(path: &JsonPath, kind: ErrorKind) -> CompileError {
        CompileError {
            path: path.clone(),
            kind,
        }
    }

    /// A short, stable, machine-readable code for the kind of error (`unknown_operator`, ...).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

/// What is wrong, for a [`CompileError`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The document does not have the ruleset's shape (a missing field, a wrong type).
    #[error("{0}")]
    Invalid(String),
    /// An operator this condition language does not have.
    #[error("unknown operator {0:?}")]
    UnknownOperator(String),
    /// An operator whose operand has the wrong shape.
    #[error("{operator} expects {expected}")]
    BadOperand {
        /// The operator, such as `$in`.
        operator: String,
        /// What it expects, such as "an array".
        expected: &'static str,
    },
    /// A `$regex` that does not compile.
    #[error("invalid regular expression: {0}")]
    BadRegex(String),
    /// A semantic version operand that does not parse.
    #[error("invalid semantic version {0:?}")]
    BadSemver(String),
    /// A `$segment` reference to a segment that does not exist.
    #[error("unknown segment {0:?}")]
    UnknownSegment(String),
    /// A reference to a flag that does not exist.
    #[error("unknown flag {0:?}")]
    UnknownFlag(String),
    /// A reference to a variant the flag or experiment does not define.
    #[error("unknown variant {0:?}")]
    UnknownVariant(String),
    /// Segments that refer to each other in a loop.
    #[error("segment reference cycle: {}", .0.join(" -> "))]
    SegmentCycle(Vec<String>),
    /// Flags whose prerequisites form a loop.
    #[error("prerequisite cycle: {}", .0.join(" -> "))]
    PrerequisiteCycle(Vec<String>),
    /// Weights or traffic splits that do not add up to 100%.
    #[error("weights must add up to 100%, these add up to {0}%")]
    WeightsSum(f64),
    /// A percentage outside 0–100 or finer than 0.01%.
    #[error("{0}")]
    BadPercentage(String),
    /// Two entities of one kind with the same name (or two variants of one flag).
    #[error("duplicate name {0:?}")]
    DuplicateName(String),
    /// A variant value whose type is not the flag's kind.
    #[error("variant value is {found}, but the flag's kind is {expected}")]
    VariantType {
        /// The flag's kind.
        expected: &'static str,
        /// The value's type.
        found: &'static str,
    },
    /// An experiment without its control variant.
    #[error("experiment has no control variant {0:?}: add it to variants or set \"control\"")]
    MissingControl(String),
    /// Two running experiments claiming overlapping ranges of one layer.
    #[error("layer range overlaps experiment {0:?} in the same layer")]
    LayerOverlap(String),
}

impl ErrorKind {
    /// A short, stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::Invalid(_) => "invalid",
            ErrorKind::UnknownOperator(_) => "unknown_operator",
            ErrorKind::BadOperand { .. } => "bad_operand",
            ErrorKind::BadRegex(_) => "bad_regex",
            ErrorKind::BadSemver(_) => "bad_semver",
            ErrorKind::UnknownSegment(_) => "unknown_segment",
            ErrorKind::UnknownFlag(_) => "unknown_flag",
            ErrorKind::UnknownVariant(_) => "unknown_variant",
            ErrorKind::SegmentCycle(_) => "segment_cycle",
            ErrorKind::PrerequisiteCycle(_) => "prerequisite_cycle",
            ErrorKind::WeightsSum(_) => "weights_sum",
            ErrorKind::BadPercentage(_) => "bad_percentage",
            ErrorKind::DuplicateName(_) => "duplicate_name",
            ErrorKind::VariantType { .. } => "variant_type",
            ErrorKind::MissingControl(_) => "missing_control",
            ErrorKind::LayerOverlap(_) => "layer_overlap",
        }
    }
}
