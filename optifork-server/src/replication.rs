//! Several replicas acting as one, through Redis (optional).
//!
//! After every write a replica caches the environment's serialized ruleset in Redis
//! (`<prefix>:ruleset:<env>`) and publishes `<env>:<version>` on `<prefix>:changes`. Every
//! replica subscribes; one that sees a version newer than its own loads the ruleset from the
//! Redis cache (falling back to the database when the cache holds another version) and swaps
//! it in, which also pushes it to that replica's SSE streams. API-key changes are published as
//! `keys` and make every replica reload its key table.
//!
//! Messages can be missed (Redis restarts, a replica's connection drops), so a replica catches
//! up by comparing versions with the database whenever its subscription is (re)established,
//! and every `--db-poll-ms` in any case. Without Redis the periodic check alone keeps replicas
//! converging.

use std::sync::Arc;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use futures_util::StreamExt;
use optifork_core::Ruleset;

use crate::state::AppState;

/// A Redis connection pool plus this deployment's key prefix.
pub struct Redis {
    /// Pooled connections for commands (cache, publish, rate limits).
    pub pool: bb8::Pool<RedisConnectionManager>,
    client: redis::Client,
    prefix: String,
    subscribed: std::sync::atomic::AtomicBool,
}

impl Redis {
    /// Connects lazily: the server starts (and serves) even when Redis is down.
    pub fn new(url: &str, prefix: &str) -> Result<Redis, String> {
        let manager = RedisConnectionManager::new(url).map_err(|e| format!("redis url: {e}"))?;
        let pool = bb8::Pool::builder()
            .max_size(16)
            .connection_timeout(Duration::from_millis(500))
            .retry_connection(false)
            .build_unchecked(manager);
        let client = redis::Client::open(url).map_err(|e| format!("redis url: {e}"))?;
        Ok(Redis {
            pool,
            client,
            prefix: prefix.to_owned(),
            subscribed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether this replica currently receives change announcements.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A key under this deployment's prefix.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    fn channel(&self) -> String {
        self.key("changes")
    }

    /// Caches a ruleset and announces its version. Failures are logged: replicas still
    /// converge through their periodic check.
    pub async fn announce_ruleset(&self, environment: &str, version: i64, json: &[u8]) {
        let result: Result<(), String> = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            redis::pipe()
                .cmd("SET")
                .arg(self.key(&format!("ruleset:{environment}")))
                .arg(json)
                .ignore()
                .cmd("PUBLISH")
                .arg(self.channel())
                .arg(format!("{environment}:{version}"))
                .ignore()
                .query_async::<()>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(environment, version, "announcing through Redis failed: {e}");
        }
    }

    /// Tells the other replicas that API keys changed.
    pub async fn announce_keys(&self) {
        let result: Result<(), String> = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            redis::cmd("PUBLISH")
                .arg(self.channel())
                .arg("keys")
                .query_async::<()>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!("announcing a key change through Redis failed: {e}");
        }
    }

    /// The cached ruleset of an environment, if it is there and parses.
    async fn cached_ruleset(&self, environment: &str) -> Option<Ruleset> {
        let mut conn = self.pool.get().await.ok()?;
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(&format!("ruleset:{environment}")))
            .query_async(&mut *conn)
            .await
            .ok()?;
        serde_json::from_slice(&bytes?).ok()
    }
}

/// Follows the change channel for the life of the process, reconnecting with backoff.
pub async fn follow(state: Arc<AppState>) {
    let Some(redis) = state.redis.as_ref() else {
        return;
    };
    let mut delay = Duration::from_millis(100);
    loop {
        match subscribe(redis).await {
            Ok(mut pubsub) => {
                delay = Duration::from_millis(100);
                redis
                    .subscribed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::info!("subscribed to Redis ruleset changes");
                // Anything announced while we were not listening: compare with the database.
                state.catch_up().await;
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    handle(&state, redis, &payload).await;
                }
                redis
                    .subscribed
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("lost the Redis subscription; reconnecting");
            }
            Err(e) => tracing::debug!("subscribing to Redis failed: {e}"),
        }
        let mut shutdown = state.shutdown_receiver();
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe(redis: &Redis) -> Result<redis::aio::PubSub, String> {
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), redis.client.get_async_pubsub())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    pubsub
        .subscribe(redis.channel())
        .await
        .map_err(|e| e.to_string())?;
    Ok(pubsub)
}

async fn handle(state: &AppState, redis: &Redis, payload: &str) {
    if payload == "keys" {
        if let Err(e) = state.keys.reload(&*state.storage).await {
            tracing::warn!("reloading API keys: {e}");
        }
        return;
    }
    let Some((environment, version)) = payload.rsplit_once(':') else {
        return;
    };
    let Ok(version) = version.parse::<i64>() else {
        return;
    };
    let live = state.snapshot(environment).map(|s| s.version).ok();
    if live.is_some_and(|v| v >= version) {
        return; // our own announcement, or an old one
    }
    // The cached ruleset is the one announced unless a newer write overtook it; otherwise
    // read the database.
    if let Some(ruleset) = redis.cached_ruleset(environment).await
        && ruleset.version == u64::try_from(version).unwrap_or(0)
        && state.install(ruleset)
    {
        return;
    }
    if let Err(e) = state.reload(environment).await {
        tracing::warn!(environment, "reloading after an announcement: {e}");
    }
}
