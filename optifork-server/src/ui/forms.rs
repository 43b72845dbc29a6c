//! HTML forms: parsing urlencoded bodies (repeated fields in document order), and placing a
//! validation error's JSON path next to the form field it concerns.

use serde_json::{Map, Value as Json};

use crate::web::{ApiError, Request};

/// A urlencoded form, fields in the order the browser sent them (the order of the page).
#[derive(Clone, Debug, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// The form of a POST request (`application/x-www-form-urlencoded`); empty otherwise.
    pub fn parse(req: &Request) -> Form {
        let ctype = req.header("content-type").unwrap_or("");
        if req.method != http::Method::POST
            || !ctype
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        {
            return Form::default();
        }
        let text = String::from_utf8_lossy(&req.body);
        Form {
            fields: crate::web::parse_query(&text).unwrap_or_default(),
        }
    }

    /// A form from pairs (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Form {
        Form {
            fields: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The first value of a field.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a field, or "".
    pub fn get(&self, name: &str) -> String {
        self.first(name).unwrap_or("").to_owned()
    }

    /// Every value of a repeated field, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether a checkbox is checked.
    pub fn checked(&self, name: &str) -> bool {
        self.first(name).is_some_and(|v| v != "false" && v != "0")
    }
}

/// Percent-encodes a string for a URL query or a cookie value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The validation error of a form, placed at the field it concerns.
#[derive(Clone, Debug, Default)]
pub struct FieldErrors {
    /// The form field (its JSON path) the error is shown at, if one fits.
    pub field: Option<String>,
    /// The message shown there.
    pub message: String,
    /// The error's full JSON path, as the API reports it.
    pub path: Option<String>,
    /// Whether there is an error at all.
    pub any: bool,
}

/// Whether `path` is `prefix` or inside it (`$.rules[0]` contains `$.rules[0].condition`,
/// not `$.rules[01]`).
fn within(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

impl FieldErrors {
    /// No error.
    pub fn none() -> FieldErrors {
        FieldErrors::default()
    }

    /// Places an API error among the form's fields (given as JSON paths): at the deepest
    /// field that contains the error's path; else at no field (shown above the form).
    pub fn place(error: &ApiError, fields: &[String]) -> FieldErrors {
        let field = error.field.as_deref().and_then(|path| {
            fields
                .iter()
                .filter(|f| within(path, f))
                .max_by_key(|f| f.len())
                .cloned()
        });
        let message = match (&error.field, &field) {
            (Some(path), Some(f)) if path != f => {
                format!("{} (at {path})", capitalize(&error.message))
            }
            _ => capitalize(&error.message),
        };
        FieldErrors {
            field,
            message,
            path: error.field.clone(),
            any: true,
        }
    }

    /// The message to show at a field, if the error is there.
    pub fn at(&self, field: &str) -> Option<&str> {
        (self.field.as_deref() == Some(field)).then_some(self.message.as_str())
    }

    /// The message to show above the form when no field fits it.
    pub fn general(&self) -> Option<&str> {
        (self.any && self.field.is_none()).then_some(self.message.as_str())
    }

    /// `true` (for `aria-invalid`) when the error is at this field.
    pub fn invalid(&self, field: &str) -> &'static str {
        if self.at(field).is_some() {
            "true"
        } else {
            "false"
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Parses a JSON text area. Empty is `None`; invalid JSON is an error at `field`.
pub fn json_field(text: &str, field: &str) -> Result<Option<Json>, ApiError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("this is not valid JSON: {e}"))
            .with_field(field)
    })
}

/// Parses a JSON text area that must hold an object (a condition, a config value).
pub fn json_object_field(text: &str, field: &str) -> Result<Option<Json>, ApiError> {
    match json_field(text, field)? {
        None => Ok(None),
        Some(v @ Json::Object(_)) => Ok(Some(v)),
        Some(_) => Err(ApiError::bad_request(
            "invalid_body",
            "this must be a JSON object, like {\"country\": \"US\"}",
        )
        .with_field(field)),
    }
}

/// Parses a number field.
pub fn number_field(text: &str, field: &str) -> Result<Option<f64>, ApiError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_number", format!("{t:?} is not a number"))
                .with_field(field)
        })
}

/// A JSON number from an `f64`, as an integer when it is one.
pub fn num(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        #[allow(clippy::cast_possible_truncation)]
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// A comma-separated list, trimmed, empties dropped.
pub fn list_field(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses `a:50, b:50` (a weighted split) into `[{"variant": "a", "weight": 50}, ...]`.
pub fn split_field(text: &str, field: &str) -> Result<Vec<Json>, ApiError> {
    let mut out = Vec::new();
    for part in list_field(text) {
        let (name, weight) = part.rsplit_once(':').ok_or_else(|| {
            ApiError::bad_request(
                "invalid_split",
                format!("write the split as variant:percent, like on:50, off:50 (got {part:?})"),
            )
            .with_field(field)
        })?;
        let w = number_field(weight, field)?.unwrap_or(0.0);
        let mut m = Map::new();
        m.insert("variant".into(), Json::from(name.trim()));
        m.insert("weight".into(), num(w));
        out.push(Json::Object(m));
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_split",
            "a split needs at least one variant:percent",
        )
        .with_field(field));
    }
    Ok(out)
}

/// Pretty JSON for a text area ("" for null or an empty object).
pub fn pretty(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::Object(m) if m.is_empty() => String::new(),
        v => serde_json::to_string_pretty(v).unwrap_or_default(),
    }
}

/// Compact JSON for display.
pub fn compact(v: &Json) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_land_at_the_deepest_enclosing_field() {
        let fields: Vec<String> = [
            "$.name",
            "$.rules",
            "$.rules[0].condition",
            "$.rules[1].condition",
            "$.rules[10].condition",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let err = ApiError::bad_request("unknown_operator", "unknown operator \"$gtx\"")
            .with_field("$.rules[1].condition.age[\"$gtx\"]");
        let placed = FieldErrors::place(&err, &fields);
        assert_eq!(placed.field.as_deref(), Some("$.rules[1].condition"));
        assert!(placed.at("$.rules[1].condition").unwrap().contains("$gtx"));
        assert!(placed.at("$.rules[10].condition").is_none());
        assert!(placed.general().is_none());
        let err = ApiError::bad_request("x", "bad").with_field("$.rules[3].serve");
        assert_eq!(
            FieldErrors::place(&err, &fields).field.as_deref(),
            Some("$.rules")
        );
        let err = ApiError::bad_request("x", "bad").with_field("$.salt");
        let placed = FieldErrors::place(&err, &fields);
        assert_eq!(placed.general(), Some("Bad"));
    }

    #[test]
    fn splits_and_lists_parse() {
        let s = split_field("on: 25, off:75", "$.default").unwrap();
        assert_eq!(s[0]["variant"], "on");
        assert_eq!(s[1]["weight"], 75);
        assert!(split_field("on", "$.default").is_err());
        assert!(split_field("", "$.default").is_err());
        assert_eq!(list_field(" a, ,b "), vec!["a", "b"]);
        assert_eq!(encode("a b/é"), "a%20b/%C3%A9");
    }
}
