//! The server's shared state: storage, keys, and one live snapshot per environment.
//!
//! A snapshot is everything evaluation and SDK sync need for one ruleset version: the
//! compiled engine, the ruleset serialized once, and its gzip compressed once (on first
//! request). Snapshots are swapped atomically (`ArcSwap`) after every write, so evaluation
//! routes never touch the database and never wait for a writer.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;
use optifork_core::{Engine, Ruleset};
use optifork_storage::{Storage, StoreError};
use tokio::sync::broadcast;

use crate::auth::KeyStore;
use crate::ingest::Ingest;
use crate::settings::Settings;
use crate::web::ApiError;

/// One environment's ruleset at one version, ready to serve.
pub struct Snapshot {
    /// The environment.
    pub environment: String,
    /// The ruleset version (the ETag of `/sdk/v1/ruleset`).
    pub version: i64,
    /// The compiled ruleset.
    pub engine: Engine,
    /// The ruleset as JSON, serialized once.
    pub json: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Snapshot {
    /// Compiles and serializes a ruleset.
    pub fn build(ruleset: &Ruleset) -> Result<Snapshot, String> {
        let engine = Engine::compile(ruleset).map_err(|e| e.to_string())?;
        let json = serde_json::to_vec(ruleset).map_err(|e| e.to_string())?;
        Ok(Snapshot {
            environment: ruleset.environment.clone(),
            version: i64::try_from(ruleset.version).unwrap_or(i64::MAX),
            engine,
            json: Bytes::from(json),
            gzip: OnceLock::new(),
        })
    }

    /// The ruleset JSON, gzip-compressed (computed once per snapshot).
    pub fn gzip(&self) -> &Bytes {
        self.gzip.get_or_init(|| {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(self.json.len() / 4),
                flate2::Compression::default(),
            );
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(&self.json);
            Bytes::from(enc.finish().unwrap_or_default())
        })
    }
}

/// A ruleset change, as announced to listeners (SSE streams, replicas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesetChanged {
    /// The environment.
    pub environment: String,
    /// Its new version.
    pub version: i64,
}

/// Everything handlers share.
pub struct AppState {
    /// Command-line settings.
    pub settings: Settings,
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// The API key table.
    pub keys: KeyStore,
    /// Exposures logged by evaluation routes, written in batches.
    pub ingest: Ingest,
    envs: ArcSwap<HashMap<String, Arc<ArcSwap<Snapshot>>>>,
    changes: broadcast::Sender<RulesetChanged>,
    /// Open SSE streams (a gauge for /metrics).
    pub open_streams: std::sync::atomic::AtomicI64,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Redis, when configured.
    pub redis: Option<crate::replication::Redis>,
    /// Rate limits.
    pub limiter: crate::ratelimit::RateLimiter,
    /// Request counters and latency histograms.
    pub metrics: crate::metrics::Metrics,
    /// Serializes this process's entity writes (read-merge-write of an update included).
    /// Writers on other replicas are kept consistent by the storage transaction and If-Match.
    pub write_lock: tokio::sync::Mutex<()>,
}

impl AppState {
    /// State over opened storage; call [`AppState::load_all`] before serving.
    pub fn new(
        settings: Settings,
        storage: Arc<dyn Storage>,
        ingest: Ingest,
        redis: Option<crate::replication::Redis>,
    ) -> AppState {
        AppState {
            limiter: crate::ratelimit::RateLimiter::new(&settings),
            metrics: crate::metrics::Metrics::new(),
            redis,
            settings,
            storage,
            keys: KeyStore::new(),
            ingest,
            envs: ArcSwap::from_pointee(HashMap::new()),
            changes: broadcast::channel(1024).0,
            write_lock: tokio::sync::Mutex::new(()),
            open_streams: std::sync::atomic::AtomicI64::new(0),
            shutdown: tokio::sync::watch::channel(false).0,
        }
    }

    /// Loads every environment's ruleset from storage.
    pub async fn load_all(&self) -> Result<(), StoreError> {
        for env in self.storage.list_environments().await? {
            self.reload(&env.name).await?;
        }
        Ok(())
    }

    /// Re-reads one environment's ruleset and swaps it in, unless the live one is as new.
    pub async fn reload(&self, environment: &str) -> Result<(), StoreError> {
        let stored = self.storage.load_ruleset(environment).await?;
        self.install(stored.ruleset);
        Ok(())
    }

    /// Compiles a ruleset and makes it live, unless its environment's live ruleset is as new.
    /// Returns false when it does not compile (the previous one keeps serving).
    pub fn install(&self, ruleset: Ruleset) -> bool {
        let environment = ruleset.environment.clone();
        let snapshot = match Snapshot::build(&ruleset) {
            Ok(s) => s,
            Err(e) => {
                // Writes are validated, so this means the database (or cache) was edited by
                // hand. Keep serving the last good ruleset.
                tracing::error!(%environment, "ruleset does not compile; keeping the previous one: {e}");
                return false;
            }
        };
        let version = snapshot.version;
        let snapshot = Arc::new(snapshot);
        let slot = self.envs.load().get(&environment).cloned();
        let newer = match slot {
            Some(slot) => {
                let previous = slot.rcu(|current| {
                    if current.version >= version {
                        Arc::clone(current)
                    } else {
                        Arc::clone(&snapshot)
                    }
                });
                previous.version < version
            }
            None => {
                self.envs.rcu(|map| {
                    let mut map = HashMap::clone(map);
                    map.entry(environment.clone())
                        .or_insert_with(|| Arc::new(ArcSwap::new(Arc::clone(&snapshot))));
                    map
                });
                true
            }
        };
        if newer {
            self.announce(&environment, version);
        }
        true
    }

    /// Reloads every environment whose stored version differs from the live one (and
    /// environments created elsewhere).
    pub async fn catch_up(&self) {
        match self.storage.list_environments().await {
            Ok(envs) => {
                for env in envs {
                    let live = self.snapshot(&env.name).map(|s| s.version).ok();
                    if live != Some(env.version)
                        && let Err(e) = self.reload(&env.name).await
                    {
                        tracing::warn!(environment = %env.name, "reloading: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("checking ruleset versions: {e}"),
        }
    }

    /// After this replica wrote to an environment: swap in the new ruleset and tell the other
    /// replicas.
    pub async fn after_write(&self, environment: &str) {
        if let Err(e) = self.reload(environment).await {
            // The write is committed; the snapshot catches up on the next check.
            tracing::error!(environment, "reloading after a write failed: {e}");
        }
        if let (Some(redis), Ok(snap)) = (&self.redis, self.snapshot(environment)) {
            redis
                .announce_ruleset(environment, snap.version, &snap.json)
                .await;
        }
    }

    /// After this replica changed API keys: reload them and tell the other replicas.
    pub async fn after_key_change(&self) -> Result<(), StoreError> {
        self.keys.reload(&*self.storage).await?;
        if let Some(redis) = &self.redis {
            redis.announce_keys().await;
        }
        Ok(())
    }

    fn announce(&self, environment: &str, version: i64) {
        // No receivers is fine.
        let _ = self.changes.send(RulesetChanged {
            environment: environment.to_owned(),
            version,
        });
    }

    /// The live snapshot of an environment, or 404.
    pub fn snapshot(&self, environment: &str) -> Result<Arc<Snapshot>, ApiError> {
        self.envs
            .load()
            .get(environment)
            .map(|slot| slot.load_full())
            .ok_or_else(|| ApiError::not_found(format!("environment {environment:?} not found")))
    }

    /// Whether an environment is loaded.
    pub fn has_environment(&self, environment: &str) -> bool {
        self.envs.load().contains_key(environment)
    }

    /// Versions of every loaded environment.
    pub fn versions(&self) -> Vec<(String, i64)> {
        let mut v: Vec<_> = self
            .envs
            .load()
            .iter()
            .map(|(name, slot)| (name.clone(), slot.load().version))
            .collect();
        v.sort();
        v
    }

    /// Tells long-lived responses (SSE streams) to end: the server is stopping.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that changes when the server begins to shut down.
    pub fn shutdown_receiver(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Subscribes to ruleset changes.
    pub fn subscribe(&self) -> broadcast::Receiver<RulesetChanged> {
        self.changes.subscribe()
    }
}
