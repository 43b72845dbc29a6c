//! The evaluation API over a bootstrap ruleset, offline: typed getters, details, configs,
//! segments, experiments, the borrowing evaluator, manual updates.

use optifork_sdk::{
    AssignmentReason, Client, Context, ErrorCode, FlagValue, Reason, SdkError, Source, State,
};
use serde_json::json;

const RULESET: &str = r##"{
  "environment": "production", "version": 7,
  "segments": [{"name": "premium", "criteria": {"tier": {"$in": ["premium", "enterprise"]}}}],
  "flags": [
    {"name": "new_checkout", "is_enabled": true, "targeting_rules": {"country": {"$in": ["US", "CA"]}}},
    {"name": "off", "is_enabled": false},
    {"name": "color", "is_enabled": true,
     "variants": [{"name": "red", "value": "#f00"}, {"name": "blue", "value": "#00f"}],
     "rules": [{"condition": {"$segment": "premium"}, "serve": {"variant": "red"}}],
     "default": {"variant": "blue"}},
    {"name": "limit", "is_enabled": true, "variants": [{"name": "ten", "value": 10}]},
    {"name": "ratio", "is_enabled": true, "variants": [{"name": "half", "value": 0.5}]},
    {"name": "layout", "is_enabled": true, "kind": "json",
     "variants": [{"name": "grid", "value": {"columns": 3}}]},
    {"name": "half", "is_enabled": true, "rollout_percentage": 50}
  ],
  "configs": [{"name": "theme", "config_data": {"color": "blue", "font": {"size": 12}},
               "overrides": [{"segment": "premium", "config_data": {"font": {"size": 14}}}]}],
  "experiments": [{"name": "exp", "variants": ["control", "b"], "is_active": true,
                   "targeting_rules": {"country": "US"}}]
}"##;

fn client() -> Client {
    Client::builder("", "")
        .offline(true)
        .bootstrap_json(RULESET)
        .build()
        .unwrap()
}

#[test]
fn flags_evaluate_with_typed_getters_and_details() {
    let c = client();
    let us = Context::new("u1").with("country", "US");
    let fr = Context::new("u1").with("country", "FR");
    let premium = Context::new("u2").with("tier", "premium");
    assert!(c.is_enabled("new_checkout", &us));
    assert!(!c.is_enabled("new_checkout", &fr));
    assert!(!c.is_enabled("missing", &us));
    assert!(!c.is_enabled("color", &us), "not a boolean flag");
    assert!(c.bool_value("missing", &us, true));

    assert_eq!(c.string_value("color", &premium, "x"), "#f00");
    assert_eq!(c.string_value("color", &us, "x"), "#00f");
    assert_eq!(c.string_value("limit", &us, "x"), "x");
    assert_eq!(c.int_value("limit", &us, 0), 10);
    assert_eq!(c.number_value("ratio", &us, 0.0), 0.5);
    assert_eq!(c.int_value("ratio", &us, -1), -1);
    assert_eq!(
        c.json_value("layout", &us, json!(null)),
        json!({"columns": 3})
    );
    assert_eq!(c.json_value("color", &us, json!("d")), json!("d"));

    let d = c.string_details("color", &premium, "x");
    assert_eq!(
        (
            d.value.as_str(),
            d.variant.as_deref(),
            d.reason,
            d.rule_index
        ),
        ("#f00", Some("red"), Reason::TargetingMatch, Some(0))
    );
    let d = c.bool_details("off", &us, true);
    assert_eq!((d.value, d.reason), (false, Reason::Disabled));
    let d = c.int_details("ratio", &us, 3);
    assert_eq!((d.value, d.error), (3, Some(ErrorCode::TypeMismatch)));
    let d = c.bool_details("missing", &us, true);
    assert_eq!((d.value, d.error), (true, Some(ErrorCode::FlagNotFound)));
    let d = c.bool_details("half", &Context::anonymous(), false);
    assert_eq!(d.error, Some(ErrorCode::TargetingKeyMissing));
    let e = c.evaluate("limit", &us);
    assert_eq!(e.value, Some(FlagValue::Number(10.0)));
    assert_eq!(
        c.json_details("layout", &us, json!(0)).variant.as_deref(),
        Some("grid")
    );
    assert_eq!(c.number_details("ratio", &us, 0.0).reason, Reason::Static);
}

#[test]
fn configs_segments_and_experiments_resolve() {
    let c = client();
    let premium = Context::new("u2").with("tier", "premium");
    assert_eq!(
        c.config("theme", &premium),
        Some(json!({"color": "blue", "font": {"size": 14}}))
    );
    assert_eq!(
        c.config("theme", &Context::new("u3")),
        Some(json!({"color": "blue", "font": {"size": 12}}))
    );
    assert_eq!(c.config("nope", &premium), None);
    assert_eq!(c.segments(&premium), ["premium"]);
    assert_eq!(c.in_segment("premium", &Context::new("x")), Some(false));
    assert_eq!(c.in_segment("nope", &premium), None);

    let a = c.assign("exp", &Context::new("u1").with("country", "US"));
    assert!(a.in_experiment && ["control", "b"].contains(&a.variant.as_str()));
    let a = c.assign("exp", &Context::new("u1").with("country", "FR"));
    assert_eq!(
        (a.variant.as_str(), a.in_experiment, a.reason),
        ("control", false, AssignmentReason::TargetingMismatch)
    );
}

#[test]
fn an_evaluator_pins_one_ruleset_and_borrows_from_it() {
    let c = client();
    let us = Context::new("u1").with("country", "US");
    let ev = c.evaluator();
    assert_eq!(ev.version(), 7);
    let color: &str = ev.string_value("color", &us, "none");
    // A new ruleset arrives; the pinned one still answers, the client answers anew.
    let change = c
        .update_ruleset_json(
            r#"{"version": 8, "flags": [{"name": "new_checkout", "is_enabled": false}]}"#,
        )
        .unwrap();
    assert_eq!(change.previous_version, Some(7));
    assert!(change.flag_changed("color") && change.flag_changed("new_checkout"));
    assert_eq!(change.configs, ["theme"]);
    assert_eq!(color, "#00f");
    assert!(ev.is_enabled("new_checkout", &us));
    assert_eq!(
        ev.segments(&Context::new("x").with("tier", "enterprise"))
            .count(),
        1
    );
    drop(ev);
    assert!(!c.is_enabled("new_checkout", &us));
    assert_eq!(c.string_value("color", &us, "none"), "none");
    let status = c.status();
    assert_eq!(
        (status.version, status.source),
        (Some(8), Some(Source::Manual))
    );
}

#[test]
fn an_offline_client_is_ready_with_its_bootstrap_and_records_nothing() {
    let c = client();
    let status = c
        .wait_until_ready(std::time::Duration::from_millis(10))
        .unwrap();
    assert_eq!(
        (status.state, status.source),
        (State::Ready, Some(Source::Bootstrap))
    );
    c.track("x", &Context::new("u1"), None);
    c.assign("exp", &Context::new("u1").with("country", "US"));
    assert_eq!(c.stats().buffered, 0);
    c.flush(std::time::Duration::from_secs(1)).unwrap();
    c.close().unwrap();

    let empty = Client::builder("", "").offline(true).build().unwrap();
    assert_eq!(empty.status().state, State::NotReady);
    assert!(matches!(
        empty.wait_until_ready(std::time::Duration::from_millis(10)),
        Err(SdkError::NotReady { .. })
    ));
    assert_eq!(
        empty.bool_details("f", &Context::new("u"), true).error,
        Some(ErrorCode::FlagNotFound)
    );
}

#[test]
fn a_panicking_change_listener_does_not_stop_updates() {
    let c = client();
    c.on_change(|_| panic!("listener bug"));
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s = std::sync::Arc::clone(&seen);
    c.on_change(move |_| {
        s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    c.update_ruleset_json(r#"{"version": 9, "flags": []}"#)
        .unwrap();
    c.update_ruleset_json(r#"{"version": 10, "flags": [{"name": "a"}]}"#)
        .unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    // No change, no call.
    c.update_ruleset_json(r#"{"version": 10, "flags": [{"name": "a"}]}"#)
        .unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(c.version(), Some(10));
}
