//! A value that threads and tasks can wait on: blocking waits (a `Condvar`) for synchronous
//! callers, async waits (a `Notify`) for tasks.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves its data
/// consistent, so a panic elsewhere never makes it unusable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Signal<T> {
    value: Mutex<T>,
    cond: Condvar,
    notify: Notify,
}

impl<T> Signal<T> {
    pub(crate) fn new(value: T) -> Signal<T> {
        Signal {
            value: Mutex::new(value),
            cond: Condvar::new(),
            notify: Notify::new(),
        }
    }

    /// Reads the value.
    pub(crate) fn get<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&lock(&self.value))
    }

    /// Changes the value and wakes every waiter.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let r = f(&mut lock(&self.value));
        self.cond.notify_all();
        self.notify.notify_waiters();
        r
    }

    /// Blocks until `done` holds or `timeout` passes; returns whether it holds.
    pub(crate) fn wait_blocking(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&T) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = lock(&self.value);
        loop {
            if done(&guard) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = match self.cond.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Waits (asynchronously) until `done` holds.
    pub(crate) async fn wait(&self, mut done: impl FnMut(&T) -> bool) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before checking, so an update in between is not missed.
            notified.as_mut().enable();
            if self.get(&mut done) {
                return;
            }
            notified.await;
        }
    }
}
