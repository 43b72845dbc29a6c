//! End to end: the SDK assigns users and tracks their events, the server aggregates them, and
//! `GET /experiments/{name}/results` reports exactly what happened, with statistics.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Server;
use optifork_sdk::{Client, Context};
use serde_json::json;

#[test]
fn sdk_assignments_and_tracked_events_become_experiment_results() {
    let s = Server::start();
    let key = s.sdk_key();
    s.ok(
        "POST",
        "/experiments",
        json!({"name": "checkout_flow", "variants": ["control", "one_page"],
            "traffic_splits": {"control": 50, "one_page": 50}, "is_active": true,
            "targeting_rules": {"country": "US"},
            "metrics": [{"name": "purchase_rate", "event": "purchase", "type": "conversion"},
                        {"name": "revenue", "event": "purchase", "type": "sum"}]}),
    );
    let client = Client::builder(&s.url, &key)
        .flush_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    client.wait_until_ready(Duration::from_secs(10)).unwrap();

    // Local truth: who got which variant, who bought.
    let mut users: BTreeMap<&str, u64> = BTreeMap::new();
    let mut buyers: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..2000u64 {
        let ctx = Context::new(format!("user-{i}"))
            .with("country", if i % 10 == 0 { "FR" } else { "US" });
        let a = client.assign("checkout_flow", &ctx);
        if !a.in_experiment {
            assert_eq!(a.variant, "control");
            continue;
        }
        let variant = if a.variant == "control" {
            "control"
        } else {
            "one_page"
        };
        *users.entry(variant).or_default() += 1;
        // One page converts twice as often: a deterministic 15% vs 30%.
        let threshold = if variant == "control" { 15 } else { 30 };
        if (i * 37) % 100 < threshold {
            *buyers.entry(variant).or_default() += 1;
            client.track("purchase", &ctx, Some(20.0));
        }
        // Evaluating again records no second exposure for the same user and variant.
        client.assign("checkout_flow", &ctx);
    }
    client.flush(Duration::from_secs(10)).unwrap();

    let r = s.ok("GET", "/experiments/checkout_flow/results", json!(null));
    for v in r["variants"].as_array().unwrap() {
        let name = v["variant"].as_str().unwrap();
        assert_eq!(v["users"].as_u64().unwrap(), users[name], "{name}: users");
        assert_eq!(
            v["exposures"].as_u64().unwrap(),
            users[name],
            "{name}: one exposure per user"
        );
    }
    assert_eq!(r["sample_ratio_mismatch"]["warning"], false, "{r}");
    let rate = r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "purchase_rate")
        .unwrap();
    let c = &rate["comparisons"][0];
    assert_eq!(c["variant"], "one_page");
    assert_eq!(
        c["control"]["conversions"].as_u64().unwrap(),
        buyers["control"]
    );
    assert_eq!(
        c["treatment"]["conversions"].as_u64().unwrap(),
        buyers["one_page"]
    );
    let p = c["frequentist"]["p_value"].as_f64().unwrap();
    assert!(
        p < 0.001,
        "a doubled conversion rate over ~900 users per arm is significant: p = {p}"
    );
    let chance = c["bayesian"]["chance_to_beat_control"].as_f64().unwrap();
    assert!(chance > 0.999, "{chance}");
    let lift = c["frequentist"]["relative_lift"]["estimate"]
        .as_f64()
        .unwrap();
    assert!(
        (0.5..1.5).contains(&lift),
        "relative lift about +100%: {lift}"
    );
    let revenue = r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "revenue")
        .unwrap();
    let mean = revenue["comparisons"][0]["treatment"]["mean"]
        .as_f64()
        .unwrap();
    let want = 20.0 * buyers["one_page"] as f64 / users["one_page"] as f64;
    assert!((mean - want).abs() < 1e-9, "{mean} vs {want}");
    client.close().expect("closing flushes everything");
}
