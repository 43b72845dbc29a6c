//! Conversions between Python objects and OptiFork's values, without JSON text.
//!
//! A context is read straight from the dict: each key and value becomes the core's
//! [`Value`], short strings are stored inline, and the only allocation is the attribute
//! vector. Short strings that Python hands over again and again (flag names, attribute names,
//! literal values such as `"US"`) are remembered by identity in a small per-thread table, so
//! reading them copies 24 bytes instead of encoding them to UTF-8 anew.

use std::cell::RefCell;

use compact_str::CompactString;
use optifork_sdk::{Context, FlagValue, Value};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use serde_json::Value as Json;

use crate::errors;

/// How deeply attribute values (lists and dicts) may nest.
const MAX_DEPTH: usize = 64;
/// Slots in the per-thread table of recently read strings.
const SLOTS: usize = 512;
/// Strings up to this many bytes are stored inline by `CompactString` (no allocation).
const INLINE: usize = 24;

/// A Python string and its text. Holding the object keeps its address from being reused by
/// another string while the entry exists, so identity implies equal text.
struct Remembered {
    object: Py<PyString>,
    text: CompactString,
}

thread_local! {
    static STRINGS: RefCell<Vec<Option<Remembered>>> =
        RefCell::new((0..SLOTS).map(|_| None).collect());
}

fn slot(s: &Bound<'_, PyString>) -> usize {
    // Objects are 16-byte aligned: the low bits carry no information.
    (s.as_ptr() as usize >> 4) % SLOTS
}

/// The text of a Python string.
pub(crate) fn text(s: &Bound<'_, PyString>) -> PyResult<CompactString> {
    let slot = slot(s);
    let hit = STRINGS
        .try_with(|table| match &table.borrow()[slot] {
            Some(r) if r.object.as_ptr() == s.as_ptr() => Some(r.text.clone()),
            _ => None,
        })
        .ok()
        .flatten();
    if let Some(text) = hit {
        return Ok(text);
    }
    let text = CompactString::from(&*s.to_cow()?);
    if text.len() <= INLINE {
        let entry = Remembered {
            object: s.clone().unbind(),
            text: text.clone(),
        };
        // The entry replaced is dropped after the table is released.
        let _old = STRINGS
            .try_with(|table| table.borrow_mut()[slot].replace(entry))
            .ok()
            .flatten();
    }
    Ok(text)
}

/// The name of an object's type, for error messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// A context from `None` (anonymous) or a dict (or any mapping) of attributes with string
/// keys. The targeting key is `targetingKey`, or else `user_id`.
pub(crate) fn context(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Context> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Context::default());
    };
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut attrs = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            attrs.push(attribute(&k, &v)?);
        }
        return Ok(Context::from_attributes(attrs));
    }
    if let Ok(mapping) = obj.cast::<PyMapping>() {
        let items = mapping.items()?;
        let mut attrs = Vec::with_capacity(items.len());
        for item in items.iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            attrs.push(attribute(&k, &v)?);
        }
        return Ok(Context::from_attributes(attrs));
    }
    Err(errors::invalid_context(
        obj.py(),
        format!(
            "context must be a dict of attributes (or None), not {}",
            type_name(obj)
        ),
    ))
}

fn attribute(key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<(CompactString, Value)> {
    let Ok(name) = key.cast::<PyString>() else {
        return Err(errors::invalid_context(
            key.py(),
            format!(
                "context keys must be strings, not {} ({})",
                type_name(key),
                key.repr().map(|r| r.to_string()).unwrap_or_default()
            ),
        ));
    };
    let name = text(name)?;
    let value = attribute_value(value, &mut || format!("context[{name:?}]"), 0)?;
    Ok((name, value))
}

/// One attribute value; `path` names it in error messages (built only on error).
fn attribute_value(
    obj: &Bound<'_, PyAny>,
    path: &mut dyn FnMut() -> String,
    depth: usize,
) -> PyResult<Value> {
    let py = obj.py();
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(text(s)?));
    }
    // bool before int: Python's bool is a subclass of int, OptiFork's booleans are not numbers.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(Value::Number(int_as_f64(obj)?));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Number(f.value()));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if depth >= MAX_DEPTH {
        return Err(errors::invalid_context(
            py,
            format!("{} nests more than {MAX_DEPTH} levels deep", path()),
        ));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::with_capacity(obj.len().unwrap_or(0));
        for (i, item) in obj.try_iter()?.enumerate() {
            let item = item?;
            items.push(attribute_value(
                &item,
                &mut || format!("{}[{i}]", path()),
                depth + 1,
            )?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let Ok(k) = k.cast::<PyString>() else {
                return Err(errors::invalid_context(
                    py,
                    format!("{}: keys must be strings, not {}", path(), type_name(&k)),
                ));
            };
            let k = text(k)?;
            let v = attribute_value(&v, &mut || format!("{}[{k:?}]", path()), depth + 1)?;
            entries.push((k, v));
        }
        return Ok(Value::Object(entries));
    }
    Err(errors::invalid_context(
        py,
        format!(
            "{}: unsupported type {} (attributes must be str, int, float, bool, None, or lists and dicts of them)",
            path(),
            type_name(obj)
        ),
    ))
}

/// A Python int as a float (exact up to 2^53, like every number in a ruleset).
fn int_as_f64(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    match obj.extract::<i64>() {
        Ok(i) => Ok(i as f64),
        Err(_) => obj.extract::<f64>(),
    }
}

/// Any JSON-compatible Python object as JSON (for rulesets given as dicts, and event
/// properties). `what` names the argument in error messages.
pub(crate) fn to_json(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Json> {
    json_value(obj, &mut || what.to_owned(), 0)
}

fn json_value(
    obj: &Bound<'_, PyAny>,
    path: &mut dyn FnMut() -> String,
    depth: usize,
) -> PyResult<Json> {
    use pyo3::exceptions::{PyTypeError, PyValueError};
    if obj.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Json::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Json::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Json::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Json::from(u));
        }
    }
    if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        let f: f64 = obj.extract()?;
        return serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| PyValueError::new_err(format!("{}: {f} is not valid JSON", path())));
    }
    if depth >= MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{} nests more than {MAX_DEPTH} levels deep",
            path()
        )));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::with_capacity(obj.len().unwrap_or(0));
        for (i, item) in obj.try_iter()?.enumerate() {
            items.push(json_value(
                &item?,
                &mut || format!("{}[{i}]", path()),
                depth + 1,
            )?);
        }
        return Ok(Json::Array(items));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let Ok(k) = k.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "{}: keys must be strings, not {}",
                    path(),
                    type_name(&k)
                )));
            };
            let k = k.to_cow()?.into_owned();
            let v = json_value(&v, &mut || format!("{}[{k:?}]", path()), depth + 1)?;
            map.insert(k, v);
        }
        return Ok(Json::Object(map));
    }
    Err(PyTypeError::new_err(format!(
        "{}: {} is not JSON (use str, int, float, bool, None, list or dict)",
        path(),
        type_name(obj)
    )))
}

/// JSON as the Python object `json.loads` would give.
pub(crate) fn from_json<'py>(py: Python<'py>, v: &Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Json::String(s) => PyString::new(py, s).into_any(),
        Json::Array(a) => {
            let list = PyList::empty(py);
            for item in a {
                list.append(from_json(py, item)?)?;
            }
            list.into_any()
        }
        Json::Object(o) => {
            let dict = PyDict::new(py);
            for (k, v) in o {
                dict.set_item(k, from_json(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A number as `json.loads` would give it: an int when integral (and exactly representable),
/// else a float.
pub(crate) fn number<'py>(py: Python<'py>, n: f64) -> PyResult<Bound<'py, PyAny>> {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        Ok((n as i64).into_pyobject(py)?.into_any())
    } else {
        Ok(n.into_pyobject(py)?.into_any())
    }
}

/// A flag's value as a Python object.
pub(crate) fn flag_value<'py>(py: Python<'py>, v: &FlagValue) -> PyResult<Bound<'py, PyAny>> {
    match v {
        FlagValue::Bool(b) => Ok(PyBool::new(py, *b).to_owned().into_any()),
        FlagValue::String(s) => Ok(PyString::new(py, s).into_any()),
        FlagValue::Number(n) => number(py, *n),
        FlagValue::Json(j) => from_json(py, j),
    }
}
