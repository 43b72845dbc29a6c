//! OptiFork for Node.js: the Node-API addon behind the `optifork` npm package, built with
//! napi-rs (`bindings/node/build.js`: `cargo build`, then a copy to `optifork.node`).
//! `index.js` wraps it in the public API (`Engine`, `Client`, error classes);
//! `openfeature.js` is the OpenFeature provider.
//!
//! * `NativeEngine` — a compiled ruleset evaluated offline ([`engine`]).
//! * `NativeClient` — an [`optifork_sdk::Client`]: a ruleset kept fresh from a server,
//!   exposures and events sent back; `waitUntilReady`, `flush` and `close` run on libuv's
//!   thread pool and return Promises; change listeners are thread-safe functions that do not
//!   keep the process alive ([`client`]).
//! * `bucket(salt, unit)` — the portable bucketing hash.
//!
//! Contexts are read straight from JS objects through Node-API ([`convert`], the only
//! `unsafe` code); errors carry a `code` that `index.js` maps to classes, and panics never
//! unwind into Node ([`errors`]).

mod client;
mod convert;
mod engine;
mod errors;
mod eval;
mod fast;

use napi::bindgen_prelude::Unknown;
use napi_derive::napi;

use crate::errors::Result;

/// The bucket (0–9999) of `unit` under `salt`: `XXH64(unit, seed = XXH64(salt, 0)) mod
/// 10000`, the hash behind every percentage rollout and experiment.
#[napi]
pub fn bucket(salt: Unknown<'_>, unit: Unknown<'_>) -> Result<u32> {
    errors::guard(|| {
        let salt = convert::name(eval::js(&salt), "salt")?;
        let unit = convert::name(eval::js(&unit), "unit")?;
        Ok(optifork_sdk::optifork_core::bucket(&salt, &unit))
    })
}

/// Adds the raw hot-path functions of [`fast`] to the exports.
#[napi(module_exports)]
pub fn init(exports: napi::bindgen_prelude::Object<'_>, env: napi::Env) -> napi::Result<()> {
    use napi::JsValue;
    fast::register(env.raw(), exports.raw())
}

/// Panics on purpose, inside the boundary's guard: lets the tests check that a Rust panic
/// surfaces as an `InternalError` rather than crashing Node.
#[napi]
pub fn panic_for_tests() -> Result<()> {
    errors::guard(|| panic!("a deliberate panic"))
}
