//! API keys: generation, hashing, and checking a request's key.
//!
//! A key looks like `ofk_<id>_<secret>`: `id` is public (it names the key in the audit log and
//! the key list), `secret` is 32 random base62 characters. Only SHA-256 of the whole key is
//! stored. A request's key is found by its id and its hash compared in constant time. A key
//! given through `OPTIFORK_ADMIN_KEY` may be any string of 16 characters or more; its id is
//! derived from its hash (`env-<10 hex digits>`).
//!
//! Keys are checked against an in-memory copy of the key table, refreshed whenever this
//! server changes a key and periodically (other replicas may have).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::StatusCode;
use optifork_storage::{ApiKey, KeyScope, NewApiKey, Storage, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::web::{ApiError, Request};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The shortest key accepted through `OPTIFORK_ADMIN_KEY`.
pub const MIN_SEED_KEY_LEN: usize = 16;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The key's id, or `insecure-dev-mode` when authentication is off.
    pub key_id: String,
    /// What the key may do.
    pub scope: KeyScope,
    /// For SDK keys, the environment the key is bound to.
    pub environment: Option<String>,
}

impl Principal {
    /// The principal used when authentication is off.
    pub fn dev() -> Principal {
        Principal {
            key_id: "insecure-dev-mode".into(),
            scope: KeyScope::Admin,
            environment: None,
        }
    }
}

fn random_base62(n: usize) -> String {
    (0..n)
        .map(|_| char::from(BASE62[rand::random_range(0..BASE62.len())]))
        .collect()
}

/// SHA-256 of a whole key.
pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The id a key is stored under: the `<id>` of `ofk_<id>_<secret>`, else derived from the
/// key's hash.
pub fn key_id(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("ofk_")
        && let Some((id, secret)) = rest.split_once('_')
        && !id.is_empty()
        && !secret.is_empty()
    {
        return id.to_owned();
    }
    format!("env-{}", &hex::encode(hash_key(key))[..10])
}

/// A new random key and what to store for it.
pub fn generate_key(
    name: &str,
    scope: KeyScope,
    environment: Option<String>,
) -> (String, NewApiKey) {
    let id = random_base62(12);
    let key = format!("ofk_{id}_{}", random_base62(32));
    let record = NewApiKey {
        id,
        name: name.to_owned(),
        scope,
        environment,
        secret_hash: hash_key(&key),
    };
    (key, record)
}

/// The live key table, checked on every request.
pub struct KeyStore {
    keys: ArcSwap<HashMap<String, ApiKey>>,
}

impl KeyStore {
    /// An empty table (fill it with [`KeyStore::reload`]).
    pub fn new() -> KeyStore {
        KeyStore {
            keys: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Re-reads every key from storage.
    pub async fn reload(&self, storage: &dyn Storage) -> Result<(), StoreError> {
        let keys = storage.list_api_keys().await?;
        self.keys.store(Arc::new(
            keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
        ));
        Ok(())
    }

    /// Replaces the table (tests; normally [`KeyStore::reload`]).
    pub fn replace(&self, keys: Vec<ApiKey>) {
        self.keys.store(Arc::new(
            keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
        ));
    }

    /// A key by id (revoked or not).
    pub fn get(&self, id: &str) -> Option<ApiKey> {
        self.keys.load().get(id).cloned()
    }

    /// Whether any key (revoked or not) exists.
    pub fn is_empty(&self) -> bool {
        self.keys.load().is_empty()
    }

    /// Whether the key is present and not revoked.
    pub fn is_active(&self, id: &str) -> bool {
        self.keys
            .load()
            .get(id)
            .is_some_and(|k| k.revoked_at.is_none())
    }

    /// Checks a presented key: the principal, or 401.
    pub fn verify(&self, presented: &str) -> Result<Principal, ApiError> {
        let id = key_id(presented);
        let keys = self.keys.load();
        let stored = keys.get(&id);
        // Hash even when the id is unknown so that timing does not reveal which ids exist.
        let hash = hash_key(presented);
        match stored {
            Some(k) if bool::from(hash.ct_eq(&k.secret_hash)) => {
                if k.revoked_at.is_some() {
                    return Err(unauthorized("this API key has been revoked"));
                }
                Ok(Principal {
                    key_id: k.id.clone(),
                    scope: k.scope,
                    environment: k.environment.clone(),
                })
            }
            _ => Err(unauthorized("the API key is not valid")),
        }
    }
}

impl Default for KeyStore {
    fn default() -> KeyStore {
        KeyStore::new()
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).with_header(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"optifork\""),
    )
}

/// The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
pub fn presented_key(req: &Request) -> Option<&str> {
    if let Some(auth) = req.header("authorization") {
        let (scheme, token) = auth.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    req.header("x-api-key")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The principal of a request, or 401.
pub fn authenticate(keys: &KeyStore, req: &Request) -> Result<Principal, ApiError> {
    match presented_key(req) {
        Some(key) => keys.verify(key),
        None => Err(unauthorized(
            "this route needs an API key: send Authorization: Bearer <key>",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_carry_their_id() {
        let (key, record) = generate_key("ci", KeyScope::Sdk, Some("production".into()));
        assert!(key.starts_with("ofk_"));
        assert_eq!(key_id(&key), record.id);
        assert_eq!(record.secret_hash, hash_key(&key));
        assert_eq!(key.len(), 4 + 12 + 1 + 32);
    }

    #[test]
    fn free_form_keys_get_a_derived_id() {
        let id = key_id("my-automation-secret-123");
        assert!(id.starts_with("env-") && id.len() == 14, "{id}");
        assert_eq!(id, key_id("my-automation-secret-123"));
        assert_ne!(id, key_id("my-automation-secret-124"));
    }
}
