//! `optifork.Engine`: a compiled ruleset evaluated offline (tests, tools, fixed rulesets).

use std::sync::Arc;

use optifork_sdk::{Engine, Ruleset, optifork_core};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::convert::{self, type_name};
use crate::errors;
use crate::eval::evaluation_methods;

/// A compiled ruleset, evaluated in process with no server: `Engine.from_ruleset(...)`.
/// Evaluations through an engine record no exposures.
#[pyclass(module = "optifork", name = "Engine", frozen)]
pub(crate) struct PyEngine {
    engine: Arc<Engine>,
}

/// The JSON text of a ruleset given as a `str`, `bytes` or a dict.
pub(crate) fn ruleset_text(ruleset: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    if let Ok(s) = ruleset.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    if let Ok(b) = ruleset.cast::<PyBytes>() {
        return String::from_utf8(b.as_bytes().to_vec())
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{what}: {e}")));
    }
    if ruleset.is_instance_of::<PyDict>() {
        return Ok(convert::to_json(ruleset, what)?.to_string());
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a dict or a JSON str, not {}",
        type_name(ruleset)
    )))
}

evaluation_methods!(PyEngine, this => &*this.engine, {
    /// Compiles a ruleset (a dict, or its JSON as `str` or `bytes`, in the shape the server's
    /// `GET /sdk/v1/ruleset` returns). Raises `InvalidRulesetError`, with the JSON path of
    /// the culprit, when it does not parse or compile.
    #[staticmethod]
    fn from_ruleset(py: Python<'_>, ruleset: &Bound<'_, PyAny>) -> PyResult<PyEngine> {
        errors::guard(py, || {
            let text = ruleset_text(ruleset, "ruleset")?;
            let compiled = py.detach(|| {
                optifork_core::from_json_str::<Ruleset>(&text).and_then(|r| Engine::compile(&r))
            });
            match compiled {
                Ok(engine) => Ok(PyEngine { engine: Arc::new(engine) }),
                Err(e) => Err(errors::invalid_ruleset(py, "", &e)),
            }
        })
    }

    /// The ruleset's version.
    #[getter]
    fn version(&self) -> u64 {
        self.engine.version()
    }

    /// The ruleset's environment.
    #[getter]
    fn environment(&self) -> String {
        self.engine.environment().to_owned()
    }

    /// The names of every flag, in ruleset order.
    fn flag_names(&self) -> Vec<String> {
        self.engine.flag_names().map(str::to_owned).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine(environment={:?}, version={}, flags={})",
            self.engine.environment(),
            self.engine.version(),
            self.engine.flag_names().len()
        )
    }
});
