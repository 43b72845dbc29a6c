//! Rust errors as Python exceptions, and the panic guard at the boundary.
//!
//! The exception classes are defined in Python (`optifork/_errors.py`) so that they can
//! inherit from both `OptiForkError` and the matching built-in (`ValueError`, `TypeError`,
//! `TimeoutError`, `PermissionError`); this module raises them.

use std::panic::{AssertUnwindSafe, catch_unwind};

use optifork_sdk::{CompileError, SdkError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyModule, PyType};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// An instance of the exception class `class` of `optifork._errors`, built with `args`.
fn raise<A>(py: Python<'_>, class: &str, args: A) -> PyErr
where
    A: pyo3::PyErrArguments + Send + Sync + 'static,
{
    let class = ERRORS
        .get_or_try_init(py, || py.import("optifork._errors").map(Bound::unbind))
        .and_then(|m| m.bind(py).getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(class) => PyErr::from_type(class, args),
        Err(e) => e,
    }
}

/// `InvalidContextError` (an `OptiForkError` and a `TypeError`): a context that is not a dict
/// of supported values.
pub(crate) fn invalid_context(py: Python<'_>, message: String) -> PyErr {
    raise(py, "InvalidContextError", (message,))
}

/// `InvalidOptionError` (an `OptiForkError` and a `ValueError`) about `option`.
pub(crate) fn invalid_option(py: Python<'_>, option: &str, message: String) -> PyErr {
    raise(py, "InvalidOptionError", (message, option.to_owned()))
}

/// `InvalidRulesetError` (an `OptiForkError` and a `ValueError`) with the JSON path of the
/// culprit and a machine-readable code.
pub(crate) fn invalid_ruleset(py: Python<'_>, prefix: &str, e: &CompileError) -> PyErr {
    raise(
        py,
        "InvalidRulesetError",
        (
            format!("{prefix}{e}"),
            e.path.to_string(),
            e.code().to_owned(),
        ),
    )
}

/// The Python exception for an SDK error.
pub(crate) fn sdk(py: Python<'_>, e: SdkError) -> PyErr {
    let message = e.to_string();
    match e {
        SdkError::InvalidUrl { .. } => raise(py, "InvalidOptionError", (message, "url")),
        SdkError::InvalidOption { option, .. } => {
            // The Rust builder's names, as the Python options spell them.
            let option = match option {
                "backoff" => "backoff_initial",
                "header" => "headers",
                other => other,
            };
            raise(py, "InvalidOptionError", (message, option))
        }
        SdkError::BootstrapIo { .. } => {
            raise(py, "InvalidOptionError", (message, "bootstrap_file"))
        }
        SdkError::InvalidBootstrap(e) => {
            invalid_ruleset(py, "the bootstrap ruleset is invalid: ", &e)
        }
        SdkError::InvalidRuleset(e) => invalid_ruleset(py, "", &e),
        SdkError::Unauthorized(_) => raise(py, "UnauthorizedError", (message,)),
        SdkError::NotReady { .. } => raise(py, "NotReadyError", (message,)),
        SdkError::Timeout(_) => raise(py, "FlushTimeoutError", (message,)),
        _ => raise(py, "OptiForkError", (message,)),
    }
}

/// Runs `f`, turning a Rust panic into `optifork.InternalError` (an ordinary exception that
/// `except OptiForkError` catches) instead of PyO3's `PanicException`, which derives from
/// `BaseException`. Costs nothing unless something panics.
pub(crate) fn guard<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            Err(raise(
                py,
                "InternalError",
                (format!(
                    "internal error in optifork (please report it): {what}"
                ),),
            ))
        }
    }
}
