//! The exposure queue: exposures logged by evaluation routes are written off the request path,
//! in batches.
//!
//! Requests only `try_send` into a bounded channel; when it is full (the database is slower
//! than the traffic) the exposure is dropped and counted, never blocking a request and never
//! growing memory without bound. A writer task flushes a batch when it reaches
//! `exposure_batch` rows or `exposure_flush_ms` passes. On shutdown the writer closes the
//! channel, drains what is queued, writes it, and only then lets the process exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use optifork_storage::{Exposure, Storage};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Counters of the exposure queue.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Exposures accepted into the queue.
    pub queued: AtomicU64,
    /// Exposures written to the database.
    pub written: AtomicU64,
    /// Exposures dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Failed batch writes (retried).
    pub failed_writes: AtomicU64,
}

/// The sending side, held by the server state.
pub struct Ingest {
    tx: mpsc::Sender<Exposure>,
    shutdown: Arc<Notify>,
    /// Counters.
    pub stats: Arc<IngestStats>,
}

impl Ingest {
    /// Queues an exposure; never blocks. Returns false (and counts it) when the queue is full
    /// or closed.
    pub fn log(&self, exposure: Exposure) -> bool {
        match self.tx.try_send(exposure) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Exposures waiting to be written.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Asks the writer to drain and stop; await the handle from [`spawn`] to know it is done.
    pub fn shut_down(&self) {
        self.shutdown.notify_one();
    }
}

/// Starts the writer. Returns the queue and the writer's handle.
pub fn spawn(
    storage: Arc<dyn Storage>,
    capacity: usize,
    batch: usize,
    flush_every: Duration,
) -> (Ingest, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let shutdown = Arc::new(Notify::new());
    let stats = Arc::new(IngestStats::default());
    let handle = tokio::spawn(writer(
        storage,
        rx,
        Arc::clone(&shutdown),
        Arc::clone(&stats),
        batch.max(1),
        flush_every,
    ));
    (
        Ingest {
            tx,
            shutdown,
            stats,
        },
        handle,
    )
}

async fn writer(
    storage: Arc<dyn Storage>,
    mut rx: mpsc::Receiver<Exposure>,
    shutdown: Arc<Notify>,
    stats: Arc<IngestStats>,
    batch: usize,
    flush_every: Duration,
) {
    let mut buf: Vec<Exposure> = Vec::with_capacity(batch);
    // Set when the first row enters an empty buffer: the batch is written by then at latest.
    let mut deadline: Option<Instant> = None;
    loop {
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let room = batch.saturating_sub(buf.len());
        tokio::select! {
            n = rx.recv_many(&mut buf, room), if room > 0 => {
                if n == 0 {
                    break; // every sender is gone
                }
                deadline.get_or_insert_with(|| Instant::now() + flush_every);
            }
            () = timer => {}
            () = shutdown.notified() => {
                rx.close();
                break;
            }
        }
        if buf.len() >= batch || deadline.is_some_and(|d| Instant::now() >= d) {
            // On failure the rows stay buffered and the next attempt waits for the timer;
            // meanwhile new exposures queue up (and are dropped once the queue is full).
            deadline = if flush(&*storage, &mut buf, &stats, false).await {
                None
            } else {
                Some(Instant::now() + Duration::from_secs(1))
            };
        }
    }
    // Draining: the channel is closed to new rows; write everything still queued.
    loop {
        if buf.len() >= batch || (!buf.is_empty() && rx.is_empty()) {
            flush(&*storage, &mut buf, &stats, true).await;
        }
        let room = batch.saturating_sub(buf.len()).max(1);
        if rx.recv_many(&mut buf, room).await == 0 {
            break;
        }
    }
    if !buf.is_empty() {
        flush(&*storage, &mut buf, &stats, true).await;
    }
}

/// Writes the buffer, retrying with backoff a few times. Returns whether it was written. While
/// draining at shutdown, rows that still cannot be written are given up (and counted as
/// dropped) so that a dead database cannot hang the exit forever.
async fn flush(
    storage: &dyn Storage,
    buf: &mut Vec<Exposure>,
    stats: &IngestStats,
    closing: bool,
) -> bool {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match storage.insert_exposures(None, buf).await {
            Ok(_) => {
                stats.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
                buf.clear();
                return true;
            }
            Err(e) => {
                stats.failed_writes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(attempt, rows = buf.len(), "writing exposures failed: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
    if closing {
        tracing::error!(rows = buf.len(), "giving up on exposures at shutdown");
        stats.dropped.fetch_add(buf.len() as u64, Ordering::Relaxed);
        buf.clear();
    }
    false
}
