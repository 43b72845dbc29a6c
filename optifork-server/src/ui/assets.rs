//! The UI's static files, compiled into the binary and served under `/ui/static/` with long
//! cache lifetimes; pages link them with a content hash (`?v=…`) so a new build is fetched
//! at once.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

use super::{Ui, UiReply};
use crate::web::{ApiError, bytes_response};

/// Every static file: name, content type, content.
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
];

fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = Sha256::new();
        for (name, _, body) in FILES {
            h.update(name.as_bytes());
            h.update(body.as_bytes());
        }
        hex::encode(h.finalize())[..12].to_owned()
    })
}

/// The URL of a static file, versioned by content.
pub fn url(file: &str) -> String {
    format!("/ui/static/{file}?v={}", version())
}

/// GET /ui/static/{file}
pub async fn serve(ui: Ui) -> UiReply {
    let name = ui.param(0);
    let Some((_, ctype, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Err(ApiError::not_found(format!("no static file {name:?}")));
    };
    let mut resp = bytes_response(StatusCode::OK, ctype, Bytes::from_static(body.as_bytes()));
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}
