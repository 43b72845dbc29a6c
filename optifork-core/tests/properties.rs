//! Property tests: determinism, monotonicity, serde round trips, and no panics on arbitrary
//! input.

use optifork_core::{Condition, Context, Engine, Flag, Ruleset, bucket};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Keys that reach the interesting code paths: operators, the model's fields, attributes.
const KEYS: &[&str] = &[
    "$and",
    "$or",
    "$nor",
    "$not",
    "$segment",
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$regex",
    "$options",
    "$all",
    "$size",
    "$elemMatch",
    "$vgt",
    "$vgte",
    "$vlt",
    "$vlte",
    "$veq",
    "$vne",
    "$bogus",
    "name",
    "flags",
    "segments",
    "configs",
    "experiments",
    "criteria",
    "is_enabled",
    "rollout_percentage",
    "targeting_rules",
    "rules",
    "condition",
    "serve",
    "variant",
    "rollout",
    "weight",
    "variants",
    "value",
    "default",
    "off_variant",
    "prerequisites",
    "flag",
    "kind",
    "config_data",
    "overrides",
    "segment",
    "traffic_splits",
    "allocation",
    "layer",
    "range",
    "control",
    "is_active",
    "bucket_by",
    "country",
    "a.b",
    "tags",
    "age",
    "x",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop_oneof![
            Just("US".to_string()),
            Just("on".to_string()),
            Just("control".to_string()),
            Just("1.2.3".to_string()),
            Just("([".to_string()),
            Just("a".to_string()),
            "[a-z$.]{0,6}",
            "\\PC{0,4}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|kvs| {
                Value::Object(kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn arb_context() -> impl Strategy<Value = Context> {
    (
        prop::option::of("[a-z0-9]{0,8}"),
        prop::collection::vec(
            (
                prop::sample::select(&["country", "tags", "age", "x", "a"][..]),
                arb_json(),
            ),
            0..4,
        ),
    )
        .prop_map(|(key, attrs)| {
            let mut ctx = Context::anonymous();
            ctx.set_key(key);
            for (k, v) in attrs {
                ctx.set(k, optifork_core::Value::from(&v));
            }
            ctx
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn compiling_arbitrary_json_never_panics(doc in arb_json()) {
        let _ = Engine::from_json(&doc.to_string());
        let _ = Condition::compile(&doc);
    }

    #[test]
    fn compiling_arbitrary_rulesets_never_panics(
        flags in prop::collection::vec(arb_json(), 0..3),
        segments in prop::collection::vec(arb_json(), 0..3),
        experiments in prop::collection::vec(arb_json(), 0..2),
    ) {
        let doc = json!({"flags": flags, "segments": segments, "experiments": experiments});
        let _ = Engine::from_json(&doc.to_string());
    }

    #[test]
    fn matching_arbitrary_conditions_never_panics(cond in arb_json(), ctx in arb_context()) {
        if let Ok(c) = Condition::compile(&cond) {
            let _ = c.matches(&ctx);
        }
    }

    #[test]
    fn evaluation_is_deterministic(cond in arb_json(), ctx in arb_context(), pct in 0u32..=10000) {
        let doc = json!({"flags": [{"name": "f", "is_enabled": true,
            "rollout_percentage": f64::from(pct) / 100.0, "targeting_rules": cond}]}).to_string();
        if let (Ok(a), Ok(b)) = (Engine::from_json(&doc), Engine::from_json(&doc)) {
            prop_assert_eq!(a.evaluate("f", &ctx), b.evaluate("f", &ctx));
            prop_assert_eq!(a.evaluate("f", &ctx), a.evaluate("f", &ctx));
        }
    }

    #[test]
    fn bucket_is_below_10000_and_stable(salt in "\\PC{0,20}", unit in "\\PC{0,40}") {
        let b = bucket(&salt, &unit);
        prop_assert!(b < 10_000);
        prop_assert_eq!(b, bucket(&salt, &unit));
    }

    #[test]
    fn raising_a_rollout_never_removes_a_user(
        id in "[a-zA-Z0-9_-]{1,24}", lo in 0u32..=10000, delta in 0u32..=10000,
    ) {
        let hi = (lo + delta).min(10000);
        let make = |bp: u32| Engine::from_json(&json!({"flags": [{"name": "f", "is_enabled": true,
            "rollout_percentage": f64::from(bp) / 100.0}]}).to_string()).unwrap();
        let ctx = Context::new(id);
        if make(lo).is_enabled("f", &ctx) {
            prop_assert!(make(hi).is_enabled("f", &ctx));
        }
    }

    #[test]
    fn raising_an_allocation_never_moves_an_enrolled_user(
        id in "[a-zA-Z0-9_-]{1,24}",
        w in prop::collection::vec(1u32..100, 2..5),
        lo in 0u32..=10000, delta in 0u32..=10000,
    ) {
        // Integer weights summing to exactly 100.
        let total: u32 = w.iter().sum();
        let mut weights: Vec<u32> = w.iter().map(|x| x * 100 / total).collect();
        let rest = 100 - weights.iter().sum::<u32>();
        weights[0] += rest;
        let names: Vec<String> = (0..weights.len()).map(|i| if i == 0 { "control".into() } else { format!("v{i}") }).collect();
        let splits: serde_json::Map<String, Value> =
            names.iter().zip(&weights).map(|(n, w)| (n.clone(), json!(w))).collect();
        let hi = (lo + delta).min(10000);
        let make = |bp: u32| Engine::from_json(&json!({"experiments": [{"name": "e",
            "is_active": true, "variants": names, "traffic_splits": splits,
            "allocation": f64::from(bp) / 100.0}]}).to_string()).unwrap();
        let ctx = Context::new(id);
        let (a, b) = (make(lo), make(hi));
        let before = a.assign("e", &ctx);
        if before.in_experiment {
            let after = b.assign("e", &ctx);
            prop_assert!(after.in_experiment);
            prop_assert_eq!(before.variant, after.variant);
        }
    }

    #[test]
    fn flags_round_trip_through_serde(
        name in "[a-z_]{1,12}", enabled in any::<bool>(), pct in 0u32..=10000,
        country in prop::option::of("[A-Z]{2}"), track in any::<bool>(),
        tags in prop::collection::vec("[a-z]{1,5}", 0..3),
    ) {
        let mut doc = json!({"name": name, "is_enabled": enabled,
            "rollout_percentage": f64::from(pct) / 100.0, "track": track, "tags": tags,
            "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
            "rules": [{"condition": {"age": {"$gte": 18}}, "serve": {"rollout": [
                {"variant": "on", "weight": 25}, {"variant": "off", "weight": 75}]}}],
            "prerequisites": []});
        if let Some(c) = country {
            doc["targeting_rules"] = json!({"country": c});
        }
        let flag: Flag = serde_json::from_value(doc).unwrap();
        let text = serde_json::to_string(&flag).unwrap();
        let back: Flag = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&flag, &back);
        let rs = Ruleset { flags: vec![flag], ..Ruleset::default() };
        let text = serde_json::to_string(&rs).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Ruleset>(&text).unwrap(), &rs);
        prop_assert!(Engine::compile(&rs).is_ok());
    }

    #[test]
    fn context_round_trips_through_json(ctx in arb_context()) {
        let text = serde_json::to_string(&ctx).unwrap();
        let back: Context = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back.key(), ctx.key());
        for (name, value) in ctx.attributes() {
            prop_assert_eq!(back.get(name), Some(value));
        }
    }
}
