//! Rate limits: the seed's defaults (1000 API requests per hour per IP, 10,000 flag
//! evaluations per hour per user, 100 config fetches per hour per client), configurable.
//!
//! Fixed windows (`--rate-limit-window-secs`, an hour by default): a counter per (limit,
//! client, window); over the limit the request gets 429 with `Retry-After` set to the seconds
//! until the window ends. With Redis the counters live there (`INCR` + `EXPIRE`), so a limit
//! holds across replicas; without Redis, or while Redis fails, each replica counts on its own
//! (the limit then holds per replica).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, StatusCode};

use crate::replication::Redis;
use crate::settings::Settings;
use crate::web::ApiError;

/// Which limit a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Every API request, per client IP.
    Api,
    /// Flag evaluations, per user.
    Evaluations,
    /// Config fetches, per client.
    Configs,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Limit::Api => "api",
            Limit::Evaluations => "evaluations",
            Limit::Configs => "configs",
        }
    }
}

/// The rate limiter.
pub struct RateLimiter {
    window_secs: u64,
    api: u32,
    evaluations: u32,
    configs: u32,
    local: Mutex<HashMap<(Limit, String), (u64, u32)>>,
}

impl RateLimiter {
    /// A limiter with the configured limits.
    pub fn new(settings: &Settings) -> RateLimiter {
        RateLimiter {
            window_secs: settings.rate_limit_window_secs.max(1),
            api: settings.rate_limit_api,
            evaluations: settings.rate_limit_evaluations,
            configs: settings.rate_limit_configs,
            local: Mutex::new(HashMap::new()),
        }
    }

    fn limit_of(&self, limit: Limit) -> u32 {
        match limit {
            Limit::Api => self.api,
            Limit::Evaluations => self.evaluations,
            Limit::Configs => self.configs,
        }
    }

    /// Counts one request of `client` against `limit`: Ok, or 429 with `Retry-After`.
    pub async fn check(
        &self,
        redis: Option<&Redis>,
        limit: Limit,
        client: &str,
    ) -> Result<(), ApiError> {
        let max = self.limit_of(limit);
        if max == 0 {
            return Ok(());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let window = now / self.window_secs;
        let count = match redis {
            Some(r) => match self.count_in_redis(r, limit, client, window).await {
                Some(n) => n,
                None => self.count_locally(limit, client, window),
            },
            None => self.count_locally(limit, client, window),
        };
        if count <= u64::from(max) {
            return Ok(());
        }
        let retry_after = (window + 1) * self.window_secs - now;
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many {} requests: the limit is {max} per {} s; retry in {retry_after} s",
                limit.name(),
                self.window_secs
            ),
        )
        .with_header(
            http::header::RETRY_AFTER,
            HeaderValue::from_str(&retry_after.max(1).to_string())
                .unwrap_or(HeaderValue::from_static("1")),
        ))
    }

    fn count_locally(&self, limit: Limit, client: &str, window: u64) -> u64 {
        let Ok(mut map) = self.local.lock() else {
            return 0; // a poisoned lock never blocks traffic
        };
        if map.len() > 200_000 {
            map.retain(|_, (w, _)| *w == window);
        }
        let slot = map.entry((limit, client.to_owned())).or_insert((window, 0));
        if slot.0 != window {
            *slot = (window, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        u64::from(slot.1)
    }

    async fn count_in_redis(
        &self,
        redis: &Redis,
        limit: Limit,
        client: &str,
        window: u64,
    ) -> Option<u64> {
        let mut conn = redis.pool.get().await.ok()?;
        let key = redis.key(&format!("rl:{}:{client}:{window}", limit.name()));
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.window_secs * 2)
            .ignore()
            .query_async(&mut *conn)
            .await
            .map_err(|e| tracing::debug!("rate limit through Redis failed, counting locally: {e}"))
            .ok()?;
        Some(count)
    }
}
