//! `NativeEngine`: a compiled ruleset evaluated offline (wrapped by `Engine` in `index.js`).

use std::sync::Arc;

use napi_derive::napi;
use optifork_sdk::{Engine, Ruleset, optifork_core};

use crate::errors::{self, Result};
use crate::eval::evaluation_methods;

/// A compiled ruleset.
#[napi]
pub struct NativeEngine {
    engine: Arc<Engine>,
}

#[napi]
impl NativeEngine {
    /// Compiles a ruleset's JSON text; throws `ERR_OPTIFORK_INVALID_RULESET` with the JSON
    /// path of the culprit when it does not parse or compile.
    #[napi(factory)]
    pub fn from_json(json: String) -> Result<NativeEngine> {
        errors::guard(|| {
            optifork_core::from_json_str::<Ruleset>(&json)
                .and_then(|r| Engine::compile(&r))
                .map(|engine| NativeEngine {
                    engine: Arc::new(engine),
                })
                .map_err(|e| errors::invalid_ruleset("", &e))
        })
    }

    /// The ruleset's version.
    #[napi(getter)]
    pub fn version(&self) -> f64 {
        self.engine.version() as f64
    }

    /// The ruleset's environment.
    #[napi(getter)]
    pub fn environment(&self) -> String {
        self.engine.environment().to_owned()
    }

    /// A handle for the fast evaluation functions (`fastIsEnabled`, `fastGetBool`).
    #[napi]
    pub fn handle<'env>(
        &self,
        env: &'env napi::Env,
    ) -> Result<napi::bindgen_prelude::Unknown<'env>> {
        crate::fast::handle_value(env, crate::fast::Source::Engine(Arc::clone(&self.engine)))
    }

    /// The names of every flag, in ruleset order.
    #[napi]
    pub fn flag_names(&self) -> Vec<String> {
        self.engine.flag_names().map(str::to_owned).collect()
    }
}

evaluation_methods!(NativeEngine, this => &*this.engine);
