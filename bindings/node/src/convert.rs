//! JavaScript values to OptiFork's values and back, straight through Node-API.
//!
//! A context is read from the object's own enumerable string-keyed properties (what
//! `Object.keys` lists) into the core's [`Context`]: no JSON text, strings of up to 24 bytes
//! stored inline, and the attribute vector as the only allocation. Strings are copied out of
//! V8 into a stack buffer first, so short ones (flag names, attribute names, most values)
//! cost one Node-API call and no heap allocation.
//!
//! This is the crate's only `unsafe` code: raw Node-API calls, each on the `env` and values
//! of the current call (valid for its duration), with every status checked.
#![allow(unsafe_code)]

use std::ptr;

use compact_str::CompactString;
use napi::sys;
use optifork_sdk::{Context, Value};

use crate::errors::{Error, invalid_arg, invalid_context};

/// How deeply attribute values (arrays and objects) may nest.
const MAX_DEPTH: usize = 64;
/// The stack buffer strings are first copied into.
const STACK: usize = 128;

/// A JS value of the current call.
#[derive(Clone, Copy)]
pub(crate) struct Js {
    pub(crate) env: sys::napi_env,
    pub(crate) value: sys::napi_value,
}

fn check(status: sys::napi_status, what: &str) -> Result<(), Error> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(invalid_arg(format!("{what} (Node-API status {status})")))
    }
}

fn type_name(t: sys::napi_valuetype) -> &'static str {
    match t {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "boolean",
        sys::ValueType::napi_number => "number",
        sys::ValueType::napi_string => "string",
        sys::ValueType::napi_symbol => "symbol",
        sys::ValueType::napi_object => "object",
        sys::ValueType::napi_function => "function",
        sys::ValueType::napi_external => "external",
        _ => "bigint",
    }
}

impl Js {
    fn with(self, value: sys::napi_value) -> Js {
        Js {
            env: self.env,
            value,
        }
    }

    pub(crate) fn type_of(self) -> Result<sys::napi_valuetype, Error> {
        let mut t = 0;
        // SAFETY: `env` and `value` belong to the current call; `t` is a valid out pointer.
        check(
            unsafe { sys::napi_typeof(self.env, self.value, &mut t) },
            "typeof",
        )?;
        Ok(t)
    }

    fn is_array(self) -> Result<bool, Error> {
        let mut yes = false;
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_is_array(self.env, self.value, &mut yes) },
            "is_array",
        )?;
        Ok(yes)
    }

    /// The text of a JS string; `None` when the value is not a string. (Reading first and
    /// asking the type only on failure saves a Node-API call for every string.)
    fn try_string(self) -> Result<Option<CompactString>, Error> {
        let mut buf = [0u8; STACK];
        let mut len = 0usize;
        // SAFETY: `buf` has room for STACK bytes, NUL included; Node writes at most that many
        // and reports how many it wrote (without the NUL) in `len`.
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                self.env,
                self.value,
                buf.as_mut_ptr().cast(),
                STACK,
                &mut len,
            )
        };
        if status == sys::Status::napi_string_expected {
            return Ok(None);
        }
        check(status, "reading a string")?;
        // Node only writes whole characters (at most 4 bytes each): with 4 bytes or more to
        // spare, nothing was cut off.
        if len + 4 < STACK {
            return Ok(Some(CompactString::from(String::from_utf8_lossy(
                &buf[..len],
            ))));
        }
        let mut full = 0usize;
        // SAFETY: a null buffer asks for the length only.
        check(
            unsafe {
                sys::napi_get_value_string_utf8(self.env, self.value, ptr::null_mut(), 0, &mut full)
            },
            "measuring a string",
        )?;
        let mut heap = vec![0u8; full + 1];
        // SAFETY: `heap` has room for the whole string and its NUL.
        check(
            unsafe {
                sys::napi_get_value_string_utf8(
                    self.env,
                    self.value,
                    heap.as_mut_ptr().cast(),
                    heap.len(),
                    &mut len,
                )
            },
            "reading a string",
        )?;
        heap.truncate(len);
        Ok(Some(match String::from_utf8(heap) {
            Ok(s) => CompactString::from(s),
            Err(e) => CompactString::from(String::from_utf8_lossy(e.as_bytes())),
        }))
    }

    fn number(self) -> Result<f64, Error> {
        let mut n = 0f64;
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_get_value_double(self.env, self.value, &mut n) },
            "reading a number",
        )?;
        Ok(n)
    }

    fn boolean(self) -> Result<bool, Error> {
        let mut b = false;
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_get_value_bool(self.env, self.value, &mut b) },
            "reading a boolean",
        )?;
        Ok(b)
    }

    fn is_date(self) -> Result<bool, Error> {
        let mut yes = false;
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_is_date(self.env, self.value, &mut yes) },
            "is_date",
        )?;
        Ok(yes)
    }

    fn date(self) -> Result<f64, Error> {
        let mut ms = 0f64;
        // SAFETY: as in `type_of`; the caller checked that this is a Date.
        check(
            unsafe { sys::napi_get_date_value(self.env, self.value, &mut ms) },
            "reading a Date",
        )?;
        Ok(ms)
    }

    /// The own enumerable string keys of an object, as a JS array, and its length.
    fn keys(self) -> Result<(Js, u32), Error> {
        let mut keys = ptr::null_mut();
        // SAFETY: as in `type_of`; the filter and conversion are Node-API constants.
        check(
            unsafe {
                sys::napi_get_all_property_names(
                    self.env,
                    self.value,
                    sys::KeyCollectionMode::own_only,
                    sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
                    sys::KeyConversion::numbers_to_strings,
                    &mut keys,
                )
            },
            "listing an object's keys",
        )?;
        let keys = self.with(keys);
        Ok((keys, keys.length()?))
    }

    fn length(self) -> Result<u32, Error> {
        let mut n = 0u32;
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_get_array_length(self.env, self.value, &mut n) },
            "reading an array's length",
        )?;
        Ok(n)
    }

    fn element(self, i: u32) -> Result<Js, Error> {
        let mut v = ptr::null_mut();
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_get_element(self.env, self.value, i, &mut v) },
            "reading an array element",
        )?;
        Ok(self.with(v))
    }

    fn property(self, key: Js) -> Result<Js, Error> {
        let mut v = ptr::null_mut();
        // SAFETY: as in `type_of`; `key` belongs to the same call.
        check(
            unsafe { sys::napi_get_property(self.env, self.value, key.value, &mut v) },
            "reading a property",
        )?;
        Ok(self.with(v))
    }
}

/// A string argument (a flag, config, segment, experiment or event name).
pub(crate) fn name(arg: Js, what: &str) -> Result<CompactString, Error> {
    match arg.try_string()? {
        Some(s) => Ok(s),
        None => Err(invalid_arg(format!(
            "{what} must be a string, not {}",
            type_name(arg.type_of()?)
        ))),
    }
}

/// A context from `undefined`/`null` (anonymous) or a plain object of attributes. The
/// targeting key is `targetingKey`, or else `user_id`. Properties whose value is `undefined`
/// are left out, as `JSON.stringify` would.
pub(crate) fn context(arg: Js) -> Result<Context, Error> {
    match arg.type_of()? {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(Context::default()),
        sys::ValueType::napi_object if !arg.is_array()? => {
            let (keys, n) = arg.keys()?;
            let mut attrs = Vec::with_capacity(n as usize);
            for i in 0..n {
                let key = keys.element(i)?;
                let name = name(key, "a context key")?;
                let value = arg.property(key)?;
                if let Some(v) = attribute(value, &mut || format!("context.{name}"), 0)? {
                    attrs.push((name, v));
                }
            }
            Ok(Context::from_attributes(attrs))
        }
        sys::ValueType::napi_object => Err(invalid_context(
            "context must be an object of attributes (or undefined), not an array".into(),
        )),
        t => Err(invalid_context(format!(
            "context must be an object of attributes (or undefined), not {}",
            type_name(t)
        ))),
    }
}

/// A Date as `toISOString` writes it (`2024-05-01T12:00:00.000Z`); an invalid Date is the
/// empty string, which no date condition matches.
fn iso_date(ms: f64) -> CompactString {
    if !ms.is_finite() {
        return CompactString::default();
    }
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| CompactString::from(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or_default()
}

/// One attribute value (a Date becomes its ISO 8601 string, as `JSON.stringify` writes it);
/// `None` for `undefined`. `path` names it in error messages.
pub(crate) fn attribute(
    v: Js,
    path: &mut dyn FnMut() -> String,
    depth: usize,
) -> Result<Option<Value>, Error> {
    if let Some(s) = v.try_string()? {
        return Ok(Some(Value::String(s)));
    }
    Ok(Some(match v.type_of()? {
        sys::ValueType::napi_number => Value::Number(v.number()?),
        sys::ValueType::napi_boolean => Value::Bool(v.boolean()?),
        sys::ValueType::napi_null => Value::Null,
        sys::ValueType::napi_undefined => return Ok(None),
        sys::ValueType::napi_object if v.is_date()? => Value::String(iso_date(v.date()?)),
        sys::ValueType::napi_object => {
            if depth >= MAX_DEPTH {
                return Err(invalid_context(format!(
                    "{} nests more than {MAX_DEPTH} levels deep",
                    path()
                )));
            }
            if v.is_array()? {
                let n = v.length()?;
                let mut items = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let item =
                        attribute(v.element(i)?, &mut || format!("{}[{i}]", path()), depth + 1)?;
                    items.push(item.unwrap_or(Value::Null));
                }
                Value::Array(items)
            } else {
                let (keys, n) = v.keys()?;
                let mut entries = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let key = keys.element(i)?;
                    let name = name(key, "a context key")?;
                    let value = v.property(key)?;
                    if let Some(x) =
                        attribute(value, &mut || format!("{}.{name}", path()), depth + 1)?
                    {
                        entries.push((name, x));
                    }
                }
                Value::Object(entries)
            }
        }
        t => {
            return Err(invalid_context(format!(
                "{}: unsupported type {} (attributes must be strings, numbers, booleans, null, or arrays and objects of them)",
                path(),
                type_name(t)
            )));
        }
    }))
}
