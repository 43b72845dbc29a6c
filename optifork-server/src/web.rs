//! Requests, responses and errors, independent of any route.
//!
//! Every error leaves the server as JSON: `{"error": {"code", "message", "field"}}`, where
//! `field` is the JSON path of the culprit when there is one.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use optifork_storage::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};
use warp::reply::Response;

/// A request as handlers see it: parsed once, body already read (within the size limit).
#[derive(Debug)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The path, percent-decoded, split on `/` (no empty segments).
    pub segments: Vec<String>,
    /// Query parameters in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Request headers.
    pub headers: HeaderMap,
    /// The peer's address.
    pub remote: Option<SocketAddr>,
    /// The body.
    pub body: Bytes,
}

impl Request {
    /// The first query parameter called `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON of type `T`. Refuses a non-JSON content type (415), an empty or
    /// malformed body (400, with the path of the problem).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let value = self.json_value()?;
        optifork_core::from_json_value(value).map_err(|e| {
            ApiError::bad_request("invalid_body", e.kind.to_string()).with_field(e.path.to_string())
        })
    }

    /// The body as a JSON value, with the same checks as [`Request::json`].
    pub fn json_value(&self) -> Result<Json, ApiError> {
        let ctype = self.header("content-type").unwrap_or("");
        let mime = ctype.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "send the body as application/json (got {})",
                    if mime.is_empty() {
                        "no content type"
                    } else {
                        mime
                    }
                ),
            ));
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "malformed_json",
                "the request body is empty",
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        })
    }

    /// The `limit` query parameter of a paged list: 1 to 1000, default 100.
    pub fn page_limit(&self) -> Result<u32, ApiError> {
        match self.query_param("limit") {
            None => Ok(100),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        "limit must be a whole number from 1 to 1000",
                    )
                    .with_field("limit")
                }),
        }
    }

    /// The `before_id` cursor of a paged list (the last id of the previous page).
    pub fn before_id(&self) -> Result<Option<i64>, ApiError> {
        self.query_param("before_id")
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        "before_id must be an id from the previous page",
                    )
                    .with_field("before_id")
                })
            })
            .transpose()
    }

    /// The `If-Match` header as an entity version: `"3"`, `3` or `W/"3"`; `*` means any.
    pub fn if_match(&self) -> Result<Option<i64>, ApiError> {
        match self.header("if-match").map(str::trim) {
            None | Some("*") => Ok(None),
            Some(v) => parse_etag(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    "bad_if_match",
                    format!("If-Match {v:?} is not an ETag this server issued"),
                )
                .with_field("If-Match")
            }),
        }
    }
}

/// Parses an ETag this server issued (`"12"`, possibly weak) back into a version.
pub fn parse_etag(v: &str) -> Option<i64> {
    let v = v.strip_prefix("W/").unwrap_or(v);
    v.trim_matches('"').parse().ok()
}

/// The ETag of a version: `"12"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// An error response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`not_found`, `invalid_condition`, ...).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The JSON path (or header/parameter name) of the culprit.
    pub field: Option<String>,
    /// Extra headers (`Retry-After`, ...).
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            headers: Vec::new(),
        }
    }

    /// 400.
    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500, logging the cause (the client only sees that something failed).
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {cause}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle this request; it has been logged",
        )
    }

    /// Names the culprit.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// The response.
    pub fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "field": self.field}});
        let mut resp = json_response(self.status, &body);
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { what } => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict { what } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", format!("{what} already exists"))
            }
            StoreError::PreconditionFailed { expected, current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                format!(
                    "the entity changed since you read it: If-Match was version {expected}, it is now {current}; reload and retry"
                ),
            )
            .with_header(
                header::ETAG,
                HeaderValue::from_str(&etag(current)).unwrap_or(HeaderValue::from_static("\"0\"")),
            ),
            StoreError::Invalid(err) => ApiError::bad_request(err.code(), err.kind.to_string())
                .with_field(err.path.to_string()),
            StoreError::Backend(msg) => ApiError::internal(format!("storage: {msg}")),
        }
    }
}

/// A JSON response.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => bytes_response(status, "application/json", Bytes::from(bytes)),
        Err(e) => ApiError::internal(format!("serializing a response: {e}")).into_response(),
    }
}

/// A 200 JSON response.
pub fn ok<T: Serialize + ?Sized>(body: &T) -> Response {
    json_response(StatusCode::OK, body)
}

/// A response with a body and content type.
pub fn bytes_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Sets the ETag header of a response.
pub fn with_etag(mut resp: Response, version: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// Percent-decodes a path segment or query component (`+` is a space in queries).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "bad_encoding",
                            "malformed percent-encoding in the URL",
                        )
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request("bad_encoding", "the URL is not UTF-8"))
}

/// Parses a query string.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_percent_decoded() {
        let q = parse_query("user_id=a%20b&country=US&x=1+2&flag").unwrap();
        assert_eq!(
            q,
            vec![
                ("user_id".into(), "a b".into()),
                ("country".into(), "US".into()),
                ("x".into(), "1 2".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert!(parse_query("a=%zz").is_err());
        assert!(parse_query("a=%ff").is_err());
    }

    #[test]
    fn etags_round_trip() {
        assert_eq!(parse_etag(&etag(12)), Some(12));
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("7"), Some(7));
        assert_eq!(parse_etag("\"x\""), None);
    }
}
