//! Evaluation semantics: flags (order, reasons, typed values, prerequisites), configs,
//! segments and experiments.

use optifork_core::{
    AssignmentReason, Context, Engine, ErrorCode, FlagKind, FlagValue, Reason, bucket,
};
use serde_json::{Value, json};

fn engine(ruleset: Value) -> Engine {
    Engine::from_json(&ruleset.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn user(id: &str) -> Context {
    Context::new(id)
}

/// A user id whose bucket for `salt` is below (`inside`) or at/above `bp` basis points.
fn id_with_bucket(salt: &str, bp: u32, inside: bool) -> String {
    (0..)
        .map(|i| format!("probe-{i}"))
        .find(|id| (bucket(salt, id) < bp) == inside)
        .unwrap()
}

// --- the seed's flag ------------------------------------------------------------------------

#[test]
fn seed_flag_is_on_for_matching_users_inside_the_rollout() {
    let e = engine(json!({"flags": [{"name": "new_feature", "description": "",
        "is_enabled": true, "rollout_percentage": 50, "targeting_rules": {"country": "US"}}]}));
    let inside = id_with_bucket("new_feature", 5000, true);
    let ev = e.evaluate("new_feature", &user(&inside).with("country", "US"));
    assert_eq!(ev.value, Some(&FlagValue::Bool(true)));
    assert_eq!(ev.variant, Some("on"));
    assert_eq!(ev.reason, Reason::Split);
}

#[test]
fn seed_flag_is_off_outside_the_rollout() {
    let e = engine(json!({"flags": [{"name": "new_feature", "is_enabled": true,
        "rollout_percentage": 50, "targeting_rules": {"country": "US"}}]}));
    let outside = id_with_bucket("new_feature", 5000, false);
    let ev = e.evaluate("new_feature", &user(&outside).with("country", "US"));
    assert_eq!((ev.variant, ev.reason), (Some("off"), Reason::Split));
    assert_eq!(ev.value, Some(&FlagValue::Bool(false)));
}

#[test]
fn seed_flag_is_off_for_users_not_matching_targeting() {
    let e = engine(json!({"flags": [{"name": "f", "is_enabled": true,
        "targeting_rules": {"tier": "premium"}}]}));
    let ev = e.evaluate("f", &user("u").with("tier", "free"));
    assert_eq!((ev.variant, ev.reason), (Some("off"), Reason::Default));
    let ev = e.evaluate("f", &user("u").with("tier", "premium"));
    assert_eq!(
        (ev.variant, ev.reason),
        (Some("on"), Reason::TargetingMatch)
    );
}

#[test]
fn disabled_flag_is_off_for_everyone() {
    let e = engine(json!({"flags": [{"name": "f", "is_enabled": false}]}));
    let ev = e.evaluate("f", &user("u"));
    assert_eq!((ev.variant, ev.reason), (Some("off"), Reason::Disabled));
    assert!(!e.is_enabled("f", &user("u")));
}

#[test]
fn new_flags_are_off_by_default() {
    let e = engine(json!({"flags": [{"name": "f"}]}));
    assert_eq!(e.evaluate("f", &user("u")).reason, Reason::Disabled);
}

#[test]
fn flag_on_for_everyone_is_static() {
    let e = engine(json!({"flags": [{"name": "f", "is_enabled": true}]}));
    let ev = e.evaluate("f", &Context::anonymous());
    assert_eq!(
        (ev.variant, ev.reason, ev.rule_index),
        (Some("on"), Reason::Static, None)
    );
}

#[test]
fn zero_rollout_is_off_for_everyone_without_needing_a_key() {
    let e = engine(json!({"flags": [{"name": "f", "is_enabled": true, "rollout_percentage": 0}]}));
    let ev = e.evaluate("f", &Context::anonymous());
    assert_eq!((ev.variant, ev.error), (Some("off"), None));
}

#[test]
fn unknown_flag_is_an_error_with_no_value() {
    let e = engine(json!({}));
    let ev = e.evaluate("nope", &user("u"));
    assert_eq!(
        (ev.reason, ev.error, ev.value),
        (Reason::Error, Some(ErrorCode::FlagNotFound), None)
    );
    assert!(!e.is_enabled("nope", &user("u")));
    assert!(e.bool_value("nope", &user("u"), true));
}

#[test]
fn partial_rollout_without_a_key_reports_targeting_key_missing() {
    let e = engine(json!({"flags": [{"name": "f", "is_enabled": true, "rollout_percentage": 50}]}));
    let d = e.bool_details("f", &Context::anonymous(), true);
    assert_eq!(
        (d.value, d.reason, d.error),
        (true, Reason::Error, Some(ErrorCode::TargetingKeyMissing))
    );
}

#[test]
fn bucket_by_hashes_another_attribute() {
    let e = engine(
        json!({"flags": [{"name": "f", "is_enabled": true, "rollout_percentage": 50,
        "bucket_by": "company"}]}),
    );
    let inside = id_with_bucket("f", 5000, true);
    let outside = id_with_bucket("f", 5000, false);
    // Same user key, different companies: the company decides.
    assert!(e.is_enabled("f", &user("same").with("company", inside.as_str())));
    assert!(!e.is_enabled("f", &user("same").with("company", outside.as_str())));
    let ev = e.evaluate("f", &user("same"));
    assert_eq!(ev.error, Some(ErrorCode::TargetingKeyMissing));
}

#[test]
fn salt_overrides_the_flag_name_in_the_hash() {
    let e = engine(
        json!({"flags": [{"name": "renamed", "salt": "original", "is_enabled": true,
        "rollout_percentage": 30}]}),
    );
    for i in 0..200 {
        let id = format!("u{i}");
        assert_eq!(
            e.is_enabled("renamed", &user(&id)),
            bucket("original", &id) < 3000
        );
    }
}

// --- rules ----------------------------------------------------------------------------------

fn multivariate() -> Engine {
    engine(json!({
        "segments": [{"name": "staff", "criteria": {"email": {"$regex": "@corp\\.com$"}}}],
        "flags": [{
            "name": "button_color", "is_enabled": true,
            "variants": [{"name": "blue", "value": "#00f"}, {"name": "green", "value": "#0f0"},
                         {"name": "red", "value": "#f00"}],
            "rules": [
                {"condition": {"$segment": "staff"}, "serve": {"variant": "red"}},
                {"condition": {"country": "US"}, "serve": {"rollout": [
                    {"variant": "blue", "weight": 50}, {"variant": "green", "weight": 50}]}}
            ],
            "default": {"variant": "blue"},
            "off_variant": "blue"
        }]
    }))
}

#[test]
fn first_matching_rule_wins_and_reports_its_index() {
    let e = multivariate();
    let ctx = user("u").with("email", "a@corp.com").with("country", "US");
    let d = e.string_details("button_color", &ctx, "none");
    assert_eq!(
        (d.value, d.variant, d.reason, d.rule_index),
        ("#f00", Some("red"), Reason::TargetingMatch, Some(0))
    );
}

#[test]
fn rollout_rule_splits_by_weight() {
    let e = multivariate();
    let id_blue = id_with_bucket("button_color", 5000, true);
    let id_green = id_with_bucket("button_color", 5000, false);
    let d = e.string_details("button_color", &user(&id_blue).with("country", "US"), "");
    assert_eq!(
        (d.value, d.reason, d.rule_index),
        ("#00f", Reason::Split, Some(1))
    );
    let d = e.string_details("button_color", &user(&id_green).with("country", "US"), "");
    assert_eq!(
        (d.value, d.reason, d.rule_index),
        ("#0f0", Reason::Split, Some(1))
    );
}

#[test]
fn no_matching_rule_serves_the_default() {
    let e = multivariate();
    let d = e.string_details("button_color", &user("u").with("country", "FR"), "");
    assert_eq!(
        (d.value, d.reason, d.rule_index),
        ("#00f", Reason::Default, None)
    );
}

#[test]
fn rules_come_before_the_fallthrough_targeting_and_rollout() {
    let e = engine(
        json!({"flags": [{"name": "f", "is_enabled": true, "rollout_percentage": 0,
        "targeting_rules": {"country": "US"},
        "rules": [{"condition": {"email": "boss@corp.com"}, "serve": {"variant": "on"}}]}]}),
    );
    assert!(
        e.is_enabled(
            "f",
            &user("u")
                .with("email", "boss@corp.com")
                .with("country", "FR")
        )
    );
    assert!(!e.is_enabled("f", &user("u").with("country", "US")));
}

#[test]
fn rule_rollout_can_bucket_by_its_own_attribute() {
    let e = engine(
        json!({"flags": [{"name": "f", "is_enabled": true, "rules": [
        {"condition": {}, "serve": {"bucket_by": "org", "rollout": [
            {"variant": "on", "weight": 50}, {"variant": "off", "weight": 50}]}}]}]}),
    );
    let org_in = id_with_bucket("f", 5000, true);
    let org_out = id_with_bucket("f", 5000, false);
    assert!(e.is_enabled("f", &user("x").with("org", org_in.as_str())));
    assert!(!e.is_enabled("f", &user("x").with("org", org_out.as_str())));
}

#[test]
fn a_rollout_with_one_full_weight_variant_needs_no_key() {
    let e = engine(
        json!({"flags": [{"name": "f", "is_enabled": true, "default": {"rollout": [
        {"variant": "on", "weight": 100}, {"variant": "off", "weight": 0}]}}]}),
    );
    let ev = e.evaluate("f", &Context::anonymous());
    assert_eq!((ev.variant, ev.error), (Some("on"), None));
}

// --- typed values ---------------------------------------------------------------------------

fn typed() -> Engine {
    engine(json!({"flags": [
        {"name": "b", "is_enabled": true},
        {"name": "s", "is_enabled": true, "variants": [{"name": "x", "value": "hello"}]},
        {"name": "n", "is_enabled": true, "variants": [{"name": "x", "value": 2.5}]},
        {"name": "i", "is_enabled": true, "variants": [{"name": "x", "value": 42}]},
        {"name": "j", "is_enabled": true, "variants": [{"name": "x", "value": {"limit": 3}}]},
        {"name": "off_no_variant", "is_enabled": false, "variants": [{"name": "x", "value": "v"}]}
    ]}))
}

#[test]
fn typed_getters_return_the_flag_value() {
    let e = typed();
    let ctx = user("u");
    assert!(e.bool_value("b", &ctx, false));
    assert_eq!(e.string_value("s", &ctx, "d"), "hello");
    assert_eq!(e.number_value("n", &ctx, 0.0), 2.5);
    assert_eq!(e.int_value("i", &ctx, 0), 42);
    assert_eq!(e.json_value("j", &ctx, &json!(null)), &json!({"limit": 3}));
}

#[test]
fn kinds_are_inferred_from_variant_values() {
    let e = typed();
    assert_eq!(e.flag_kind("b"), Some(FlagKind::Boolean));
    assert_eq!(e.flag_kind("s"), Some(FlagKind::String));
    assert_eq!(e.flag_kind("n"), Some(FlagKind::Number));
    assert_eq!(e.flag_kind("j"), Some(FlagKind::Json));
}

#[test]
fn type_mismatch_returns_the_default_with_an_error_reason() {
    let e = typed();
    let ctx = user("u");
    let d = e.bool_details("s", &ctx, true);
    assert_eq!(
        (d.value, d.reason, d.error, d.variant),
        (true, Reason::Error, Some(ErrorCode::TypeMismatch), None)
    );
    let d = e.string_details("b", &ctx, "dflt");
    assert_eq!((d.value, d.error), ("dflt", Some(ErrorCode::TypeMismatch)));
    let d = e.int_details("n", &ctx, 7);
    assert_eq!((d.value, d.error), (7, Some(ErrorCode::TypeMismatch)));
    let d = e.number_details("j", &ctx, 1.0);
    assert_eq!((d.value, d.error), (1.0, Some(ErrorCode::TypeMismatch)));
}

#[test]
fn off_flag_without_off_variant_returns_the_default_with_disabled() {
    let e = typed();
    let d = e.string_details("off_no_variant", &user("u"), "fallback");
    assert_eq!(
        (d.value, d.reason, d.error, d.variant),
        ("fallback", Reason::Disabled, None, None)
    );
}

#[test]
fn is_enabled_is_false_for_non_boolean_flags() {
    assert!(!typed().is_enabled("s", &user("u")));
}

#[test]
fn track_is_reported_with_the_evaluation() {
    let e = engine(
        json!({"flags": [{"name": "t", "is_enabled": true, "track": true},
                                     {"name": "u", "is_enabled": true}]}),
    );
    assert!(e.evaluate("t", &user("x")).track);
    assert!(!e.evaluate("u", &user("x")).track);
}

// --- prerequisites --------------------------------------------------------------------------

fn with_prereq(parent_enabled: bool, parent_targeting: Value) -> Engine {
    engine(json!({"flags": [
        {"name": "child", "is_enabled": true, "prerequisites": [{"flag": "parent"}]},
        {"name": "parent", "is_enabled": parent_enabled, "targeting_rules": parent_targeting}
    ]}))
}

#[test]
fn prerequisite_serving_true_lets_the_flag_evaluate() {
    let e = with_prereq(true, json!({}));
    assert_eq!(e.evaluate("child", &user("u")).reason, Reason::Static);
    assert!(e.is_enabled("child", &user("u")));
}

#[test]
fn prerequisite_off_turns_the_flag_off() {
    let e = with_prereq(false, json!({}));
    let ev = e.evaluate("child", &user("u"));
    assert_eq!(
        (ev.variant, ev.reason),
        (Some("off"), Reason::PrerequisiteFailed)
    );
}

#[test]
fn prerequisite_serving_another_variant_turns_the_flag_off() {
    let e = with_prereq(true, json!({"beta": true}));
    assert!(!e.is_enabled("child", &user("u")));
    assert!(e.is_enabled("child", &user("u").with("beta", true)));
}

#[test]
fn prerequisite_may_require_named_variants() {
    let e = engine(json!({"flags": [
        {"name": "child", "is_enabled": true,
         "prerequisites": [{"flag": "plan", "variants": ["pro", "team"]}]},
        {"name": "plan", "is_enabled": true,
         "variants": [{"name": "free", "value": "free"}, {"name": "pro", "value": "pro"},
                      {"name": "team", "value": "team"}],
         "rules": [{"condition": {"paid": true}, "serve": {"variant": "pro"}}],
         "default": {"variant": "free"}}
    ]}));
    assert!(e.is_enabled("child", &user("u").with("paid", true)));
    assert!(!e.is_enabled("child", &user("u")));
}

#[test]
fn prerequisites_chain() {
    let e = engine(json!({"flags": [
        {"name": "a", "is_enabled": true, "prerequisites": [{"flag": "b"}]},
        {"name": "b", "is_enabled": true, "prerequisites": [{"flag": "c"}]},
        {"name": "c", "is_enabled": true, "targeting_rules": {"ok": true}}
    ]}));
    assert!(e.is_enabled("a", &user("u").with("ok", true)));
    assert!(!e.is_enabled("a", &user("u")));
}

// --- configs --------------------------------------------------------------------------------

fn configs() -> Engine {
    engine(json!({
        "segments": [{"name": "premium_users", "criteria": {"tier": "premium"}},
                     {"name": "eu", "criteria": {"country": {"$in": ["FR", "DE"]}}}],
        "configs": [
            {"name": "theme", "config_data": {"color": "blue", "layout": {"sidebar": true, "cols": 2}},
             "overrides": [
                {"segment": "premium_users", "config_data": {"color": "gold", "layout": {"cols": 3}}},
                {"segment": "eu", "config_data": {"color": "green", "cookie_banner": true}}
             ]},
            {"name": "inactive", "config_data": {"a": 1}, "is_active": false},
            {"name": "scalar", "config_data": 5,
             "overrides": [{"condition": {"beta": true}, "config_data": 6}]}
        ]
    }))
}

#[test]
fn config_without_matching_overrides_is_the_general_value() {
    let e = configs();
    let r = e.config("theme", &user("u")).unwrap();
    assert_eq!(
        *r.value,
        json!({"color": "blue", "layout": {"sidebar": true, "cols": 2}})
    );
    assert!(r.matched_overrides.is_empty());
    assert!(matches!(r.value, std::borrow::Cow::Borrowed(_)));
}

#[test]
fn config_deep_merges_a_matching_segment_override() {
    let e = configs();
    let r = e
        .config("theme", &user("u").with("tier", "premium"))
        .unwrap();
    assert_eq!(
        *r.value,
        json!({"color": "gold", "layout": {"sidebar": true, "cols": 3}})
    );
    assert_eq!(r.matched_overrides, vec![0]);
}

#[test]
fn config_first_override_wins_where_several_match() {
    let e = configs();
    let r = e
        .config(
            "theme",
            &user("u").with("tier", "premium").with("country", "FR"),
        )
        .unwrap();
    assert_eq!(
        *r.value,
        json!({"color": "gold", "layout": {"sidebar": true, "cols": 3}, "cookie_banner": true})
    );
    assert_eq!(r.matched_overrides, vec![0, 1]);
}

#[test]
fn non_object_config_values_are_replaced_by_overrides() {
    let e = configs();
    assert_eq!(*e.config("scalar", &user("u")).unwrap().value, json!(5));
    assert_eq!(
        *e.config("scalar", &user("u").with("beta", true))
            .unwrap()
            .value,
        json!(6)
    );
}

#[test]
fn inactive_and_unknown_configs_resolve_to_nothing() {
    let e = configs();
    assert!(e.config("inactive", &user("u")).is_none());
    assert!(e.config("nope", &user("u")).is_none());
}

// --- segments -------------------------------------------------------------------------------

#[test]
fn segments_lists_every_active_segment_the_context_is_in() {
    let e = engine(json!({"segments": [
        {"name": "premium_users", "criteria": {"tier": "premium"}},
        {"name": "us_users", "criteria": {"country": "US"}},
        {"name": "premium_us", "criteria": {"$and": [{"$segment": "premium_users"}, {"$segment": "us_users"}]}},
        {"name": "retired", "criteria": {}, "is_active": false}
    ]}));
    let ctx = user("u").with("tier", "premium").with("country", "US");
    let got: Vec<&str> = e.segments(&ctx).collect();
    assert_eq!(got, ["premium_users", "us_users", "premium_us"]);
    assert_eq!(e.segments(&user("u")).count(), 0);
    assert_eq!(e.in_segment("premium_users", &ctx), Some(true));
    assert_eq!(e.in_segment("retired", &ctx), Some(false));
    assert_eq!(e.in_segment("nope", &ctx), None);
}

#[test]
fn inactive_segment_matches_nobody_in_references() {
    let e = engine(
        json!({"segments": [{"name": "s", "criteria": {}, "is_active": false}],
        "flags": [{"name": "f", "is_enabled": true, "targeting_rules": {"$segment": "s"}}]}),
    );
    assert!(!e.is_enabled("f", &user("u")));
}

#[test]
fn engine_compiled_conditions_resolve_segments() {
    let e = engine(json!({"segments": [{"name": "vip", "criteria": {"vip": true}}]}));
    let c = e.compile_condition(&json!({"$segment": "vip"})).unwrap();
    assert!(c.matches(&user("u").with("vip", true)));
    assert!(!c.matches(&user("u")));
    assert!(e.compile_condition(&json!({"$segment": "nope"})).is_err());
}

// --- experiments ----------------------------------------------------------------------------

fn experiments() -> Engine {
    engine(json!({"experiments": [
        {"name": "checkout", "variants": ["control", "variant_a"],
         "traffic_splits": {"control": 50, "variant_a": 50},
         "targeting_rules": {"country": "US"}, "is_active": true},
        {"name": "paused", "variants": ["control", "b"], "is_active": false},
        {"name": "small", "variants": ["control", "b"], "is_active": true, "allocation": 10},
        {"name": "l1", "variants": ["control", "b"], "is_active": true,
         "layer": {"name": "pricing", "range": [0, 50]}},
        {"name": "l2", "variants": ["control", "b"], "is_active": true,
         "layer": {"name": "pricing", "range": [50, 100]}},
        {"name": "custom", "variants": ["baseline", "x"], "control": "baseline", "is_active": true,
         "targeting_rules": {"never": true}}
    ]}))
}

#[test]
fn matching_users_are_assigned_by_their_bucket() {
    let e = experiments();
    let a = e.assign(
        "checkout",
        &user(&id_with_bucket("checkout", 5000, true)).with("country", "US"),
    );
    assert_eq!(
        (a.variant, a.in_experiment, a.reason),
        ("control", true, AssignmentReason::Assigned)
    );
    let b = e.assign(
        "checkout",
        &user(&id_with_bucket("checkout", 5000, false)).with("country", "US"),
    );
    assert_eq!((b.variant, b.in_experiment), ("variant_a", true));
}

#[test]
fn users_not_matching_targeting_get_control_and_are_not_in() {
    let e = experiments();
    let a = e.assign("checkout", &user("u").with("country", "FR"));
    assert_eq!(
        (a.variant, a.in_experiment, a.reason),
        ("control", false, AssignmentReason::TargetingMismatch)
    );
}

#[test]
fn inactive_and_unknown_experiments_give_control() {
    let e = experiments();
    let a = e.assign("paused", &user("u"));
    assert_eq!(
        (a.variant, a.in_experiment, a.reason),
        ("control", false, AssignmentReason::Inactive)
    );
    let a = e.assign("nope", &user("u"));
    assert_eq!(
        (a.variant, a.in_experiment, a.reason),
        ("control", false, AssignmentReason::NotFound)
    );
}

#[test]
fn assignment_without_a_key_is_not_in_the_experiment() {
    let e = experiments();
    let a = e.assign("small", &Context::anonymous());
    assert_eq!(
        (a.in_experiment, a.reason),
        (false, AssignmentReason::TargetingKeyMissing)
    );
}

#[test]
fn allocation_enrolls_only_that_share() {
    let e = experiments();
    let n = 50_000;
    let enrolled = (0..n)
        .filter(|i| e.assign("small", &user(&format!("u{i}"))).in_experiment)
        .count();
    let share = enrolled as f64 / f64::from(n);
    assert!((share - 0.10).abs() < 0.01, "{share}");
    let out = (0..)
        .map(|i| e.assign("small", &user(&format!("v{i}"))))
        .find(|a| !a.in_experiment)
        .unwrap();
    assert_eq!(
        (out.variant, out.reason),
        ("control", AssignmentReason::NotAllocated)
    );
}

#[test]
fn experiments_in_one_layer_are_mutually_exclusive() {
    let e = experiments();
    let (mut in1, mut in2) = (0, 0);
    for i in 0..20_000 {
        let ctx = user(&format!("u{i}"));
        let (a, b) = (e.assign("l1", &ctx), e.assign("l2", &ctx));
        assert!(!(a.in_experiment && b.in_experiment), "u{i} is in both");
        in1 += usize::from(a.in_experiment);
        in2 += usize::from(b.in_experiment);
        if !a.in_experiment {
            assert_eq!(a.reason, AssignmentReason::OutsideLayer);
        }
    }
    assert!(in1 > 9_000 && in2 > 9_000, "{in1} {in2}");
}

#[test]
fn custom_control_name_is_served_to_non_enrolled_users() {
    let e = experiments();
    let a = e.assign("custom", &user("u"));
    assert_eq!((a.variant, a.in_experiment), ("baseline", false));
}

#[test]
fn equal_splits_when_none_are_given() {
    let e = engine(
        json!({"experiments": [{"name": "e", "variants": ["control", "a", "b"],
        "is_active": true}]}),
    );
    let mut counts = std::collections::HashMap::new();
    for i in 0..30_000 {
        *counts
            .entry(e.assign("e", &user(&format!("u{i}"))).variant)
            .or_insert(0) += 1;
    }
    for v in ["control", "a", "b"] {
        let share = f64::from(counts[v]) / 30_000.0;
        assert!((share - 1.0 / 3.0).abs() < 0.015, "{v} {share}");
    }
}

// --- the engine as a whole ------------------------------------------------------------------

#[test]
fn engine_reports_its_environment_version_and_names() {
    let e = engine(json!({"environment": "staging", "version": 9,
        "flags": [{"name": "a"}, {"name": "b"}], "segments": [{"name": "s", "criteria": {}}]}));
    assert_eq!((e.environment(), e.version()), ("staging", 9));
    assert_eq!(e.flag_names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(e.segment_names().collect::<Vec<_>>(), ["s"]);
    let anon = Context::anonymous();
    let all: Vec<_> = e
        .evaluate_all(&anon)
        .map(|(n, ev)| (n, ev.reason))
        .collect();
    assert_eq!(all, [("a", Reason::Disabled), ("b", Reason::Disabled)]);
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let e = engine(
        json!({"flags": [{"name": "f", "is_enabled": true, "future_field": {"x": 1}}],
        "future_section": []}),
    );
    assert!(e.is_enabled("f", &user("u")));
}
