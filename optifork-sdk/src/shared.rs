//! The state every clone of a client and every background task shares.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use optifork_core::{CompileError, Engine, Ruleset};
use tokio::sync::broadcast;

use crate::builder::Options;
use crate::changes::{Change, Fingerprints};
use crate::delivery::Delivery;
use crate::signal::{Signal, lock};
use crate::status::{Counters, Source, State, Status};

/// A change listener.
pub(crate) type Listener = Arc<dyn Fn(&Change) + Send + Sync>;

/// The status plus what only the SDK needs to know about it.
pub(crate) struct StatusCell {
    pub(crate) status: Status,
    /// The server refused the key: waiting for readiness is pointless.
    pub(crate) unauthorized: bool,
}

pub(crate) struct Shared {
    /// The compiled ruleset evaluations read: one `load` per evaluation, no lock.
    pub(crate) engine: ArcSwap<Engine>,
    pub(crate) status: Signal<StatusCell>,
    pub(crate) counters: Counters,
    pub(crate) delivery: Delivery,
    pub(crate) options: Options,
    /// Serializes installs, and holds what the last install needs to compute the next
    /// change.
    install: Mutex<Fingerprints>,
    listeners: Mutex<Vec<(u64, Listener)>>,
    next_listener: AtomicU64,
    pub(crate) changes: broadcast::Sender<Arc<Change>>,
    /// Set to stop the background work.
    pub(crate) shutdown: Signal<bool>,
    /// Set when the background work has finished (or was dropped with its runtime).
    pub(crate) done: Signal<bool>,
}

/// Why a ruleset was not installed.
pub(crate) enum Refused {
    Invalid(CompileError),
}

impl Shared {
    pub(crate) fn new(options: Options) -> Shared {
        let empty = Engine::compile(&Ruleset::default())
            .unwrap_or_else(|_| unreachable!("the empty ruleset compiles"));
        Shared {
            engine: ArcSwap::from_pointee(empty),
            status: Signal::new(StatusCell {
                status: Status::new(),
                unauthorized: false,
            }),
            counters: Counters::default(),
            delivery: Delivery::new(
                options.buffer_capacity,
                options.batch_size,
                options.dedup_capacity,
                options.exposure_context,
                options.offline,
            ),
            options,
            install: Mutex::new(Fingerprints::default()),
            listeners: Mutex::new(Vec::new()),
            next_listener: AtomicU64::new(1),
            changes: broadcast::channel(64).0,
            shutdown: Signal::new(false),
            done: Signal::new(false),
        }
    }

    /// Parses, compiles and installs a ruleset; on success updates the status and tells the
    /// listeners what changed. A ruleset that does not compile changes nothing.
    pub(crate) fn install(&self, json: &[u8], source: Source) -> Result<Arc<Change>, Refused> {
        let ruleset = parse(json).map_err(Refused::Invalid)?;
        let engine = Engine::compile(&ruleset).map_err(Refused::Invalid)?;
        let fingerprints = Fingerprints::of(&ruleset);
        let change = {
            let mut current = lock(&self.install);
            let change = Arc::new(current.changes_to(&fingerprints, source));
            self.engine.store(Arc::new(engine));
            *current = fingerprints;
            let now = SystemTime::now();
            let offline = self.options.offline;
            self.status.update(|cell| {
                let s = &mut cell.status;
                s.source = Some(source);
                s.version = Some(ruleset.version);
                s.environment = Some(ruleset.environment.clone());
                s.updated_at = Some(now);
                match source {
                    Source::Server => {
                        s.state = State::Ready;
                        s.confirmed_at = Some(now);
                        s.last_error = None;
                        cell.unauthorized = false;
                    }
                    _ if offline => s.state = State::Ready,
                    // Until the server confirms: stale (the server may have moved on).
                    _ => {
                        if s.state != State::Ready {
                            s.state = State::Stale;
                        }
                    }
                }
            });
            change
        };
        if !change.is_empty() {
            self.notify(&change);
        }
        Ok(change)
    }

    fn notify(&self, change: &Arc<Change>) {
        let _ = self.changes.send(Arc::clone(change));
        let listeners: Vec<Listener> = lock(&self.listeners)
            .iter()
            .map(|(_, l)| Arc::clone(l))
            .collect();
        for l in listeners {
            let call = std::panic::AssertUnwindSafe(|| l(change));
            if std::panic::catch_unwind(call).is_err() {
                tracing::error!("optifork: a change listener panicked");
            }
        }
    }

    pub(crate) fn add_listener(&self, l: Listener) -> u64 {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        lock(&self.listeners).push((id, l));
        id
    }

    pub(crate) fn remove_listener(&self, id: u64) -> bool {
        let mut ls = lock(&self.listeners);
        let before = ls.len();
        ls.retain(|(i, _)| *i != id);
        ls.len() != before
    }

    /// Records a failed contact with the server.
    pub(crate) fn failed(&self, error: String, unauthorized: bool) {
        self.status.update(|cell| {
            let s = &mut cell.status;
            s.state = if s.source.is_some() {
                State::Stale
            } else {
                State::Error
            };
            s.last_error = Some(error);
            cell.unauthorized = unauthorized;
        });
    }

    /// Records that the server confirmed the served ruleset is current (a 304).
    pub(crate) fn confirmed(&self) {
        self.status.update(|cell| {
            let s = &mut cell.status;
            s.state = State::Ready;
            s.confirmed_at = Some(SystemTime::now());
            s.last_error = None;
            cell.unauthorized = false;
        });
    }

    pub(crate) fn set_streaming(&self, on: bool) {
        self.status.update(|cell| cell.status.streaming = on);
    }

    pub(crate) fn status(&self) -> Status {
        self.status.get(|c| c.status.clone())
    }

    /// Loads the bootstrap and the snapshot (whichever is newer) before the first fetch.
    pub(crate) fn load_initial(
        &self,
        bootstrap: Option<crate::builder::Bootstrap>,
    ) -> Result<(), crate::SdkError> {
        use crate::builder::Bootstrap;
        let bootstrap = match bootstrap {
            None => None,
            Some(Bootstrap::Json(text)) => Some(text.into_bytes()),
            Some(Bootstrap::File(path)) => Some(
                std::fs::read(&path)
                    .map_err(|source| crate::SdkError::BootstrapIo { path, source })?,
            ),
        };
        let bootstrap = match bootstrap {
            None => None,
            Some(bytes) => {
                let ruleset = parse(&bytes).map_err(crate::SdkError::InvalidBootstrap)?;
                Engine::compile(&ruleset).map_err(crate::SdkError::InvalidBootstrap)?;
                Some((ruleset.version, bytes))
            }
        };
        let snapshot = self
            .options
            .snapshot_path
            .as_deref()
            .and_then(read_snapshot);
        let chosen = match (bootstrap, snapshot) {
            (Some(b), Some(s)) if b.0 > s.0 => Some((b.1, Source::Bootstrap)),
            (_, Some(s)) => Some((s.1, Source::Snapshot)),
            (Some(b), None) => Some((b.1, Source::Bootstrap)),
            (None, None) => None,
        };
        if let Some((bytes, source)) = chosen {
            // Both were checked above, so this succeeds.
            let _ = self.install(&bytes, source);
        }
        Ok(())
    }
}

/// Parses a ruleset's JSON text, with the path of the first problem.
pub(crate) fn parse(json: &[u8]) -> Result<Ruleset, CompileError> {
    let text = std::str::from_utf8(json).map_err(|e| CompileError {
        path: optifork_core::JsonPath::root(),
        kind: optifork_core::ErrorKind::Invalid(format!("not UTF-8: {e}")),
    })?;
    optifork_core::from_json_str(text)
}

/// Reads a snapshot, returning its version and bytes when it is a valid ruleset.
fn read_snapshot(path: &Path) -> Option<(u64, Vec<u8>)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "optifork: cannot read the snapshot; ignoring it");
            return None;
        }
    };
    let checked = parse(&bytes).ok().filter(|r| Engine::compile(r).is_ok());
    match checked {
        Some(r) => Some((r.version, bytes)),
        None => {
            tracing::warn!(path = %path.display(), "optifork: the snapshot is not a valid ruleset; ignoring it");
            None
        }
    }
}

/// Writes a snapshot atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over the old one, so a reader never sees half a file.
pub(crate) fn write_snapshot(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "optifork-snapshot".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
