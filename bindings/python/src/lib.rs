//! OptiFork for Python: the native module `optifork._native`, built by maturin into the
//! `optifork` package (see `bindings/python/pyproject.toml` and `python/optifork/`).
//!
//! * `Engine` — a compiled ruleset evaluated offline ([`engine`]).
//! * `Client` — an [`optifork_sdk::Client`]: a ruleset kept fresh from a server, exposures and
//!   events sent back ([`client`]).
//! * `bucket(salt, unit)` — the portable bucketing hash.
//!
//! Contexts are read straight from Python dicts ([`convert`]); Rust errors become the
//! exceptions of `optifork/_errors.py` and panics never cross the boundary ([`errors`]).
//! Blocking waits (`wait_until_ready`, `flush`, `close`) release the GIL.

mod client;
mod convert;
mod engine;
mod errors;
mod eval;

use pyo3::prelude::*;

/// The bucket (0–9999) of `unit` under `salt`: `XXH64(unit, seed = XXH64(salt, 0)) mod
/// 10000`, the hash behind every percentage rollout and experiment.
#[pyfunction]
fn bucket(
    salt: &Bound<'_, pyo3::types::PyString>,
    unit: &Bound<'_, pyo3::types::PyString>,
) -> PyResult<u32> {
    Ok(optifork_sdk::optifork_core::bucket(
        &convert::text(salt)?,
        &convert::text(unit)?,
    ))
}

/// Panics on purpose, inside the boundary's guard: lets the tests check that a Rust panic
/// surfaces as `optifork.InternalError` rather than crossing into Python.
#[pyfunction]
fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    errors::guard(py, || panic!("a deliberate panic"))
}

#[pymodule(name = "_native")]
fn optifork_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<client::PyStatus>()?;
    m.add_class::<client::PyChange>()?;
    m.add_class::<eval::EvaluationDetails>()?;
    m.add_class::<eval::Assignment>()?;
    m.add_function(wrap_pyfunction!(bucket, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
