//! Admin UI sessions: a stateless signed cookie, CSRF tokens and same-origin checks.
//!
//! The cookie is `ofk_session=<key_id>.<expiry>.<mac>`: the id of the admin API key that
//! logged in, the Unix time the session ends, and HMAC-SHA256 of both keyed by the key's
//! stored `secret_hash`. Nothing is stored server-side, so any replica can check a session;
//! revoking the key ends its sessions (the key is no longer active), and since the MAC key is
//! the hash of the secret, only a server holding the key table can mint a cookie.
//!
//! The CSRF token of a session is HMAC-SHA256 of the cookie value with a distinct label, keyed
//! the same way: it changes with each login, needs no storage, and cannot be derived from the
//! cookie without the key table. Every state-changing request carries it (a hidden `_csrf`
//! field, or an `X-CSRF-Token` header for `fetch()`); `Origin`/`Referer`, when present, must
//! name this host.

use hmac::{Hmac, KeyInit, Mac};
use optifork_storage::KeyScope;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::auth::KeyStore;
use crate::web::Request;

/// The session cookie's name.
pub const COOKIE: &str = "ofk_session";

/// How long a session lasts: 12 hours.
pub const LIFETIME_SECS: i64 = 12 * 3600;

const SESSION_LABEL: &[u8] = b"optifork-ui-session\0";
const CSRF_LABEL: &[u8] = b"optifork-ui-csrf\0";

/// A valid session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The admin key that logged in (the actor in the audit log).
    pub key_id: String,
    /// When the session ends (Unix seconds).
    pub expires: i64,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

/// Why a cookie is not a valid session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Not of the form `<id>.<expiry>.<mac>`.
    Malformed,
    /// No key with that id.
    UnknownKey,
    /// The key has been revoked.
    Revoked,
    /// The key is not an admin key.
    NotAdmin,
    /// The MAC does not match (tampered with, or signed by another key).
    BadSignature,
    /// The session has ended.
    Expired,
}

fn mac(secret_hash: &[u8], label: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret_hash)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(label);
    m.update(message);
    m.finalize().into_bytes().to_vec()
}

/// The cookie value of a session of key `key_id` ending at `expires`.
pub fn sign(key_id: &str, secret_hash: &[u8], expires: i64) -> String {
    let payload = format!("{key_id}.{expires}");
    let tag = hex::encode(mac(secret_hash, SESSION_LABEL, payload.as_bytes()));
    format!("{payload}.{tag}")
}

/// The CSRF token of a session cookie value.
pub fn csrf_token(secret_hash: &[u8], cookie_value: &str) -> String {
    hex::encode(mac(secret_hash, CSRF_LABEL, cookie_value.as_bytes()))
}

/// Checks a cookie value against the key table at time `now` (Unix seconds).
pub fn verify(value: &str, keys: &KeyStore, now: i64) -> Result<Session, Invalid> {
    let mut parts = value.rsplitn(3, '.');
    let (Some(tag), Some(expires), Some(key_id)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::Malformed);
    };
    let expires: i64 = expires.parse().map_err(|_| Invalid::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| Invalid::Malformed)?;
    if key_id.is_empty() {
        return Err(Invalid::Malformed);
    }
    let key = keys.get(key_id).ok_or(Invalid::UnknownKey)?;
    let expected = mac(
        &key.secret_hash,
        SESSION_LABEL,
        format!("{key_id}.{expires}").as_bytes(),
    );
    if !bool::from(expected.ct_eq(&tag)) {
        return Err(Invalid::BadSignature);
    }
    if key.revoked_at.is_some() {
        return Err(Invalid::Revoked);
    }
    if key.scope != KeyScope::Admin {
        return Err(Invalid::NotAdmin);
    }
    if expires <= now {
        return Err(Invalid::Expired);
    }
    Ok(Session {
        key_id: key_id.to_owned(),
        expires,
        csrf: csrf_token(&key.secret_hash, value),
    })
}

/// Whether a presented CSRF token is the session's (constant time).
pub fn csrf_matches(session: &Session, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// A cookie of a request.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the request came over HTTPS (directly or as a proxy says).
pub fn is_https(req: &Request) -> bool {
    req.header("x-forwarded-proto")
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for a `Path=/ui` cookie (HttpOnly, SameSite=Strict, Secure over
/// HTTPS). `max_age` 0 deletes it.
pub fn set_cookie(req: &Request, name: &str, value: &str, max_age: i64) -> String {
    let secure = if is_https(req) { "; Secure" } else { "" };
    format!("{name}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Whether `Origin` (else `Referer`), when the request carries one, names this server's host.
/// Browsers send `Origin` on every cross-site POST, so a forged form from another site fails
/// here even before the CSRF token is checked.
pub fn same_origin(req: &Request) -> bool {
    let Some(host) = req
        .header("x-forwarded-host")
        .or_else(|| req.header("host"))
        .and_then(|h| h.split(',').next())
        .map(str::trim)
    else {
        return true;
    };
    let source = match req.header("origin") {
        Some(o) => o,
        None => match req.header("referer") {
            Some(r) => r,
            None => return true,
        },
    };
    let Some((_, rest)) = source.split_once("://") else {
        return false; // `Origin: null` (sandboxed or file: pages) and anything odd
    };
    let authority = rest.split('/').next().unwrap_or("");
    authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use optifork_storage::ApiKey;

    fn key(id: &str, scope: KeyScope, revoked: bool) -> ApiKey {
        ApiKey {
            id: id.into(),
            name: id.into(),
            scope,
            environment: None,
            secret_hash: crate::auth::hash_key(&format!("secret-of-{id}")),
            created_at: chrono::Utc::now(),
            revoked_at: revoked.then(chrono::Utc::now),
        }
    }

    fn store() -> KeyStore {
        let keys = KeyStore::new();
        keys.replace(vec![
            key("admin1", KeyScope::Admin, false),
            key("admin2", KeyScope::Admin, false),
            key("gone", KeyScope::Admin, true),
            key("sdk1", KeyScope::Sdk, false),
        ]);
        keys
    }

    fn cookie_for(keys: &KeyStore, id: &str, expires: i64) -> String {
        sign(id, &keys.get(id).unwrap().secret_hash, expires)
    }

    #[test]
    fn a_signed_cookie_verifies_until_it_expires() {
        let keys = store();
        let value = cookie_for(&keys, "admin1", 1_000);
        let s = verify(&value, &keys, 999).unwrap();
        assert_eq!(s.key_id, "admin1");
        assert_eq!(s.expires, 1_000);
        assert_eq!(verify(&value, &keys, 1_000), Err(Invalid::Expired));
        assert_eq!(verify(&value, &keys, 5_000), Err(Invalid::Expired));
    }

    #[test]
    fn tampering_is_detected() {
        let keys = store();
        let value = cookie_for(&keys, "admin1", 1_000);
        // A later expiry with the old MAC.
        let extended = value.replacen(".1000.", ".9000.", 1);
        assert_eq!(verify(&extended, &keys, 10), Err(Invalid::BadSignature));
        // Another key's id with this key's MAC.
        let other = value.replacen("admin1", "admin2", 1);
        assert_eq!(verify(&other, &keys, 10), Err(Invalid::BadSignature));
        // A flipped bit in the MAC.
        let mut bytes = value.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(verify(&flipped, &keys, 10), Err(Invalid::BadSignature));
        for junk in [
            "",
            "admin1",
            "admin1.1000",
            "admin1.x.00",
            ".1000.00",
            "a.1.zz",
        ] {
            assert!(verify(junk, &keys, 10).is_err(), "{junk}");
        }
        assert_eq!(
            verify("nobody.1000.00", &keys, 10),
            Err(Invalid::UnknownKey)
        );
    }

    #[test]
    fn revoked_and_sdk_keys_have_no_session() {
        let keys = store();
        assert_eq!(
            verify(&cookie_for(&keys, "gone", 1_000), &keys, 10),
            Err(Invalid::Revoked)
        );
        assert_eq!(
            verify(&cookie_for(&keys, "sdk1", 1_000), &keys, 10),
            Err(Invalid::NotAdmin)
        );
        // Revoking a key ends the sessions it already has.
        let value = cookie_for(&keys, "admin2", 1_000);
        assert!(verify(&value, &keys, 10).is_ok());
        keys.replace(vec![key("admin2", KeyScope::Admin, true)]);
        assert_eq!(verify(&value, &keys, 10), Err(Invalid::Revoked));
    }

    #[test]
    fn csrf_tokens_are_per_session() {
        let keys = store();
        let a = verify(&cookie_for(&keys, "admin1", 1_000), &keys, 10).unwrap();
        let b = verify(&cookie_for(&keys, "admin1", 2_000), &keys, 10).unwrap();
        assert_ne!(a.csrf, b.csrf);
        assert!(csrf_matches(&a, Some(&a.csrf)));
        assert!(!csrf_matches(&a, Some(&b.csrf)));
        assert!(!csrf_matches(&a, None));
        assert!(!csrf_matches(&a, Some("")));
        // The token is not the cookie's MAC.
        assert!(!cookie_for(&keys, "admin1", 1_000).ends_with(&a.csrf));
    }

    fn request(headers: &[(&'static str, &str)]) -> Request {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, http::HeaderValue::from_str(v).unwrap());
        }
        Request {
            method: http::Method::POST,
            segments: vec!["ui".into()],
            query: vec![],
            headers: map,
            remote: None,
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn origin_must_be_this_host_when_given() {
        let host = ("host", "admin.example.com:8000");
        assert!(same_origin(&request(&[host])));
        assert!(same_origin(&request(&[
            host,
            ("origin", "https://admin.example.com:8000")
        ])));
        assert!(!same_origin(&request(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&request(&[host, ("origin", "null")])));
        assert!(same_origin(&request(&[
            host,
            ("referer", "http://admin.example.com:8000/ui/flags")
        ])));
        assert!(!same_origin(&request(&[
            host,
            ("referer", "http://admin.example.com.evil.example/ui")
        ])));
    }

    #[test]
    fn cookies_are_read_and_written() {
        let req = request(&[("cookie", "a=1; ofk_session=x.1.ff; b=2")]);
        assert_eq!(cookie(&req, COOKIE), Some("x.1.ff"));
        assert_eq!(cookie(&req, "c"), None);
        let set = set_cookie(&req, COOKIE, "v", 60);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(set.contains("Path=/ui") && !set.contains("Secure"));
        let tls = request(&[("x-forwarded-proto", "https")]);
        assert!(set_cookie(&tls, COOKIE, "v", 60).ends_with("; Secure"));
    }
}
