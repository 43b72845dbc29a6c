//! Evaluating through the `Client` allocates nothing in the steady state: boolean, number and
//! (through an `Evaluator`) string and JSON flags, experiment assignment, and a tracked flag
//! or an enrolled user seen again (a dedup hit). Proved with a global allocator that counts
//! this thread's allocations.
#![allow(unsafe_code)] // a GlobalAlloc implementation is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use optifork_sdk::{Client, Context};
use serde_json::json;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only adds a thread-local counter, which is
// const-initialized and has no destructor, so it never allocates or re-enters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations of the second run of `f` (the first may fill per-thread caches and record
/// the exposure the second run then deduplicates).
fn steady_state_allocations(mut f: impl FnMut()) -> usize {
    f();
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn evaluating_through_the_client_allocates_nothing() {
    let ruleset = json!({"version": 1,
        "flags": [
            {"name": "simple", "is_enabled": true, "rollout_percentage": 50,
             "targeting_rules": {"country": {"$in": ["US", "CA"]}}},
            {"name": "tracked", "is_enabled": true, "track": true},
            {"name": "color", "is_enabled": true,
             "variants": [{"name": "red", "value": "#f00"}]},
            {"name": "limit", "is_enabled": true, "variants": [{"name": "ten", "value": 10}]},
            {"name": "layout", "is_enabled": true, "kind": "json",
             "variants": [{"name": "grid", "value": {"columns": 3}}]}
        ],
        "experiments": [{"name": "exp", "variants": ["control", "b"], "is_active": true}]});
    // Not offline, so exposures are really recorded (to a server that is not there).
    let client = Client::builder("http://127.0.0.1:9", "key")
        .bootstrap_json(ruleset.to_string())
        .flush_interval(std::time::Duration::from_secs(3600))
        .close_timeout(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    let user = Context::new("user-1").with("country", "US");
    let n = steady_state_allocations(|| {
        for _ in 0..100 {
            std::hint::black_box(client.is_enabled("simple", &user));
            std::hint::black_box(client.is_enabled("tracked", &user));
            std::hint::black_box(client.bool_value("missing", &user, true));
            std::hint::black_box(client.int_value("limit", &user, 0));
            std::hint::black_box(client.number_value("limit", &user, 0.0));
            let ev = client.evaluator();
            std::hint::black_box(ev.string_value("color", &user, "none"));
            std::hint::black_box(ev.json_value("layout", &user, &serde_json::Value::Null));
            std::hint::black_box(ev.assign("exp", &user).variant);
        }
    });
    assert_eq!(n, 0, "allocations in the steady state");
    let stats = client.stats();
    assert_eq!(stats.exposures_queued, 2, "{stats:?}");
    assert!(stats.exposures_deduplicated >= 398, "{stats:?}");
}
