//! Evaluation contexts from HTTP requests.
//!
//! The seed's style, `?user_id=123&country=US&age=30`, is convenient but untyped, so query
//! values are read as follows: `true`/`false` become booleans, canonical decimal numbers
//! (`30`, `-2`, `1.5`; not `007`, `+3`, `1e5`) become numbers, everything else stays a string;
//! `user_id` and `targetingKey` always stay strings. For exact types send the context as JSON
//! in the `X-User-Context` header (or in a POST body where the route takes one); query
//! parameters override header attributes of the same name.

use optifork_core::Context;
use serde_json::{Map, Value as Json};

use crate::web::{ApiError, Request};

/// Query parameters that are never context attributes.
pub const RESERVED: &[&str] = &["environment"];

/// Builds the context of an evaluation request.
pub fn from_request(req: &Request) -> Result<Context, ApiError> {
    Ok(Context::from_json(&Json::Object(attributes(req)?)))
}

/// The attributes of an evaluation request, as JSON.
pub fn attributes(req: &Request) -> Result<Map<String, Json>, ApiError> {
    let mut attrs = match req.header("x-user-context") {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(map)) => map,
            Ok(_) => {
                return Err(ApiError::bad_request(
                    "invalid_context",
                    "X-User-Context must be a JSON object of attributes",
                )
                .with_field("X-User-Context"));
            }
            Err(e) => {
                return Err(ApiError::bad_request(
                    "invalid_context",
                    format!("X-User-Context is not valid JSON: {e}"),
                )
                .with_field("X-User-Context"));
            }
        },
    };
    for (name, value) in &req.query {
        if RESERVED.contains(&name.as_str()) {
            continue;
        }
        let typed = if name == "user_id" || name == "targetingKey" {
            Json::String(value.clone())
        } else {
            coerce(value)
        };
        attrs.insert(name.clone(), typed);
    }
    Ok(attrs)
}

/// A query value as a typed JSON value.
pub fn coerce(v: &str) -> Json {
    match v {
        "true" => return Json::Bool(true),
        "false" => return Json::Bool(false),
        _ => {}
    }
    if is_canonical_number(v)
        && let Ok(n) = v.parse::<f64>()
        && let Some(num) = serde_json::Number::from_f64(n)
    {
        return if let Ok(i) = v.parse::<i64>() {
            Json::from(i)
        } else {
            Json::Number(num)
        };
    }
    Json::String(v.to_owned())
}

fn is_canonical_number(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let int_ok = int == "0"
        || (!int.is_empty() && !int.starts_with('0') && int.bytes().all(|b| b.is_ascii_digit()));
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    int_ok && frac_ok && int.len() <= 15
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_values_are_typed_only_when_unambiguous() {
        assert_eq!(coerce("30"), json!(30));
        assert_eq!(coerce("-2"), json!(-2));
        assert_eq!(coerce("1.5"), json!(1.5));
        assert_eq!(coerce("0"), json!(0));
        assert_eq!(coerce("true"), json!(true));
        for s in [
            "007", "+3", "1e5", "1.", ".5", "US", "", "1.2.3", "0x10", "True", "NaN",
        ] {
            assert_eq!(coerce(s), json!(s), "{s}");
        }
    }
}
