//! Shared inputs for OptiFork's benchmarks: realistic generated rulesets and contexts.

use serde_json::{Value, json};

/// A ruleset of `n` flags shaped like a real fleet's: each with targeting and a percentage,
/// every third with a rule, every tenth with a regex and a segment reference.
pub fn ruleset_with_flags(n: usize) -> Value {
    let flags: Vec<Value> = (0..n)
        .map(|i| {
            let mut f = json!({
                "name": format!("flag_{i}"),
                "description": format!("generated flag number {i}"),
                "is_enabled": i % 7 != 0,
                "rollout_percentage": (i % 100) as f64,
                "targeting_rules": {"country": {"$in": ["US", "CA", "GB", "DE"]}},
                "tags": ["generated", format!("team-{}", i % 12)],
            });
            if i % 3 == 0 {
                f["rules"] = json!([{"condition": {"plan": "enterprise"}, "serve": {"variant": "on"}}]);
            }
            if i % 10 == 0 {
                f["rules"] = json!([
                    {"condition": {"$segment": "staff"}, "serve": {"variant": "on"}},
                    {"condition": {"email": {"$regex": format!("^qa{i}@")}}, "serve": {"variant": "off"}}
                ]);
            }
            f
        })
        .collect();
    json!({
        "environment": "production",
        "version": 1,
        "segments": [{"name": "staff", "criteria": {"email": {"$regex": "@corp\\.com$"}}}],
        "flags": flags,
    })
}

/// The bench ruleset for single-flag figures: the simple flag, the five-rule flag and the
/// three-variant experiment the targets in BENCHMARKS.md refer to.
pub fn feature_ruleset() -> Value {
    json!({
        "environment": "production",
        "version": 1,
        "segments": [
            {"name": "premium", "criteria": {"tier": {"$in": ["premium", "enterprise"]}}}
        ],
        "flags": [
            {"name": "simple", "is_enabled": true, "rollout_percentage": 50,
             "targeting_rules": {"country": {"$in": ["US", "CA"]}}},
            {"name": "five_rules", "is_enabled": true,
             "variants": [{"name": "a", "value": "A"}, {"name": "b", "value": "B"},
                          {"name": "c", "value": "C"}],
             "rules": [
                {"condition": {"email": {"$regex": "@competitor\\.com$"}}, "serve": {"variant": "c"}},
                {"condition": {"age": {"$lt": 18}}, "serve": {"variant": "c"}},
                {"condition": {"$segment": "premium"}, "serve": {"variant": "a"}},
                {"condition": {"app_version": {"$vlt": "2.0.0"}}, "serve": {"variant": "c"}},
                {"condition": {"country": {"$in": ["US", "CA"]}}, "serve": {"rollout": [
                    {"variant": "a", "weight": 50}, {"variant": "b", "weight": 50}]}}
             ],
             "default": {"variant": "b"}}
        ],
        "experiments": [
            {"name": "checkout", "is_active": true, "variants": ["control", "one_page", "two_page"],
             "traffic_splits": {"control": 34, "one_page": 33, "two_page": 33},
             "targeting_rules": {"country": "US"}}
        ]
    })
}
