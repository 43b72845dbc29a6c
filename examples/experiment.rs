//! An A/B experiment with tracking: assign simulated users to the `checkout_redesign`
//! experiment (each enrolled user is recorded as an exposure), track purchases as metric
//! events, flush, and print the server's per-variant results.
//!
//! See `examples/README.md` for the server set-up; then:
//!
//! ```sh
//! OPTIFORK_URL=http://127.0.0.1:8000 OPTIFORK_SDK_KEY=ofk_... \
//!   cargo run -p optifork-sdk --example experiment
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use optifork_sdk::{Client, Context};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // No tokio runtime here: the client runs its background work on its own thread.
    let client = Client::builder(
        env("OPTIFORK_URL", "http://127.0.0.1:8000"),
        env("OPTIFORK_SDK_KEY", "dev"),
    )
    .build()?;
    client.wait_until_ready(Duration::from_secs(5))?;

    let mut assigned: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for i in 0..200 {
        let user = Context::new(format!("user-{i}")).with("country", "US");
        let arm = client.assign("checkout_redesign", &user);
        if !arm.in_experiment {
            continue;
        }
        // Pretend the redesign converts a little better.
        let converts = i % if arm.variant == "control" { 5 } else { 4 } == 0;
        let entry = assigned.entry(arm.variant.clone()).or_default();
        entry.0 += 1;
        if converts {
            entry.1 += 1;
            client.track("purchase", &user, Some(20.0 + (i % 7) as f64));
        }
    }
    for (variant, (users, buyers)) in &assigned {
        println!("{variant}: {users} users, {buyers} purchases");
    }

    // Everything recorded so far, acknowledged by the server (exactly once).
    client.flush(Duration::from_secs(10))?;
    let stats = client.stats();
    println!(
        "sent {} exposures and events in {} batches ({} dropped)",
        stats.items_sent,
        stats.batches_sent,
        stats.dropped_buffer_full + stats.dropped_invalid
    );
    println!(
        "results: curl {}/experiments/checkout_redesign/results -H 'Authorization: Bearer <admin key>'",
        env("OPTIFORK_URL", "http://127.0.0.1:8000")
    );
    client.close()?;
    Ok(())
}
