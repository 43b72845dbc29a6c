//! The evaluation methods shared by `NativeEngine` and `NativeClient`, and their result
//! objects. `index.js` wraps them in the public `Engine` and `Client` classes.

use napi::JsValue;
use napi::bindgen_prelude::Unknown;
use napi_derive::napi;

use crate::convert::Js;

/// A flag's full result. `hasValue` is false when the caller's default applies (`value` is
/// then absent); `index.js` fills the default in.
#[napi(object)]
pub struct NativeDetails {
    pub has_value: bool,
    pub value: Option<serde_json::Value>,
    pub variant: Option<String>,
    pub reason: String,
    pub error_code: Option<String>,
    pub rule_index: Option<u32>,
}

/// An experiment assignment.
#[napi(object)]
pub struct NativeAssignment {
    pub variant: String,
    pub in_experiment: bool,
    pub reason: String,
}

/// The raw Node-API handle of an argument.
pub(crate) fn js(v: &Unknown<'_>) -> Js {
    let value = v.value();
    Js {
        env: value.env,
        value: value.value,
    }
}

/// Generates the `#[napi]` evaluation methods of a class: `$this => $evaluator` says how to
/// get something with the core's evaluation methods (`&Engine`, or a client's `Evaluator`,
/// which records exposures) from `self`. Each method reads its arguments straight from the
/// JS values, evaluates, and converts the result; a panic becomes an `InternalError`.
macro_rules! evaluation_methods {
    ($class:ty, $this:ident => $evaluator:expr) => {
        #[napi_derive::napi]
        impl $class {
            /// Whether a boolean flag is on for this context.
            #[napi]
            pub fn is_enabled(
                &self,
                flag: napi::bindgen_prelude::Unknown<'_>,
                context: napi::bindgen_prelude::Unknown<'_>,
            ) -> Result<bool> {
                $crate::errors::guard(|| {
                    let flag = $crate::convert::name($crate::eval::js(&flag), "flag")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.is_enabled(&flag, &ctx))
                })
            }

            /// The flag's value whatever its type, or `default_value` when none is served.
            #[napi]
            pub fn get_value<'a>(
                &self,
                flag: napi::bindgen_prelude::Unknown<'a>,
                context: napi::bindgen_prelude::Unknown<'a>,
                default_value: napi::bindgen_prelude::Unknown<'a>,
            ) -> Result<
                napi::bindgen_prelude::Either<
                    serde_json::Value,
                    napi::bindgen_prelude::Unknown<'a>,
                >,
            > {
                $crate::errors::guard(|| {
                    let flag = $crate::convert::name($crate::eval::js(&flag), "flag")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(match ev.evaluate(&flag, &ctx).value {
                        Some(v) => napi::bindgen_prelude::Either::A(v.to_json()),
                        None => napi::bindgen_prelude::Either::B(default_value),
                    })
                })
            }

            /// A boolean flag's value; `default_value` otherwise.
            #[napi]
            pub fn get_bool(
                &self,
                flag: napi::bindgen_prelude::Unknown<'_>,
                context: napi::bindgen_prelude::Unknown<'_>,
                default_value: bool,
            ) -> Result<bool> {
                $crate::errors::guard(|| {
                    let flag = $crate::convert::name($crate::eval::js(&flag), "flag")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.bool_details(&flag, &ctx, default_value).value)
                })
            }

            /// A string flag's value; `default_value` otherwise.
            #[napi]
            pub fn get_string<'a>(
                &self,
                flag: napi::bindgen_prelude::Unknown<'a>,
                context: napi::bindgen_prelude::Unknown<'a>,
                default_value: napi::bindgen_prelude::Unknown<'a>,
            ) -> Result<napi::bindgen_prelude::Either<String, napi::bindgen_prelude::Unknown<'a>>>
            {
                $crate::errors::guard(|| {
                    let flag = $crate::convert::name($crate::eval::js(&flag), "flag")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    let d = ev.string_details(&flag, &ctx, "");
                    Ok(match d.variant {
                        Some(_) => napi::bindgen_prelude::Either::A(d.value.to_owned()),
                        None => napi::bindgen_prelude::Either::B(default_value),
                    })
                })
            }

            /// A number flag's value; `default_value` otherwise.
            #[napi]
            pub fn get_number(
                &self,
                flag: napi::bindgen_prelude::Unknown<'_>,
                context: napi::bindgen_prelude::Unknown<'_>,
                default_value: f64,
            ) -> Result<f64> {
                $crate::errors::guard(|| {
                    let flag = $crate::convert::name($crate::eval::js(&flag), "flag")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.number_details(&flag, &ctx, default_value).value)
                })
            }

            /// An integral number flag's value; `default_value` otherwise (also when the
            /// value is not an integer).
            #[napi]
            pub fn get_int(
                &self,
                flag: napi::bindgen_prelude::Unknown<'_>,
                context: napi::bindgen_prelude::Unknown<'_>,
                default_value: f64,
            ) -> Result<f64> {
                $crate::errors::guard(|| {
                    let flag = $crate::convert::name($crate::eval::js(&flag), "flag")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    let d = ev.int_details(&flag, &ctx, 0);
                    Ok(if d.variant.is_some() {
                        d.value as f64
                    } else {
                        default_value
                    })
                })
            }

            /// A JSON flag's value; `default_value` otherwise.
            #[napi]
            pub fn get_json<'a>(
                &self,
                flag: napi::bindgen_prelude::Unknown<'a>,
                context: napi::bindgen_prelude::Unknown<'a>,
                default_value: napi::bindgen_prelude::Unknown<'a>,
            ) -> Result<
                napi::bindgen_prelude::Either<
                    serde_json::Value,
                    napi::bindgen_prelude::Unknown<'a>,
                >,
            > {
                $crate::errors::guard(|| {
                    let flag = $crate::convert::name($crate::eval::js(&flag), "flag")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    let null = serde_json::Value::Null;
                    let d = ev.json_details(&flag, &ctx, &null);
                    Ok(match d.variant {
                        Some(_) => napi::bindgen_prelude::Either::A(d.value.clone()),
                        None => napi::bindgen_prelude::Either::B(default_value),
                    })
                })
            }

            /// Evaluates a flag: value, variant, reason, error code, rule index.
            #[napi]
            pub fn evaluate_details(
                &self,
                flag: napi::bindgen_prelude::Unknown<'_>,
                context: napi::bindgen_prelude::Unknown<'_>,
            ) -> Result<$crate::eval::NativeDetails> {
                $crate::errors::guard(|| {
                    let flag = $crate::convert::name($crate::eval::js(&flag), "flag")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    let e = ev.evaluate(&flag, &ctx);
                    Ok($crate::eval::NativeDetails {
                        has_value: e.value.is_some(),
                        value: e.value.map(|v| v.to_json()),
                        variant: e.variant.map(str::to_owned),
                        reason: e.reason.as_str().to_owned(),
                        error_code: e.error.map(|c| c.as_str().to_owned()),
                        rule_index: e.rule_index.map(|i| i as u32),
                    })
                })
            }

            /// A remote config resolved for this context; `null` when unknown or inactive.
            #[napi]
            pub fn config(
                &self,
                name: napi::bindgen_prelude::Unknown<'_>,
                context: napi::bindgen_prelude::Unknown<'_>,
            ) -> Result<Option<serde_json::Value>> {
                $crate::errors::guard(|| {
                    let name = $crate::convert::name($crate::eval::js(&name), "name")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.config(&name, &ctx).map(|c| c.value.into_owned()))
                })
            }

            /// The names of the active segments the context belongs to, in ruleset order.
            #[napi]
            pub fn segments(
                &self,
                context: napi::bindgen_prelude::Unknown<'_>,
            ) -> Result<Vec<String>> {
                $crate::errors::guard(|| {
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.segments(&ctx).map(str::to_owned).collect())
                })
            }

            /// Whether the context is in a segment; `null` when there is no such segment.
            #[napi]
            pub fn in_segment(
                &self,
                name: napi::bindgen_prelude::Unknown<'_>,
                context: napi::bindgen_prelude::Unknown<'_>,
            ) -> Result<Option<bool>> {
                $crate::errors::guard(|| {
                    let name = $crate::convert::name($crate::eval::js(&name), "name")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    Ok(ev.in_segment(&name, &ctx))
                })
            }

            /// Assigns the context to one of an experiment's variants.
            #[napi]
            pub fn assign(
                &self,
                experiment: napi::bindgen_prelude::Unknown<'_>,
                context: napi::bindgen_prelude::Unknown<'_>,
            ) -> Result<$crate::eval::NativeAssignment> {
                $crate::errors::guard(|| {
                    let experiment =
                        $crate::convert::name($crate::eval::js(&experiment), "experiment")?;
                    let ctx = $crate::convert::context($crate::eval::js(&context))?;
                    let $this = self;
                    let ev = $evaluator;
                    let a = ev.assign(&experiment, &ctx);
                    Ok($crate::eval::NativeAssignment {
                        variant: a.variant.to_owned(),
                        in_experiment: a.in_experiment,
                        reason: a.reason.as_str().to_owned(),
                    })
                })
            }
        }
    };
}

pub(crate) use evaluation_methods;
