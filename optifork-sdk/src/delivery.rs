//! Exposures and metric events: deduplication, the bounded buffer, batching and sending.
//!
//! Recording (on the evaluation path) only touches a shard of the dedup cache and, for a new
//! exposure, the buffer; everything else happens in the sender task. Items are numbered in
//! the order they enter the buffer; the sender takes them in that order, so "everything
//! queued before `flush` was called" is "every item numbered below the count at that time",
//! and the sender publishes how many items are settled (acknowledged, or given up on).

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lru::LruCache;
use optifork_core::Context;
use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::Notify;

use crate::backoff::Backoff;
use crate::signal::{Signal, lock};
use crate::status::{Counters, add, bump};

const SHARDS: usize = 16;

/// An exposure as `POST /sdk/v1/exposures` takes it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Exposure {
    #[serde(skip_serializing_if = "Option::is_none")]
    flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment: Option<String>,
    user_id: String,
    variant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Json>,
    timestamp: String,
}

/// A metric event as `POST /sdk/v1/events` takes it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Event {
    event: String,
    user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Json>,
    timestamp: String,
}

pub(crate) enum Item {
    Exposure(Exposure),
    Event(Event),
}

struct Queue {
    items: VecDeque<Item>,
    /// Items ever queued (the number the next one gets).
    queued: u64,
    /// Once closed, nothing more is queued.
    closed: bool,
}

struct DedupShard {
    seen: LruCache<u64, ()>,
    hits: u64,
}

/// Progress of the sender, for `flush`.
#[derive(Default)]
pub(crate) struct Progress {
    /// Items settled: acknowledged, refused or given up on.
    pub(crate) settled: u64,
    /// Set when the sender has stopped for good.
    pub(crate) stopped: bool,
}

pub(crate) struct Delivery {
    queue: Mutex<Queue>,
    capacity: usize,
    batch_size: usize,
    dedup: Box<[Mutex<DedupShard>]>,
    hasher: ahash::RandomState,
    with_context: bool,
    offline: bool,
    /// Wakes the sender: a full batch, a flush, or close.
    wake: Notify,
    /// The item count a flush asked to be settled.
    flush_to: Mutex<u64>,
    pub(crate) progress: Signal<Progress>,
    closing: AtomicBool,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Delivery {
    pub(crate) fn new(
        capacity: usize,
        batch_size: usize,
        dedup_capacity: usize,
        with_context: bool,
        offline: bool,
    ) -> Delivery {
        let per_shard =
            NonZeroUsize::new(dedup_capacity.div_ceil(SHARDS)).unwrap_or(NonZeroUsize::MIN);
        Delivery {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                queued: 0,
                closed: false,
            }),
            capacity,
            batch_size,
            dedup: (0..SHARDS)
                .map(|_| {
                    Mutex::new(DedupShard {
                        seen: LruCache::sparse(per_shard),
                        hits: 0,
                    })
                })
                .collect(),
            hasher: ahash::RandomState::new(),
            with_context,
            offline,
            wake: Notify::new(),
            flush_to: Mutex::new(0),
            progress: Signal::new(Progress::default()),
            closing: AtomicBool::new(false),
        }
    }

    fn shard(&self, key: u64) -> &Mutex<DedupShard> {
        &self.dedup[(key >> 60) as usize % SHARDS]
    }

    /// Records an exposure unless the same (user, flag or experiment, variant) was recorded
    /// recently. `experiment` tells which kind `name` is.
    pub(crate) fn expose(
        &self,
        counters: &Counters,
        experiment: bool,
        name: &str,
        ctx: &Context,
        variant: &str,
        enabled: Option<bool>,
    ) {
        if self.offline {
            return;
        }
        let Some(user) = ctx.key().filter(|k| !k.is_empty()) else {
            bump(&counters.dropped_invalid);
            return;
        };
        let key = self.hasher.hash_one((experiment, name, user, variant));
        {
            let mut shard = lock(self.shard(key));
            if shard.seen.get(&key).is_some() {
                shard.hits += 1;
                return;
            }
            shard.seen.put(key, ());
        }
        let item = Item::Exposure(Exposure {
            flag: (!experiment).then(|| name.to_owned()),
            experiment: experiment.then(|| name.to_owned()),
            user_id: user.to_owned(),
            variant: variant.to_owned(),
            enabled,
            context: self
                .with_context
                .then(|| serde_json::to_value(ctx).unwrap_or(Json::Null)),
            timestamp: now_rfc3339(),
        });
        if self.push(counters, item) {
            bump(&counters.exposures_queued);
        } else {
            // Not queued: forget it, so that a later evaluation records it again.
            lock(self.shard(key)).seen.pop(&key);
        }
    }

    /// Records a metric event.
    pub(crate) fn track(
        &self,
        counters: &Counters,
        event: &str,
        ctx: &Context,
        value: Option<f64>,
        properties: Option<Json>,
    ) {
        if self.offline {
            return;
        }
        let Some(user) = ctx.key().filter(|k| !k.is_empty()) else {
            bump(&counters.dropped_invalid);
            return;
        };
        if event.is_empty() || value.is_some_and(|v| !v.is_finite()) {
            bump(&counters.dropped_invalid);
            return;
        }
        let item = Item::Event(Event {
            event: event.to_owned(),
            user_id: user.to_owned(),
            value,
            properties,
            timestamp: now_rfc3339(),
        });
        if self.push(counters, item) {
            bump(&counters.events_queued);
        }
    }

    fn push(&self, counters: &Counters, item: Item) -> bool {
        let mut q = lock(&self.queue);
        if q.closed {
            bump(&counters.dropped_closed);
            return false;
        }
        if q.items.len() >= self.capacity {
            bump(&counters.dropped_buffer_full);
            return false;
        }
        q.items.push_back(item);
        q.queued += 1;
        let full = q.items.len() >= self.batch_size;
        drop(q);
        if full {
            self.wake.notify_one();
        }
        true
    }

    pub(crate) fn dedup_hits(&self) -> u64 {
        self.dedup.iter().map(|s| lock(s).hits).sum()
    }

    pub(crate) fn buffered(&self) -> u64 {
        lock(&self.queue).items.len() as u64
    }

    /// Asks the sender to send everything queued so far now; returns the item count to wait
    /// for.
    pub(crate) fn request_flush(&self) -> u64 {
        let target = lock(&self.queue).queued;
        {
            let mut f = lock(&self.flush_to);
            *f = (*f).max(target);
        }
        self.wake.notify_one();
        target
    }

    /// Whether everything up to `target` is settled (or the sender stopped).
    pub(crate) fn settled(p: &Progress, target: u64) -> bool {
        p.stopped || p.settled >= target
    }

    /// Stops taking new items and wakes the sender for its final flush.
    pub(crate) fn close(&self) {
        lock(&self.queue).closed = true;
        self.closing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Takes up to a batch of items, oldest first.
    fn take(&self) -> Vec<Item> {
        let mut q = lock(&self.queue);
        let n = q.items.len().min(self.batch_size);
        q.items.drain(..n).collect()
    }

    fn settle(&self, n: u64) {
        self.progress.update(|p| p.settled += n);
    }
}

/// Where and how batches are sent.
pub(crate) struct Sender {
    pub(crate) http: reqwest::Client,
    pub(crate) exposures_url: String,
    pub(crate) events_url: String,
    pub(crate) flush_interval: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) close_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

#[derive(Serialize)]
struct ExposureBatch<'a> {
    batch_id: &'a str,
    exposures: &'a [Exposure],
}

#[derive(Serialize)]
struct EventBatch<'a> {
    batch_id: &'a str,
    events: &'a [Event],
}

#[derive(Debug, PartialEq)]
enum Sent {
    /// Acknowledged (the bool: as a duplicate).
    Acked(bool),
    /// Too large for the server: split it.
    TooLarge,
    /// Refused outright; retrying cannot help.
    Refused,
    /// Out of time (closing).
    GaveUp,
}

impl Sender {
    /// The sender task: sends a batch when one is full, when the flush interval passes, when
    /// a flush is asked for; on close, sends what is left within the close timeout.
    pub(crate) async fn run(self, d: &Delivery, counters: &Counters) {
        let mut last_send = Instant::now();
        loop {
            let closing = d.closing.load(Ordering::SeqCst);
            let (len, queued) = {
                let q = lock(&d.queue);
                (q.items.len(), q.queued)
            };
            let flush_wanted = {
                let settled = d.progress.get(|p| p.settled);
                *lock(&d.flush_to) > settled
            };
            let due = last_send.elapsed() >= self.flush_interval;
            if closing {
                break;
            }
            if len > 0 && (len >= d.batch_size || flush_wanted || due) {
                let items = d.take();
                let n = items.len() as u64;
                self.send_items(d, items, counters, None).await;
                d.settle(n);
                last_send = Instant::now();
                continue;
            }
            if len == 0 {
                // Nothing queued: a flush asked for now is already satisfied.
                d.progress.update(|p| p.settled = p.settled.max(queued));
                last_send = Instant::now();
            }
            let wait = self.flush_interval.saturating_sub(last_send.elapsed());
            let _ =
                tokio::time::timeout(wait.max(Duration::from_millis(1)), d.wake.notified()).await;
        }
        // Closing: send everything left, within the close timeout.
        let deadline = tokio::time::Instant::now() + self.close_timeout;
        loop {
            let items = d.take();
            if items.is_empty() {
                break;
            }
            let n = items.len() as u64;
            if tokio::time::Instant::now() >= deadline {
                add(&counters.items_unsent_at_close, n);
            } else {
                self.send_items(d, items, counters, Some(deadline)).await;
            }
            d.settle(n);
        }
        d.progress.update(|p| p.stopped = true);
    }

    async fn send_items(
        &self,
        d: &Delivery,
        items: Vec<Item>,
        counters: &Counters,
        deadline: Option<tokio::time::Instant>,
    ) {
        let mut exposures = Vec::new();
        let mut events = Vec::new();
        for item in items {
            match item {
                Item::Exposure(e) => exposures.push(e),
                Item::Event(e) => events.push(e),
            }
        }
        if !exposures.is_empty() {
            self.send_split(
                d,
                &self.exposures_url,
                &exposures,
                counters,
                deadline,
                |id, xs| {
                    serde_json::to_vec(&ExposureBatch {
                        batch_id: id,
                        exposures: xs,
                    })
                },
            )
            .await;
        }
        if !events.is_empty() {
            self.send_split(
                d,
                &self.events_url,
                &events,
                counters,
                deadline,
                |id, xs| {
                    serde_json::to_vec(&EventBatch {
                        batch_id: id,
                        events: xs,
                    })
                },
            )
            .await;
        }
    }

    /// Sends `items` as one batch, halving it while the server says it is too large.
    async fn send_split<T>(
        &self,
        d: &Delivery,
        url: &str,
        items: &[T],
        counters: &Counters,
        deadline: Option<tokio::time::Instant>,
        body: impl Fn(&str, &[T]) -> serde_json::Result<Vec<u8>>,
    ) {
        let mut pending = vec![items];
        while let Some(chunk) = pending.pop() {
            let batch_id = uuid::Uuid::new_v4().simple().to_string();
            let Ok(bytes) = body(&batch_id, chunk) else {
                add(&counters.items_refused, chunk.len() as u64);
                continue;
            };
            match self.send_batch(d, url, bytes, counters, deadline).await {
                Sent::Acked(duplicate) => {
                    add(&counters.items_sent, chunk.len() as u64);
                    bump(&counters.batches_sent);
                    if duplicate {
                        bump(&counters.batches_duplicate);
                    }
                }
                Sent::TooLarge if chunk.len() > 1 => {
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    pending.push(b);
                    pending.push(a);
                }
                Sent::TooLarge | Sent::Refused => {
                    add(&counters.items_refused, chunk.len() as u64);
                }
                Sent::GaveUp => add(&counters.items_unsent_at_close, chunk.len() as u64),
            }
        }
    }

    /// Sends one batch until it is acknowledged: the same bytes (so the same `batch_id`) on
    /// every attempt, which the server turns into exactly-once.
    async fn send_batch(
        &self,
        d: &Delivery,
        url: &str,
        body: Vec<u8>,
        counters: &Counters,
        deadline: Option<tokio::time::Instant>,
    ) -> Sent {
        #[derive(serde::Deserialize)]
        struct Ack {
            #[serde(default)]
            duplicate: bool,
        }
        let mut attempt = 0u32;
        let mut deadline = deadline;
        loop {
            if deadline.is_none() && d.closing.load(Ordering::SeqCst) {
                // Closing while this batch was being retried: from now on, bounded.
                deadline = Some(tokio::time::Instant::now() + self.close_timeout);
            }
            let resp = self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(self.request_timeout)
                .body(body.clone())
                .send()
                .await;
            let why = match resp {
                Ok(r) if r.status().is_success() => {
                    let duplicate = r
                        .bytes()
                        .await
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Ack>(&b).ok())
                        .is_some_and(|a| a.duplicate);
                    return Sent::Acked(duplicate);
                }
                Ok(r) if r.status() == reqwest::StatusCode::PAYLOAD_TOO_LARGE => {
                    return Sent::TooLarge;
                }
                Ok(r)
                    if r.status().is_client_error()
                        && !matches!(r.status().as_u16(), 408 | 429) =>
                {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    tracing::warn!(%status, body = %text, "optifork: the server refused a batch; dropping it");
                    return Sent::Refused;
                }
                Ok(r) => format!("status {}", r.status()),
                Err(e) => e.to_string(),
            };
            bump(&counters.batch_retries);
            let delay = self.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            tracing::debug!(error = %why, ?delay, "optifork: sending a batch failed; retrying");
            let wake = tokio::time::Instant::now() + delay;
            if let Some(deadline) = deadline
                && wake >= deadline
            {
                return Sent::GaveUp;
            }
            let sleep = tokio::time::sleep_until(wake);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    // Cut the wait short only to close.
                    _ = d.wake.notified(), if deadline.is_none() => {
                        if d.closing.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exposure_is_recorded_once_per_user_name_and_variant() {
        let d = Delivery::new(100, 10, 1000, false, false);
        let c = Counters::default();
        let alice = Context::new("alice");
        for _ in 0..3 {
            d.expose(&c, false, "f", &alice, "on", Some(true));
        }
        d.expose(&c, false, "f", &alice, "off", Some(false));
        d.expose(&c, true, "f", &alice, "on", None);
        d.expose(&c, false, "f", &Context::new("bob"), "on", Some(true));
        d.expose(&c, false, "f", &Context::anonymous(), "on", Some(true));
        assert_eq!(c.exposures_queued.load(Ordering::Relaxed), 4);
        assert_eq!(d.dedup_hits(), 2);
        assert_eq!(c.dropped_invalid.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_buffer_is_bounded_and_overflow_is_counted_and_forgotten_by_dedup() {
        let d = Delivery::new(2, 10, 1000, false, false);
        let c = Counters::default();
        for u in ["a", "b", "c"] {
            d.expose(&c, false, "f", &Context::new(u), "on", None);
        }
        assert_eq!(d.buffered(), 2);
        assert_eq!(c.dropped_buffer_full.load(Ordering::Relaxed), 1);
        // "c" was not queued, so it is not remembered either.
        d.take();
        d.expose(&c, false, "f", &Context::new("c"), "on", None);
        assert_eq!(d.buffered(), 1);
        d.track(&c, "buy", &Context::new("a"), Some(f64::NAN), None);
        assert_eq!(c.dropped_invalid.load(Ordering::Relaxed), 1);
    }
}
