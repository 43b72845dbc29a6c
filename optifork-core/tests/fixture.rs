//! The shared evaluation fixture (`tests/vectors/evaluation.json`), which the Python and Node
//! bindings run too: all three must produce exactly these results.

use optifork_core::{Context, Engine, Ruleset};
use serde_json::{Value, json};

fn fixture() -> Value {
    serde_json::from_str(include_str!("vectors/evaluation.json")).expect("fixture parses")
}

/// What the core produced for one case, in the fixture's shape.
fn actual(engine: &Engine, case: &Value) -> Value {
    let ctx = Context::from_json(&case["context"]);
    let name = |field: &str| {
        case[field]
            .as_str()
            .expect("case names its target")
            .to_owned()
    };
    match case["type"].as_str() {
        Some("flag") => {
            let e = engine.evaluate(&name("flag"), &ctx);
            json!({
                "value": e.value.map(|v| v.to_json()),
                "variant": e.variant,
                "reason": e.reason.as_str(),
                "error_code": e.error.map(|c| c.as_str()),
                "rule_index": e.rule_index,
            })
        }
        Some("config") => {
            json!({"value": engine.config(&name("config"), &ctx).map(|r| r.value.into_owned())})
        }
        Some("segments") => json!({"segments": engine.segments(&ctx).collect::<Vec<_>>()}),
        Some("assign") => {
            let a = engine.assign(&name("experiment"), &ctx);
            json!({"variant": a.variant, "in_experiment": a.in_experiment, "reason": a.reason.as_str()})
        }
        other => panic!("unknown case type {other:?}"),
    }
}

#[test]
fn core_agrees_with_the_shared_evaluation_fixture() {
    let doc = fixture();
    let ruleset: Ruleset = serde_json::from_value(doc["ruleset"].clone()).unwrap();
    let engine = Engine::compile(&ruleset).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for case in cases {
        let got = actual(&engine, case);
        if got != case["expected"] {
            failures.push(format!(
                "{}: expected {}, got {}",
                case["description"], case["expected"], got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fixture_covers_every_kind_of_case() {
    let doc = fixture();
    for kind in ["flag", "config", "segments", "assign"] {
        assert!(
            doc["cases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == kind),
            "no {kind} case"
        );
    }
}
