//! The bucketing contract: golden vectors, uniformity, independence, monotonicity.

use optifork_core::{BUCKETS, Context, Engine, bucket};
use serde::Deserialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    salt: String,
    unit: String,
    bucket: u32,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("vectors/bucketing.json")).expect("bucketing.json parses")
}

#[test]
fn golden_vectors_match_an_independent_implementation() {
    let v = vectors();
    assert!(v.cases.len() >= 200, "need at least 200 golden cases");
    for c in &v.cases {
        assert_eq!(
            bucket(&c.salt, &c.unit),
            c.bucket,
            "salt {:?} unit {:?}",
            c.salt,
            c.unit
        );
    }
}

#[test]
fn golden_vectors_cover_non_ascii_long_and_empty_ids() {
    let v = vectors();
    assert!(v.cases.iter().any(|c| c.unit.is_empty()));
    assert!(v.cases.iter().any(|c| c.salt.is_empty()));
    assert!(v.cases.iter().any(|c| !c.unit.is_ascii()));
    assert!(v.cases.iter().any(|c| c.unit.len() >= 1000));
}

#[test]
fn bucketing_is_deterministic() {
    for i in 0..1000 {
        let id = format!("user-{i}");
        assert_eq!(bucket("flag", &id), bucket("flag", &id));
    }
}

fn p_value(statistic: f64, df: f64) -> f64 {
    1.0 - ChiSquared::new(df).unwrap().cdf(statistic)
}

#[test]
fn buckets_are_uniform_over_a_million_ids() {
    let n = 1_000_000u32;
    let mut counts = vec![0u32; BUCKETS as usize];
    for i in 0..n {
        counts[bucket("uniformity", &format!("user-{i}")) as usize] += 1;
    }
    let expected = f64::from(n) / f64::from(BUCKETS);
    let chi2: f64 = counts
        .iter()
        .map(|&c| (f64::from(c) - expected).powi(2) / expected)
        .sum();
    let p = p_value(chi2, f64::from(BUCKETS - 1));
    assert!(p > 0.001, "chi-square {chi2:.1}, p = {p}");
}

#[test]
fn different_salts_bucket_independently() {
    // A 10 x 10 contingency table of deciles under two salts: independence means no cell
    // departs from the product of its margins.
    let n = 200_000u32;
    let mut table = [[0f64; 10]; 10];
    for i in 0..n {
        let id = format!("{i:08x}");
        let a = bucket("flag_a", &id) / 1000;
        let b = bucket("flag_b", &id) / 1000;
        table[a as usize][b as usize] += 1.0;
    }
    let rows: Vec<f64> = table.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<f64> = (0..10).map(|j| table.iter().map(|r| r[j]).sum()).collect();
    let total = f64::from(n);
    let mut chi2 = 0.0;
    for i in 0..10 {
        for j in 0..10 {
            let e = rows[i] * cols[j] / total;
            chi2 += (table[i][j] - e).powi(2) / e;
        }
    }
    let p = p_value(chi2, 81.0);
    assert!(p > 0.001, "chi-square {chi2:.1}, p = {p}");
}

fn flag_engine(rollout: f64) -> Engine {
    Engine::from_json(&format!(
        r#"{{"flags": [{{"name": "f", "is_enabled": true, "rollout_percentage": {rollout}}}]}}"#
    ))
    .unwrap()
}

#[test]
fn raising_a_rollout_never_removes_a_user() {
    let steps = [0.0, 1.0, 5.5, 20.0, 30.0, 50.0, 99.99, 100.0];
    let engines: Vec<Engine> = steps.iter().map(|&p| flag_engine(p)).collect();
    for i in 0..20_000 {
        let ctx = Context::new(format!("u{i}"));
        let mut was_in = false;
        for e in &engines {
            let now_in = e.is_enabled("f", &ctx);
            assert!(
                now_in || !was_in,
                "user u{i} dropped out as the rollout rose"
            );
            was_in = now_in;
        }
    }
}

#[test]
fn a_rollout_percentage_enrolls_that_share_of_users() {
    let e = flag_engine(20.0);
    let n = 100_000;
    let on = (0..n)
        .filter(|i| e.is_enabled("f", &Context::new(format!("id-{i}"))))
        .count();
    let share = on as f64 / n as f64;
    assert!((share - 0.2).abs() < 0.005, "share {share}");
}

fn experiment_engine(allocation: f64, splits: &str) -> Engine {
    Engine::from_json(&format!(
        r#"{{"experiments": [{{"name": "e", "is_active": true, "allocation": {allocation},
            "variants": ["control", "a", "b"], "traffic_splits": {splits}}}]}}"#
    ))
    .unwrap()
}

#[test]
fn raising_an_allocation_never_moves_an_enrolled_user() {
    let splits = r#"{"control": 34, "a": 33, "b": 33}"#;
    let engines: Vec<Engine> = [5.0, 10.0, 25.0, 60.0, 100.0]
        .iter()
        .map(|&a| experiment_engine(a, splits))
        .collect();
    for i in 0..20_000 {
        let ctx = Context::new(format!("u{i}"));
        let mut prev: Option<&str> = None;
        for e in &engines {
            let a = e.assign("e", &ctx);
            if let Some(p) = prev {
                assert!(
                    a.in_experiment,
                    "u{i} left the experiment as allocation rose"
                );
                assert_eq!(a.variant, p, "u{i} changed variant as allocation rose");
            }
            prev = a.in_experiment.then_some(a.variant);
        }
    }
}

#[test]
fn shifting_weight_between_adjacent_variants_moves_only_the_users_it_must() {
    // 10 points move from "a" to "control": only users of "a" may move, only to "control",
    // and about 10% of all users do.
    let before = experiment_engine(100.0, r#"{"control": 30, "a": 40, "b": 30}"#);
    let after = experiment_engine(100.0, r#"{"control": 40, "a": 30, "b": 30}"#);
    let n = 50_000;
    let mut moved = 0;
    for i in 0..n {
        let ctx = Context::new(format!("u{i}"));
        let (x, y) = (
            before.assign("e", &ctx).variant,
            after.assign("e", &ctx).variant,
        );
        if x != y {
            assert_eq!((x, y), ("a", "control"), "u{i} moved {x} -> {y}");
            moved += 1;
        }
    }
    let share = f64::from(moved) / f64::from(n);
    assert!((share - 0.10).abs() < 0.01, "moved {share}");
}

#[test]
fn two_variant_weight_changes_move_only_the_users_they_must() {
    let before = experiment_engine(100.0, r#"{"control": 34, "a": 33, "b": 33}"#);
    let after = experiment_engine(100.0, r#"{"control": 34, "a": 43, "b": 23}"#);
    for i in 0..20_000 {
        let ctx = Context::new(format!("u{i}"));
        let (x, y) = (
            before.assign("e", &ctx).variant,
            after.assign("e", &ctx).variant,
        );
        assert!(x == y || (x, y) == ("b", "a"), "u{i} moved {x} -> {y}");
    }
}

#[test]
fn traffic_splits_are_honoured() {
    let e = experiment_engine(100.0, r#"{"control": 50, "a": 30, "b": 20}"#);
    let n = 100_000;
    let mut counts = std::collections::HashMap::new();
    for i in 0..n {
        *counts
            .entry(e.assign("e", &Context::new(format!("x{i}"))).variant)
            .or_insert(0) += 1;
    }
    for (v, want) in [("control", 0.5), ("a", 0.3), ("b", 0.2)] {
        let share = f64::from(counts[v]) / f64::from(n);
        assert!((share - want).abs() < 0.01, "{v}: {share}");
    }
}

#[test]
fn numeric_ids_bucket_like_their_decimal_string() {
    let e = Engine::from_json(
        r#"{"flags": [{"name": "f", "is_enabled": true, "rollout_percentage": 50,
            "bucket_by": "account"}]}"#,
    )
    .unwrap();
    for i in 0..500 {
        let as_number = Context::new("x").with("account", i);
        let as_string = Context::new("x").with("account", i.to_string());
        assert_eq!(e.evaluate("f", &as_number), e.evaluate("f", &as_string));
    }
}
