//! The evaluation API shared by `Engine` and `Client`, and its result types.

use pyo3::prelude::*;

/// A flag's full result, from `evaluate_details`.
#[pyclass(module = "optifork", frozen, get_all)]
pub(crate) struct EvaluationDetails {
    /// The flag evaluated.
    pub(crate) flag_key: String,
    /// The flag's value, or the default given when no value is served.
    pub(crate) value: Py<PyAny>,
    /// The variant served; `None` when the default applies.
    pub(crate) variant: Option<String>,
    /// Why (OpenFeature's reasons: `STATIC`, `DEFAULT`, `TARGETING_MATCH`, `SPLIT`,
    /// `DISABLED`, `ERROR`, and OptiFork's `PREREQUISITE_FAILED`).
    pub(crate) reason: String,
    /// What went wrong when the reason is `ERROR` (`FLAG_NOT_FOUND`, `TYPE_MISMATCH`,
    /// `TARGETING_KEY_MISSING`).
    pub(crate) error_code: Option<String>,
    /// The index of the rule that matched, if one did.
    pub(crate) rule_index: Option<usize>,
}

#[pymethods]
impl EvaluationDetails {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "EvaluationDetails(flag_key={:?}, value={}, variant={:?}, reason={:?}, error_code={:?}, rule_index={:?})",
            self.flag_key,
            self.value.bind(py).repr()?,
            self.variant,
            self.reason,
            self.error_code,
            self.rule_index
        ))
    }
}

/// An experiment assignment, from `assign`.
#[pyclass(module = "optifork", frozen, get_all)]
pub(crate) struct Assignment {
    /// The experiment.
    pub(crate) experiment: String,
    /// The variant to show; the control variant when not in the experiment.
    pub(crate) variant: String,
    /// Whether the user is enrolled (and, through a client, recorded as an exposure).
    pub(crate) in_experiment: bool,
    /// Why: `ASSIGNED`, `EXPERIMENT_NOT_FOUND`, `INACTIVE`, `TARGETING_MISMATCH`,
    /// `OUTSIDE_LAYER`, `NOT_ALLOCATED`, `TARGETING_KEY_MISSING`.
    pub(crate) reason: String,
}

#[pymethods]
impl Assignment {
    fn __repr__(&self) -> String {
        format!(
            "Assignment(experiment={:?}, variant={:?}, in_experiment={}, reason={:?})",
            self.experiment,
            self.variant,
            if self.in_experiment { "True" } else { "False" },
            self.reason
        )
    }
}

/// Generates the `#[pymethods]` block of a class that evaluates: `$this => $evaluator` says
/// how to get something with the core's evaluation methods (`&Engine`, or a client's
/// `Evaluator`, which records exposures) from `self`; `$extra` are the class's own methods.
///
/// Every method converts its context straight from the dict, evaluates, and converts the
/// result; a panic becomes `InternalError`.
macro_rules! evaluation_methods {
    ($class:ty, $this:ident => $evaluator:expr, { $($extra:tt)* }) => {
        #[pymethods]
        impl $class {
            /// Whether a boolean flag is on for this context. Anything else (an unknown
            /// flag, a non-boolean flag, an error) is `False`.
            #[pyo3(signature = (flag, context = None))]
            fn is_enabled(
                &self,
                py: Python<'_>,
                flag: &Bound<'_, PyString>,
                context: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<bool> {
                $crate::errors::guard(py, || {
                    let flag = $crate::convert::text(flag)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.is_enabled(&flag, &ctx))
                })
            }

            /// The flag's value whatever its type (`bool`, `str`, `int`/`float`, or JSON as
            /// dicts and lists), or `default` when it serves none (an unknown flag, an off
            /// flag without an off variant, an error).
            #[pyo3(signature = (flag, context = None, default = None))]
            fn get_value<'py>(
                &self,
                py: Python<'py>,
                flag: &Bound<'py, PyString>,
                context: Option<&Bound<'py, PyAny>>,
                default: Option<Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $crate::errors::guard(py, || {
                    let flag = $crate::convert::text(flag)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    match ev.evaluate(&flag, &ctx).value {
                        Some(v) => $crate::convert::flag_value(py, v),
                        None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
                    }
                })
            }

            /// A boolean flag's value; `default` on error or when the flag is not boolean.
            #[pyo3(signature = (flag, context = None, default = false))]
            fn get_bool(
                &self,
                py: Python<'_>,
                flag: &Bound<'_, PyString>,
                context: Option<&Bound<'_, PyAny>>,
                default: bool,
            ) -> PyResult<bool> {
                $crate::errors::guard(py, || {
                    let flag = $crate::convert::text(flag)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.bool_details(&flag, &ctx, default).value)
                })
            }

            /// A string flag's value; `default` on error or when the flag is not a string.
            #[pyo3(signature = (flag, context = None, default = None))]
            fn get_string<'py>(
                &self,
                py: Python<'py>,
                flag: &Bound<'py, PyString>,
                context: Option<&Bound<'py, PyAny>>,
                default: Option<Bound<'py, PyString>>,
            ) -> PyResult<Bound<'py, PyString>> {
                $crate::errors::guard(py, || {
                    let flag = $crate::convert::text(flag)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    let d = ev.string_details(&flag, &ctx, "");
                    Ok(match (d.variant, default) {
                        (Some(_), _) | (None, None) => PyString::new(py, d.value),
                        (None, Some(default)) => default,
                    })
                })
            }

            /// A number flag's value as a float; `default` on error or when the flag is not
            /// a number.
            #[pyo3(signature = (flag, context = None, default = 0.0))]
            fn get_float(
                &self,
                py: Python<'_>,
                flag: &Bound<'_, PyString>,
                context: Option<&Bound<'_, PyAny>>,
                default: f64,
            ) -> PyResult<f64> {
                $crate::errors::guard(py, || {
                    let flag = $crate::convert::text(flag)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.number_details(&flag, &ctx, default).value)
                })
            }

            /// A number flag's value as an int; `default` on error, when the flag is not a
            /// number, or when its value is not integral.
            #[pyo3(signature = (flag, context = None, default = 0))]
            fn get_int(
                &self,
                py: Python<'_>,
                flag: &Bound<'_, PyString>,
                context: Option<&Bound<'_, PyAny>>,
                default: i64,
            ) -> PyResult<i64> {
                $crate::errors::guard(py, || {
                    let flag = $crate::convert::text(flag)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.int_details(&flag, &ctx, default).value)
                })
            }

            /// A JSON flag's value (dicts, lists, ...); `default` on error or when the flag is
            /// not a JSON flag.
            #[pyo3(signature = (flag, context = None, default = None))]
            fn get_json<'py>(
                &self,
                py: Python<'py>,
                flag: &Bound<'py, PyString>,
                context: Option<&Bound<'py, PyAny>>,
                default: Option<Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $crate::errors::guard(py, || {
                    let flag = $crate::convert::text(flag)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    let null = serde_json::Value::Null;
                    let d = ev.json_details(&flag, &ctx, &null);
                    match (d.variant, default) {
                        (Some(_), _) | (None, None) => $crate::convert::from_json(py, d.value),
                        (None, Some(default)) => Ok(default),
                    }
                })
            }

            /// Evaluates a flag: its value (or `default`), variant, reason, error code and
            /// the index of the rule that matched.
            #[pyo3(signature = (flag, context = None, default = None))]
            fn evaluate_details<'py>(
                &self,
                py: Python<'py>,
                flag: &Bound<'py, PyString>,
                context: Option<&Bound<'py, PyAny>>,
                default: Option<Bound<'py, PyAny>>,
            ) -> PyResult<$crate::eval::EvaluationDetails> {
                $crate::errors::guard(py, || {
                    let flag = $crate::convert::text(flag)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    let e = ev.evaluate(&flag, &ctx);
                    let value = match e.value {
                        Some(v) => $crate::convert::flag_value(py, v)?,
                        None => default.unwrap_or_else(|| py.None().into_bound(py)),
                    };
                    Ok($crate::eval::EvaluationDetails {
                        flag_key: flag.to_string(),
                        value: value.unbind(),
                        variant: e.variant.map(str::to_owned),
                        reason: e.reason.as_str().to_owned(),
                        error_code: e.error.map(|c| c.as_str().to_owned()),
                        rule_index: e.rule_index,
                    })
                })
            }

            /// A remote config resolved for this context (`config_data` with every matching
            /// override deep-merged over it); `None` for an unknown or inactive config.
            #[pyo3(signature = (name, context = None))]
            fn config<'py>(
                &self,
                py: Python<'py>,
                name: &Bound<'py, PyString>,
                context: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $crate::errors::guard(py, || {
                    let name = $crate::convert::text(name)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    match ev.config(&name, &ctx) {
                        Some(c) => $crate::convert::from_json(py, &c.value),
                        None => Ok(py.None().into_bound(py)),
                    }
                })
            }

            /// The names of the active segments this context belongs to, in ruleset order.
            #[pyo3(signature = (context = None))]
            fn segments(
                &self,
                py: Python<'_>,
                context: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Vec<String>> {
                $crate::errors::guard(py, || {
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.segments(&ctx).map(str::to_owned).collect())
                })
            }

            /// Whether the context is in a segment; `None` when there is no such segment.
            #[pyo3(signature = (name, context = None))]
            fn in_segment(
                &self,
                py: Python<'_>,
                name: &Bound<'_, PyString>,
                context: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Option<bool>> {
                $crate::errors::guard(py, || {
                    let name = $crate::convert::text(name)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.in_segment(&name, &ctx))
                })
            }

            /// Assigns the context to one of an experiment's variants. Users not enrolled
            /// get the control variant with `in_experiment` false.
            #[pyo3(signature = (experiment, context = None))]
            fn assign(
                &self,
                py: Python<'_>,
                experiment: &Bound<'_, PyString>,
                context: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<$crate::eval::Assignment> {
                $crate::errors::guard(py, || {
                    let experiment = $crate::convert::text(experiment)?;
                    let ctx = $crate::convert::context(context)?;
                    let $this = self;
                    let ev = $evaluator;
                    let a = ev.assign(&experiment, &ctx);
                    Ok($crate::eval::Assignment {
                        experiment: experiment.to_string(),
                        variant: a.variant.to_owned(),
                        in_experiment: a.in_experiment,
                        reason: a.reason.as_str().to_owned(),
                    })
                })
            }

            $($extra)*
        }
    };
}

pub(crate) use evaluation_methods;
