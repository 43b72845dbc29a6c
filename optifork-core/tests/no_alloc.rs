//! Evaluating boolean and string flags (and assigning experiments) allocates nothing: proved
//! with a global allocator that counts this thread's allocations. (The one exception is the
//! first `$regex` match on a thread, which allocates that regex's per-thread cache once.)
#![allow(unsafe_code)] // a GlobalAlloc implementation is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use optifork_core::{Context, Engine};
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

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Counts the allocations of the second run of `f`. The first run on a thread may allocate
/// once: the `regex` crate creates its per-thread match cache on a thread's first match.
/// Every run after that, the steady state a service lives in, must allocate nothing.
fn steady_state_allocations(mut f: impl FnMut()) -> usize {
    f();
    allocations_during(f)
}

fn engine() -> Engine {
    Engine::from_json(
        &json!({
            "segments": [{"name": "staff", "criteria": {"email": {"$regex": "@corp\\.com$", "$options": "i"}}}],
            "flags": [
                {"name": "simple", "is_enabled": true, "rollout_percentage": 50,
                 "targeting_rules": {"country": {"$in": ["US", "CA"]}}},
                {"name": "by_account", "is_enabled": true, "rollout_percentage": 50, "bucket_by": "account"},
                {"name": "color", "is_enabled": true,
                 "variants": [{"name": "blue", "value": "#00f"}, {"name": "red", "value": "#f00"}],
                 "rules": [
                    {"condition": {"$segment": "staff"}, "serve": {"variant": "red"}},
                    {"condition": {"app_version": {"$vgte": "2.3"}}, "serve": {"rollout": [
                        {"variant": "blue", "weight": 50}, {"variant": "red", "weight": 50}]}},
                    {"condition": {"age": {"$gte": 18, "$lt": 65}, "tags": {"$all": ["a"]}}, "serve": {"variant": "red"}},
                    {"condition": {"$or": [{"plan": {"$ne": "free"}}, {"address.city": "Paris"}]}, "serve": {"variant": "red"}},
                    {"condition": {"$nor": [{"country": {"$nin": ["FR"]}}]}, "serve": {"variant": "blue"}}
                 ],
                 "default": {"variant": "blue"}},
                {"name": "gated", "is_enabled": true, "prerequisites": [{"flag": "simple"}]}
            ],
            "experiments": [{"name": "exp", "is_active": true, "variants": ["control", "a", "b"],
                             "targeting_rules": {"country": "US"}, "allocation": 80,
                             "layer": {"name": "L", "range": [0, 90]}}]
        })
        .to_string(),
    )
    .unwrap()
}

fn contexts() -> Vec<Context> {
    vec![
        Context::new("user-1").with("country", "US"),
        Context::new("user-2")
            .with("country", "FR")
            .with("plan", "free"),
        Context::new("user-3")
            .with("email", "Ann@CORP.com")
            .with("app_version", "2.4.1")
            .with("age", 30)
            .with("tags", vec!["a", "b"])
            .with("account", 12345),
        Context::new("a-much-longer-user-identifier-than-inline").with("app_version", "v2.3"),
        Context::anonymous().with("country", "CA"),
    ]
}

#[test]
fn evaluating_a_boolean_flag_allocates_nothing() {
    let (e, ctxs) = (engine(), contexts());
    let n = steady_state_allocations(|| {
        for ctx in &ctxs {
            for flag in ["simple", "by_account", "gated", "missing"] {
                std::hint::black_box(e.is_enabled(flag, ctx));
                std::hint::black_box(e.bool_details(flag, ctx, false));
                std::hint::black_box(e.evaluate(flag, ctx));
            }
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn evaluating_a_string_flag_with_rules_allocates_nothing() {
    let (e, ctxs) = (engine(), contexts());
    let n = steady_state_allocations(|| {
        for ctx in &ctxs {
            std::hint::black_box(e.string_value("color", ctx, "none"));
            std::hint::black_box(e.string_details("color", ctx, "none"));
            std::hint::black_box(e.string_details("simple", ctx, "type mismatch"));
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn assigning_an_experiment_allocates_nothing() {
    let (e, ctxs) = (engine(), contexts());
    let n = steady_state_allocations(|| {
        for ctx in &ctxs {
            std::hint::black_box(e.assign("exp", ctx));
            std::hint::black_box(e.assign("missing", ctx));
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_does_count() {
    // Guards the guard: an allocation on this thread is seen.
    let n = allocations_during(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert_eq!(n, 1);
}
