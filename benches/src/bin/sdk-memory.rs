//! Reports the heap held by an SDK `Client` serving a 10,000-flag ruleset, next to the bare
//! compiled engine's.
//!
//! Run: `cargo run --release -p optifork-benches --bin sdk-memory`
#![allow(unsafe_code)] // a counting GlobalAlloc is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use optifork_benches::ruleset_with_flags;
use optifork_core::Engine;
use optifork_sdk::{Client, Context};

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

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

fn main() {
    let n = 10_000;
    let text = ruleset_with_flags(n).to_string();

    let before = LIVE.load(Ordering::Relaxed);
    let engine = Engine::from_json(&text).unwrap();
    let engine_bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(engine);

    // An empty client: threads, runtime, buffers, dedup cache (allocated lazily).
    let before = LIVE.load(Ordering::Relaxed);
    let empty = Client::builder("", "").offline(true).build().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let empty_bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(empty);
    std::thread::sleep(Duration::from_millis(100));

    let before = LIVE.load(Ordering::Relaxed);
    let client = Client::builder("", "")
        .offline(true)
        .bootstrap_json(text.clone())
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(client.version(), Some(1));
    let _ = client.is_enabled("flag_1", &Context::new("u1"));
    let client_bytes = LIVE.load(Ordering::Relaxed) - before;

    println!(
        "{n} flags (ruleset JSON {:.1} MB): client holds {:.1} MB = compiled engine {:.1} MB \
         + change fingerprints and client state {:.1} MB (of which {:.2} MB for an empty client)",
        mb(text.len()),
        mb(client_bytes),
        mb(engine_bytes),
        mb(client_bytes.saturating_sub(engine_bytes)),
        mb(empty_bytes),
    );
    drop(client);
}
