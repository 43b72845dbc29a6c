//! optifork-core evaluation benchmarks. Targets and results: BENCHMARKS.md.
//!
//! Run: `cargo bench -p optifork-benches --bench core`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use optifork_benches::{feature_ruleset, ruleset_with_flags};
use optifork_core::{Context, Engine};

fn user() -> Context {
    Context::new("user-12345")
        .with("country", "US")
        .with("email", "jane@example.com")
        .with("age", 34)
        .with("tier", "free")
        .with("app_version", "2.4.1")
}

fn evaluation(c: &mut Criterion) {
    let engine = Engine::from_json(&feature_ruleset().to_string()).unwrap();
    let ctx = user();
    let mut g = c.benchmark_group("evaluate");
    g.bench_function("bool_flag_one_condition_rollout", |b| {
        b.iter(|| engine.is_enabled(black_box("simple"), black_box(&ctx)))
    });
    // The shape the Python and Node bindings measure (bindings/*/bench.*): the same flag, a
    // context of a targeting key and three attributes, as a binding builds it.
    let three = || {
        Context::from_attributes(vec![
            ("targetingKey".into(), "user-12345".into()),
            ("country".into(), "US".into()),
            ("tier".into(), "free".into()),
            ("age".into(), 34.into()),
        ])
    };
    let ctx3 = three();
    g.bench_function("bool_flag_3_attribute_context", |b| {
        b.iter(|| engine.is_enabled(black_box("simple"), black_box(&ctx3)))
    });
    g.bench_function("bool_flag_3_attribute_context_built_per_call", |b| {
        b.iter(|| engine.is_enabled(black_box("simple"), &black_box(three())))
    });
    g.bench_function("flag_five_rules_segment_regex", |b| {
        b.iter(|| {
            engine
                .string_value(black_box("five_rules"), black_box(&ctx), "none")
                .len()
        })
    });
    g.bench_function("experiment_assignment_three_variants", |b| {
        b.iter(|| {
            engine
                .assign(black_box("checkout"), black_box(&ctx))
                .variant
                .len()
        })
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    let ctx = user();
    for n in [10usize, 10_000] {
        let engine = Engine::from_json(&ruleset_with_flags(n).to_string()).unwrap();
        // The same flag shape in both: flag_1 (enabled, targeting + 1% rollout, one rule).
        g.bench_with_input(
            BenchmarkId::new("bool_flag_in_ruleset_of", n),
            &n,
            |b, _| b.iter(|| engine.is_enabled(black_box("flag_1"), black_box(&ctx))),
        );
    }
    g.finish();
}

fn compile(c: &mut Criterion) {
    let text = ruleset_with_flags(10_000).to_string();
    let ruleset: optifork_core::Ruleset = serde_json::from_str(&text).unwrap();
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    g.bench_function("ruleset_10000_flags", |b| {
        b.iter(|| Engine::compile(black_box(&ruleset)).unwrap())
    });
    g.bench_function("parse_and_compile_10000_flags", |b| {
        b.iter(|| Engine::from_json(black_box(&text)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, evaluation, lookup, compile);
criterion_main!(benches);
