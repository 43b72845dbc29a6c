//! The hot path: `isEnabled` and `getBool` as raw Node-API functions.
//!
//! napi-rs's class methods pay for bookkeeping (argument borrow tracking behind a global
//! lock) that costs more than the evaluation itself. These two functions skip it: they take
//! a *handle* (a type-tagged external holding the engine or client) and the context either
//! as an object or, flattened by `index.js`, as `key, value` argument pairs, which one
//! `napi_get_cb_info` call reads at once:
//!
//! ```text
//! isEnabled(handle, flag)                      // no context
//! isEnabled(handle, flag, context)             // an object, undefined or null
//! isEnabled(handle, flag, k1, v1, k2, v2, ...) // own enumerable properties, flattened
//! getBool(handle, default, flag, ...)          // the same, after the default
//! ```
//!
//! A key may also be a number: the id `index.js` gave that attribute name with
//! `fastInternKey(id, name)` the first time it saw it, so that names are not read out of V8
//! on every call (a `Map` lookup in JS costs less than copying a string through Node-API).
#![allow(unsafe_code)]

use std::ffi::{CString, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Arc;

use compact_str::CompactString;
use napi::sys;
use optifork_sdk::{Client, Context, Engine};

use crate::convert::{self, Js};
use crate::errors::{self, Error};

thread_local! {
    /// Attribute names by the ids `index.js` gave them (per thread: one per JS isolate).
    static KEYS: std::cell::RefCell<Vec<CompactString>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most attribute names `index.js` interns (others are passed as strings).
const MAX_KEYS: u32 = 4096;

/// A context key: an interned id, or a string.
fn key(env: sys::napi_env, value: sys::napi_value) -> Result<CompactString, Error> {
    let mut id = 0u32;
    // SAFETY: `env` and `value` belong to the current call.
    let status = unsafe { sys::napi_get_value_uint32(env, value, &mut id) };
    if status == sys::Status::napi_ok {
        return KEYS
            .with(|k| k.borrow().get(id as usize).cloned())
            .ok_or_else(|| errors::invalid_arg(format!("unknown attribute id {id}")));
    }
    convert::name(Js { env, value }, "a context key")
}

/// What a handle holds.
pub(crate) enum Source {
    Engine(Arc<Engine>),
    Client(Client),
}

impl Source {
    fn is_enabled(&self, flag: &str, ctx: &Context) -> bool {
        match self {
            Source::Engine(e) => e.is_enabled(flag, ctx),
            Source::Client(c) => c.is_enabled(flag, ctx),
        }
    }

    fn bool_value(&self, flag: &str, ctx: &Context, default: bool) -> bool {
        match self {
            Source::Engine(e) => e.bool_value(flag, ctx, default),
            Source::Client(c) => c.bool_value(flag, ctx, default),
        }
    }
}

/// Marks OptiFork's handles, so that no other external is ever read as one.
const TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x4f50_5449_464f_524b, // "OPTIFORK"
    upper: 0x4841_4e44_4c45_0001, // "HANDLE", 1
};

/// The most context attributes passed flattened (`index.js` passes bigger contexts as an
/// object).
pub(crate) const MAX_PAIRS: usize = 16;
const MAX_ARGS: usize = 3 + 2 * MAX_PAIRS;

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Box<Source>` leaked by `handle`, finalized exactly once.
    let source = unsafe { Box::from_raw(data.cast::<Source>()) };
    // Dropping the last clone of a client closes it; never let a panic unwind into Node.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(source)));
}

/// A new handle holding `source`.
pub(crate) fn handle(env: sys::napi_env, source: Source) -> Result<sys::napi_value, Error> {
    let data = Box::into_raw(Box::new(source));
    let mut value = ptr::null_mut();
    // SAFETY: `env` belongs to the current call; on success Node owns `data` and frees it
    // through `finalize`.
    let status = unsafe {
        sys::napi_create_external(
            env,
            data.cast(),
            Some(finalize),
            ptr::null_mut(),
            &mut value,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: Node did not take `data`.
        drop(unsafe { Box::from_raw(data) });
        return Err(errors::invalid_arg(format!(
            "could not create a handle (Node-API status {status})"
        )));
    }
    // SAFETY: `value` was just created in this call.
    let status = unsafe { sys::napi_type_tag_object(env, value, &TAG) };
    if status != sys::Status::napi_ok {
        return Err(errors::invalid_arg(format!(
            "could not tag a handle (Node-API status {status})"
        )));
    }
    Ok(value)
}

/// A new handle holding `source`, as a value napi-rs can return.
pub(crate) fn handle_value(
    env: &napi::Env,
    source: Source,
) -> crate::errors::Result<napi::bindgen_prelude::Unknown<'_>> {
    let value = handle(env.raw(), source)?;
    // SAFETY: `value` was just created in `env`.
    Ok(unsafe { napi::bindgen_prelude::Unknown::from_raw_unchecked(env.raw(), value) })
}

/// The source a handle holds, after checking its tag.
///
/// # Safety
/// `env` and `value` belong to the current call. The returned reference lives as long as the
/// handle, which the caller's arguments keep alive for the duration of the call.
unsafe fn source<'a>(env: sys::napi_env, value: sys::napi_value) -> Result<&'a Source, Error> {
    let mut tagged = false;
    // SAFETY: per the function's contract; a non-object value is reported by status.
    let status = unsafe { sys::napi_check_object_type_tag(env, value, &TAG, &mut tagged) };
    if status != sys::Status::napi_ok || !tagged {
        return Err(errors::invalid_arg(
            "the first argument must be an OptiFork handle".into(),
        ));
    }
    let mut data = ptr::null_mut();
    // SAFETY: a tagged value is one of our externals.
    let status = unsafe { sys::napi_get_value_external(env, value, &mut data) };
    if status != sys::Status::napi_ok || data.is_null() {
        return Err(errors::invalid_arg("a broken OptiFork handle".into()));
    }
    // SAFETY: our externals hold a live `Box<Source>` until finalized.
    Ok(unsafe { &*data.cast::<Source>() })
}

/// The context from the arguments after the flag: none, one (an object, `undefined` or
/// `null`), or `key, value` pairs.
fn context(env: sys::napi_env, args: &[sys::napi_value]) -> Result<Context, Error> {
    match args.len() {
        0 => Ok(Context::default()),
        1 => convert::context(Js {
            env,
            value: args[0],
        }),
        n if n % 2 == 0 => {
            let mut attrs: Vec<(CompactString, optifork_sdk::Value)> = Vec::with_capacity(n / 2);
            for pair in args.chunks_exact(2) {
                let name = key(env, pair[0])?;
                let value = Js {
                    env,
                    value: pair[1],
                };
                if let Some(v) = convert::attribute(value, &mut || format!("context.{name}"), 0)? {
                    attrs.push((name, v));
                }
            }
            Ok(Context::from_attributes(attrs))
        }
        _ => Err(errors::invalid_arg(
            "the context must be an object or key/value pairs".into(),
        )),
    }
}

/// Throws `e` into JS (a `TypeError` for bad arguments, an `Error` otherwise, each with its
/// `code`) and returns the null value Node-API expects after a throw.
fn throw(env: sys::napi_env, e: Error) -> sys::napi_value {
    let code = CString::new(e.status.replace('\0', "")).unwrap_or_default();
    let message = CString::new(e.reason.replace('\0', "")).unwrap_or_default();
    // SAFETY: `env` belongs to the current call; both strings are NUL-terminated.
    unsafe {
        if e.status == "ERR_INVALID_ARG_TYPE" {
            sys::napi_throw_type_error(env, code.as_ptr(), message.as_ptr());
        } else {
            sys::napi_throw_error(env, code.as_ptr(), message.as_ptr());
        }
    }
    ptr::null_mut()
}

/// Reads the arguments, runs `f` on the handle's source, and returns its boolean; errors and
/// panics are thrown as JS errors.
///
/// # Safety
/// `env` and `info` are those Node-API passed to the calling callback.
unsafe fn boolean_call(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    with_default: bool,
    f: impl FnOnce(&Source, &str, &Context, bool) -> bool,
) -> sys::napi_value {
    let run = AssertUnwindSafe(|| -> Result<bool, Error> {
        let mut argv = [ptr::null_mut(); MAX_ARGS];
        let mut argc = MAX_ARGS;
        // SAFETY: `argv` has room for `argc` values; Node writes at most that many and sets
        // `argc` to the number passed.
        let status = unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut argc,
                argv.as_mut_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if status != sys::Status::napi_ok {
            return Err(errors::invalid_arg(format!(
                "reading the arguments (Node-API status {status})"
            )));
        }
        if argc > MAX_ARGS {
            return Err(errors::invalid_arg(
                "too many arguments: pass the context as an object".into(),
            ));
        }
        let args = &argv[..argc];
        let skip = if with_default { 3 } else { 2 };
        if args.len() < skip {
            return Err(errors::invalid_arg("missing arguments".into()));
        }
        // SAFETY: the handle is an argument of this call.
        let source = unsafe { source(env, args[0])? };
        let default = if with_default {
            let mut b = false;
            // SAFETY: as above.
            let status = unsafe { sys::napi_get_value_bool(env, args[1], &mut b) };
            if status != sys::Status::napi_ok {
                return Err(errors::invalid_arg("defaultValue must be a boolean".into()));
            }
            b
        } else {
            false
        };
        let flag = convert::name(
            Js {
                env,
                value: args[skip - 1],
            },
            "flag",
        )?;
        let ctx = context(env, &args[skip..])?;
        Ok(f(source, &flag, &ctx, default))
    });
    match catch_unwind(run) {
        Ok(Ok(b)) => {
            let mut out = ptr::null_mut();
            // SAFETY: `env` belongs to the current call.
            unsafe { sys::napi_get_boolean(env, b, &mut out) };
            out
        }
        Ok(Err(e)) => throw(env, e),
        Err(payload) => throw(
            env,
            napi::Error::new(
                "ERR_OPTIFORK_INTERNAL".to_owned(),
                errors::panic_message(&*payload),
            ),
        ),
    }
}

unsafe extern "C" fn is_enabled(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: Node-API calls this callback with its own `env` and `info`.
    unsafe { boolean_call(env, info, false, |s, flag, ctx, _| s.is_enabled(flag, ctx)) }
}

unsafe extern "C" fn get_bool(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `is_enabled`.
    unsafe {
        boolean_call(env, info, true, |s, flag, ctx, default| {
            s.bool_value(flag, ctx, default)
        })
    }
}

unsafe extern "C" fn intern_key(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let run = AssertUnwindSafe(|| -> Result<(), Error> {
        let mut argv = [ptr::null_mut(); 2];
        let mut argc = 2usize;
        // SAFETY: `argv` has room for two values.
        let status = unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut argc,
                argv.as_mut_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if status != sys::Status::napi_ok || argc < 2 {
            return Err(errors::invalid_arg("fastInternKey(id, name)".into()));
        }
        let mut id = 0u32;
        // SAFETY: as above.
        let status = unsafe { sys::napi_get_value_uint32(env, argv[0], &mut id) };
        if status != sys::Status::napi_ok || id >= MAX_KEYS {
            return Err(errors::invalid_arg(format!(
                "the id must be an integer below {MAX_KEYS}"
            )));
        }
        let name = convert::name(
            Js {
                env,
                value: argv[1],
            },
            "name",
        )?;
        KEYS.with(|k| {
            let mut k = k.borrow_mut();
            let i = id as usize;
            if k.len() <= i {
                k.resize(i + 1, CompactString::default());
            }
            k[i] = name;
        });
        Ok(())
    });
    match catch_unwind(run) {
        Ok(Ok(())) => ptr::null_mut(),
        Ok(Err(e)) => throw(env, e),
        Err(payload) => throw(
            env,
            napi::Error::new(
                "ERR_OPTIFORK_INTERNAL".to_owned(),
                errors::panic_message(&*payload),
            ),
        ),
    }
}

/// Adds `fastIsEnabled`, `fastGetBool` and `fastInternKey` to the module's exports.
pub(crate) fn register(env: sys::napi_env, exports: sys::napi_value) -> napi::Result<()> {
    type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;
    let functions: [(&std::ffi::CStr, Callback); 3] = [
        (c"fastIsEnabled", is_enabled),
        (c"fastGetBool", get_bool),
        (c"fastInternKey", intern_key),
    ];
    for (name, cb) in functions {
        let mut f = ptr::null_mut();
        // SAFETY: `env` and `exports` are the module's, during its initialization.
        let status = unsafe {
            sys::napi_create_function(
                env,
                name.as_ptr(),
                name.count_bytes() as isize,
                Some(cb),
                ptr::null_mut(),
                &mut f,
            )
        };
        if status == sys::Status::napi_ok {
            // SAFETY: as above.
            unsafe { sys::napi_set_named_property(env, exports, name.as_ptr(), f) };
        } else {
            return Err(napi::Error::from_reason(format!(
                "could not register {name:?} (Node-API status {status})"
            )));
        }
    }
    Ok(())
}
