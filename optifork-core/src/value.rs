//! Attribute values and evaluation contexts.
//!
//! A [`Context`] is who is asking: an optional targeting key (the user id) plus a small list of
//! attributes. Contexts are built per request, so they are cheap: attributes live in a `Vec`
//! (linear lookup beats hashing for the handful of attributes a context carries) and strings of
//! up to 24 bytes are stored inline without a heap allocation.

use std::fmt;

use compact_str::CompactString;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON-like attribute value.
///
/// Numbers are `f64`, so `18` and `18.0` are the same value. Objects keep their entries in
/// insertion order in a `Vec`; lookups are linear, which is the fast choice for the small
/// objects contexts carry.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// JSON `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Any JSON number, as `f64`.
    Number(f64),
    /// A string (inline up to 24 bytes).
    String(CompactString),
    /// An array.
    Array(Vec<Value>),
    /// An object, as ordered `(key, value)` entries.
    Object(Vec<(CompactString, Value)>),
}

impl Value {
    /// The value at `key` when this is an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => lookup(entries, key),
            _ => None,
        }
    }

    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, when this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, when this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The name of this value's type, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

/// Deep equality with MongoDB's value semantics: numbers compare by value (`18 == 18.0`),
/// arrays element by element. Objects compare as sets of entries, ignoring key order (MongoDB
/// compares embedded documents in field order; see the crate docs' list of divergences).
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| lookup(b, k) == Some(v))
            }
            _ => false,
        }
    }
}

pub(crate) fn lookup<'a>(entries: &'a [(CompactString, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

macro_rules! from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Number(n as f64)
            }
        }
    )*};
}
from_number!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, usize, isize);

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(CompactString::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(CompactString::from(s))
    }
}

impl From<CompactString> for Value {
    fn from(s: CompactString) -> Value {
        Value::String(s)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Value {
        Value::from(&v)
    }
}

impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(CompactString::from(s.as_str())),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (CompactString::from(k.as_str()), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<&Value> for serde_json::Value {
    fn from(v: &Value) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Into::into).collect()),
            Value::Object(o) => serde_json::Value::Object(
                o.iter().map(|(k, v)| (k.to_string(), v.into())).collect(),
            ),
        }
    }
}

/// An integral `f64` that fits an `i64` becomes a JSON integer, anything else a JSON float
/// (non-finite numbers, which JSON cannot carry, become `null`).
pub(crate) fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
                s.serialize_i64(*n as i64)
            }
            Value::Number(n) => s.serialize_f64(*n),
            Value::String(v) => s.serialize_str(v),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for item in a {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k.as_str(), v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(CompactString::from(s)))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(CompactString::from(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(CompactString, Value)> =
            Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<CompactString>()? {
            let value: Value = map.next_value()?;
            // Like serde_json's own map, a repeated key keeps the last value.
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Value::Object(entries))
    }
}

/// Who a flag is evaluated for: a targeting key (the user id) plus attributes.
///
/// ```
/// use optifork_core::Context;
/// let ctx = Context::new("user-123").with("country", "US").with("age", 30);
/// assert_eq!(ctx.key(), Some("user-123"));
/// assert_eq!(ctx.get("age").and_then(|v| v.as_f64()), Some(30.0));
/// ```
///
/// Conditions read attributes by name (`country`) or dot path (`address.city`). The attribute
/// name `targetingKey` (OpenFeature's) resolves to the key when no attribute of that name was
/// set. Percentage rollouts hash the key unless a flag or experiment names another
/// `bucket_by` attribute.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    key: Option<CompactString>,
    attrs: Vec<(CompactString, Value)>,
}

impl Context {
    /// A context for the user or unit identified by `key`.
    pub fn new(key: impl Into<CompactString>) -> Context {
        Context {
            key: Some(key.into()),
            attrs: Vec::new(),
        }
    }

    /// A context with no targeting key (percentage rollouts cannot place it).
    pub fn anonymous() -> Context {
        Context::default()
    }

    /// Builder form of [`Context::set`].
    #[must_use]
    pub fn with(mut self, name: impl Into<CompactString>, value: impl Into<Value>) -> Context {
        self.set(name, value);
        self
    }

    /// Sets an attribute, replacing any earlier value of the same name.
    pub fn set(&mut self, name: impl Into<CompactString>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    /// Sets (or clears) the targeting key.
    pub fn set_key(&mut self, key: Option<impl Into<CompactString>>) {
        self.key = key.map(Into::into);
    }

    /// The targeting key, if any.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The attribute called `name` (not a dot path).
    pub fn get(&self, name: &str) -> Option<&Value> {
        lookup(&self.attrs, name)
    }

    /// All attributes, in the order they were set.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.attrs.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Builds a context from a JSON object of attributes. The targeting key is taken from
    /// `targetingKey` (OpenFeature) or else `user_id` (the seed API) when it is a string or an
    /// integer; every entry, those two included, stays an attribute.
    ///
    /// Anything but an object gives an empty context.
    pub fn from_json(attributes: &serde_json::Value) -> Context {
        match Value::from(attributes) {
            Value::Object(attrs) => Context::from_attributes(attrs),
            _ => Context::default(),
        }
    }

    /// Builds a context from attribute entries, taking the key as [`Context::from_json`] does.
    pub fn from_attributes(attrs: Vec<(CompactString, Value)>) -> Context {
        let key = ["targetingKey", "user_id"]
            .iter()
            .find_map(|name| lookup(&attrs, name).and_then(unit_id));
        Context { key, attrs }
    }

    /// Resolves a top-level attribute for condition matching (with the `targetingKey`
    /// fallback).
    pub(crate) fn attr(&self, name: &str) -> Option<Attr<'_>> {
        match lookup(&self.attrs, name) {
            Some(v) => Some(Attr::Value(v)),
            None if name == "targetingKey" => self.key.as_deref().map(Attr::Key),
            None => None,
        }
    }
}

/// A top-level attribute as conditions see it: either a stored value or the targeting key.
#[derive(Clone, Copy)]
pub(crate) enum Attr<'a> {
    Value(&'a Value),
    Key(&'a str),
}

/// The identifier of a value when used as a bucketing unit: a string as is, an integral
/// number in decimal (`123`, never `123.0`); anything else is not an identifier.
pub(crate) fn unit_id(v: &Value) -> Option<CompactString> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
            Some(CompactString::from(itoa::Buffer::new().format(*n as i64)))
        }
        _ => None,
    }
}

impl<'de> Deserialize<'de> for Context {
    /// A context deserializes from a JSON object of attributes, as [`Context::from_json`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Context, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(attrs) => Ok(Context::from_attributes(attrs)),
            other => Err(de::Error::invalid_type(
                de::Unexpected::Other(other.type_name()),
                &"an object of attributes",
            )),
        }
    }
}

impl Serialize for Context {
    /// Serializes the attributes as an object, adding `targetingKey` when the key would not
    /// otherwise be recovered from the attributes.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let derived = ["targetingKey", "user_id"]
            .iter()
            .find_map(|name| lookup(&self.attrs, name).and_then(unit_id));
        let add_key = self.key.is_some()
            && lookup(&self.attrs, "targetingKey").is_none()
            && derived != self.key;
        let mut map = s.serialize_map(Some(self.attrs.len() + usize::from(add_key)))?;
        if add_key {
            map.serialize_entry("targetingKey", self.key.as_deref().unwrap_or_default())?;
        }
        for (k, v) in &self.attrs {
            map.serialize_entry(k.as_str(), v)?;
        }
        map.end()
    }
}
