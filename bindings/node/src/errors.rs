//! Errors thrown into JavaScript, and the panic guard at the boundary.
//!
//! Every error thrown by the addon is a JS `Error` whose `code` names its kind
//! (`ERR_INVALID_ARG_TYPE`, `ERR_OPTIFORK_INVALID_RULESET`, ...); `index.js` turns each into
//! the matching class (`TypeError`, `InvalidRulesetError`, ...). Details travel in the code
//! after `|`: `ERR_OPTIFORK_INVALID_RULESET|<rule code>|<JSON path>`,
//! `ERR_OPTIFORK_INVALID_OPTION|<option>`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use optifork_sdk::{CompileError, SdkError};

/// The addon's error: a JS `Error` with `code` set to the status string.
pub(crate) type Error = napi::Error<String>;

/// `Result` with the addon's error. Named `Result` so that `#[napi]` treats functions
/// returning it as fallible (it throws the error).
pub(crate) type Result<T> = std::result::Result<T, Error>;

fn error(code: impl Into<String>, message: impl Into<String>) -> Error {
    napi::Error::new(code.into(), message.into())
}

/// An argument of the wrong type (a `TypeError` in JS).
pub(crate) fn invalid_arg(message: String) -> Error {
    error("ERR_INVALID_ARG_TYPE", message)
}

/// A context that is not an object of supported values (a `TypeError` in JS).
pub(crate) fn invalid_context(message: String) -> Error {
    error("ERR_INVALID_ARG_TYPE", message)
}

/// An option out of range.
pub(crate) fn invalid_option(option: &str, message: String) -> Error {
    error(format!("ERR_OPTIFORK_INVALID_OPTION|{option}"), message)
}

/// A ruleset that does not parse or compile.
pub(crate) fn invalid_ruleset(prefix: &str, e: &CompileError) -> Error {
    error(
        format!("ERR_OPTIFORK_INVALID_RULESET|{}|{}", e.code(), e.path),
        format!("{prefix}{e}"),
    )
}

/// The code and message of an SDK error.
pub(crate) fn sdk_parts(e: &SdkError) -> (String, String) {
    let message = e.to_string();
    let code = match e {
        SdkError::InvalidUrl { .. } => "ERR_OPTIFORK_INVALID_OPTION|url".to_owned(),
        SdkError::InvalidOption { option, .. } => {
            format!("ERR_OPTIFORK_INVALID_OPTION|{}", js_option(option))
        }
        SdkError::BootstrapIo { .. } => "ERR_OPTIFORK_INVALID_OPTION|bootstrapFile".to_owned(),
        SdkError::InvalidBootstrap(c) | SdkError::InvalidRuleset(c) => {
            format!("ERR_OPTIFORK_INVALID_RULESET|{}|{}", c.code(), c.path)
        }
        SdkError::Unauthorized(_) => "ERR_OPTIFORK_UNAUTHORIZED".to_owned(),
        SdkError::NotReady { .. } => "ERR_OPTIFORK_NOT_READY".to_owned(),
        SdkError::Timeout(_) => "ERR_OPTIFORK_FLUSH_TIMEOUT".to_owned(),
        _ => "ERR_OPTIFORK".to_owned(),
    };
    (code, message)
}

/// The name `index.js` gives an option of the Rust builder.
fn js_option(option: &str) -> &str {
    match option {
        "poll_interval" => "pollIntervalMs",
        "request_timeout" => "requestTimeoutMs",
        "flush_interval" => "flushIntervalMs",
        "backoff" => "backoffInitialMs",
        "header" => "headers",
        "sdk_key" => "sdkKey",
        "exposure_batch_size" => "exposureBatchSize",
        "exposure_buffer_capacity" => "exposureBufferCapacity",
        "exposure_dedup_capacity" => "exposureDedupCapacity",
        other => other,
    }
}

/// The JS error for an SDK error.
pub(crate) fn sdk(e: &SdkError) -> Error {
    let (code, message) = sdk_parts(e);
    error(code, message)
}

/// The message of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    format!("internal error in optifork (please report it): {what}")
}

/// Runs `f`, turning a Rust panic into an `InternalError` thrown in JS. (A panic must never
/// unwind into Node: across its C frames that would abort the process.)
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(error("ERR_OPTIFORK_INTERNAL", panic_message(&*payload))),
    }
}
