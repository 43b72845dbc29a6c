//! Reports the heap held by a compiled 10,000-flag engine (target: 50 MB).
//!
//! Run: `cargo run --release -p optifork-benches --bin core-memory`
#![allow(unsafe_code)] // a counting GlobalAlloc is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use optifork_benches::ruleset_with_flags;
use optifork_core::{Engine, Ruleset};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator and only tracks the live byte count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    for n in [10_000usize, 100_000] {
        let text = ruleset_with_flags(n).to_string();
        let ruleset: Ruleset = serde_json::from_str(&text).unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        let engine = Engine::compile(&ruleset).unwrap();
        let held = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "{n} flags: compiled engine holds {:.1} MB ({} bytes/flag); ruleset JSON is {:.1} MB",
            held as f64 / 1e6,
            held / n,
            text.len() as f64 / 1e6
        );
        drop(engine);
    }
}
