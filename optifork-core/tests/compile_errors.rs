//! Everything that cannot be evaluated is refused at compile time, with the JSON path of the
//! culprit.

use optifork_core::{Condition, Engine, ErrorKind};
use serde_json::{Value, json};

/// Compiles a ruleset that must fail; returns (path, error code).
fn fails(ruleset: Value) -> (String, &'static str, ErrorKind) {
    match Engine::from_json(&ruleset.to_string()) {
        Ok(_) => panic!("compiled, but should not have: {ruleset}"),
        Err(e) => (e.path.to_string(), e.code(), e.kind),
    }
}

fn flag(extra: Value) -> Value {
    let mut f = json!({"name": "f", "is_enabled": true});
    f.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"flags": [f]})
}

#[test]
fn unknown_operator_is_refused_with_its_path() {
    let (path, code, kind) = fails(flag(
        json!({"rules": [{"condition": {"age": {"$gtx": 1}}, "serve": {"variant": "on"}}]}),
    ));
    assert_eq!(path, r#"$.flags[0].rules[0].condition.age["$gtx"]"#);
    assert_eq!(code, "unknown_operator");
    assert_eq!(kind, ErrorKind::UnknownOperator("$gtx".into()));
}

#[test]
fn unknown_top_level_operator_is_refused() {
    let (path, code, _) = fails(flag(json!({"targeting_rules": {"$where": "1"}})));
    assert_eq!(path, r#"$.flags[0].targeting_rules["$where"]"#);
    assert_eq!(code, "unknown_operator");
}

#[test]
fn bad_regex_is_refused() {
    let (path, code, _) = fails(flag(
        json!({"targeting_rules": {"email": {"$regex": "([a-z"}}}),
    ));
    assert_eq!(path, r#"$.flags[0].targeting_rules.email["$regex"]"#);
    assert_eq!(code, "bad_regex");
}

#[test]
fn regex_with_lookaround_is_refused() {
    let (_, code, _) = fails(flag(json!({"targeting_rules": {"e": {"$regex": "(?=a)"}}})));
    assert_eq!(code, "bad_regex");
}

#[test]
fn unknown_regex_option_is_refused() {
    let (path, code, _) = fails(flag(
        json!({"targeting_rules": {"e": {"$regex": "a", "$options": "q"}}}),
    ));
    assert_eq!(path, r#"$.flags[0].targeting_rules.e["$options"]"#);
    assert_eq!(code, "bad_operand");
}

#[test]
fn bad_semver_is_refused() {
    let (path, code, kind) = fails(flag(
        json!({"targeting_rules": {"app_version": {"$vgte": "two.three"}}}),
    ));
    assert_eq!(path, r#"$.flags[0].targeting_rules.app_version["$vgte"]"#);
    assert_eq!(code, "bad_semver");
    assert_eq!(kind, ErrorKind::BadSemver("two.three".into()));
}

#[test]
fn operand_of_the_wrong_shape_is_refused() {
    for (cond, op) in [
        (json!({"a": {"$in": "US"}}), "$in"),
        (json!({"a": {"$nin": 1}}), "$nin"),
        (json!({"a": {"$exists": "yes"}}), "$exists"),
        (json!({"a": {"$size": -1}}), "$size"),
        (json!({"a": {"$size": 1.5}}), "$size"),
        (json!({"a": {"$all": {}}}), "$all"),
        (json!({"a": {"$elemMatch": 3}}), "$elemMatch"),
        (json!({"a": {"$regex": 3}}), "$regex"),
        (json!({"a": {"$gt": [1]}}), "$gt"),
        (json!({"a": {"$not": 3}}), "$not"),
        (json!({"a": {"$vgt": 2}}), "$vgt"),
        (json!({"$or": []}), "$or"),
        (json!({"$and": {}}), "$and"),
        (json!({"$nor": [3]}), "$nor"),
    ] {
        let e = Condition::compile(&cond).expect_err(&cond.to_string());
        assert_eq!(e.code(), "bad_operand", "{cond}");
        assert!(e.path.to_string().contains(op), "{cond}: {}", e.path);
    }
}

#[test]
fn mixing_operators_and_fields_is_refused() {
    let e = Condition::compile(&json!({"a": {"$gt": 1, "b": 2}})).unwrap_err();
    assert_eq!(e.path.to_string(), "$.a.b");
}

#[test]
fn empty_path_parts_are_refused() {
    for field in ["a..b", ".a", "a."] {
        let e = Condition::compile(&json!({ field: 1 })).unwrap_err();
        assert_eq!(e.code(), "invalid", "{field}");
    }
}

#[test]
fn a_condition_must_be_an_object() {
    let e = Condition::compile(&json!(["a"])).unwrap_err();
    assert_eq!(e.path.to_string(), "$");
    let (path, _, _) = fails(flag(json!({"targeting_rules": "tier == premium"})));
    assert_eq!(path, "$.flags[0].targeting_rules");
}

#[test]
fn segment_reference_without_a_ruleset_is_refused() {
    assert!(Condition::compile(&json!({"$segment": "x"})).is_err());
}

#[test]
fn unknown_segment_is_refused() {
    let (path, code, kind) = fails(flag(json!({"targeting_rules": {"$segment": "vips"}})));
    assert_eq!(path, r#"$.flags[0].targeting_rules["$segment"]"#);
    assert_eq!(code, "unknown_segment");
    assert_eq!(kind, ErrorKind::UnknownSegment("vips".into()));
}

#[test]
fn segment_cycle_is_refused_and_named() {
    let (path, code, kind) = fails(json!({"segments": [
        {"name": "a", "criteria": {"$segment": "b"}},
        {"name": "b", "criteria": {"$or": [{"x": 1}, {"$segment": "c"}]}},
        {"name": "c", "criteria": {"$segment": "a"}}
    ]}));
    assert_eq!(code, "segment_cycle");
    assert_eq!(path, "$.segments[0].criteria");
    assert_eq!(
        kind,
        ErrorKind::SegmentCycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn self_referencing_segment_is_refused() {
    let (_, code, _) = fails(json!({"segments": [{"name": "a", "criteria": {"$segment": "a"}}]}));
    assert_eq!(code, "segment_cycle");
}

#[test]
fn overly_long_segment_chains_are_refused() {
    let segments: Vec<Value> = (0..40)
        .map(|i| {
            if i == 39 {
                json!({"name": format!("s{i}"), "criteria": {"x": 1}})
            } else {
                json!({"name": format!("s{i}"), "criteria": {"$segment": format!("s{}", i + 1)}})
            }
        })
        .collect();
    let (_, code, _) = fails(json!({ "segments": segments }));
    assert_eq!(code, "invalid");
}

#[test]
fn deeply_nested_conditions_are_refused() {
    let mut cond = json!({"x": 1});
    for _ in 0..100 {
        cond = json!({ "$and": [cond] });
    }
    let e = Condition::compile(&cond).unwrap_err();
    assert!(e.to_string().contains("deeper"), "{e}");
}

#[test]
fn unknown_prerequisite_flag_is_refused() {
    let (path, code, _) = fails(flag(json!({"prerequisites": [{"flag": "nope"}]})));
    assert_eq!(path, "$.flags[0].prerequisites[0].flag");
    assert_eq!(code, "unknown_flag");
}

#[test]
fn prerequisite_cycle_is_refused_and_named() {
    let (_, code, kind) = fails(json!({"flags": [
        {"name": "a", "prerequisites": [{"flag": "b"}]},
        {"name": "b", "prerequisites": [{"flag": "a"}]}
    ]}));
    assert_eq!(code, "prerequisite_cycle");
    assert_eq!(
        kind,
        ErrorKind::PrerequisiteCycle(vec!["a".into(), "b".into(), "a".into()])
    );
}

#[test]
fn unknown_prerequisite_variant_is_refused() {
    let (path, code, _) = fails(json!({"flags": [
        {"name": "a", "prerequisites": [{"flag": "b", "variants": ["purple"]}]},
        {"name": "b"}
    ]}));
    assert_eq!(path, "$.flags[0].prerequisites[0].variants[0]");
    assert_eq!(code, "unknown_variant");
}

#[test]
fn unknown_variant_in_a_rule_is_refused() {
    let (path, code, _) = fails(flag(
        json!({"rules": [{"condition": {}, "serve": {"variant": "purple"}}]}),
    ));
    assert_eq!(path, "$.flags[0].rules[0].serve.variant");
    assert_eq!(code, "unknown_variant");
}

#[test]
fn unknown_variant_in_a_rollout_is_refused() {
    let (path, code, _) = fails(flag(json!({"default": {"rollout": [
        {"variant": "on", "weight": 50}, {"variant": "maybe", "weight": 50}]}})));
    assert_eq!(path, "$.flags[0].default.rollout[1].variant");
    assert_eq!(code, "unknown_variant");
}

#[test]
fn unknown_off_variant_is_refused() {
    let (path, code, _) = fails(flag(json!({"off_variant": "nope"})));
    assert_eq!(path, "$.flags[0].off_variant");
    assert_eq!(code, "unknown_variant");
}

#[test]
fn rollout_weights_must_sum_to_100() {
    let (path, code, kind) = fails(flag(json!({"default": {"rollout": [
        {"variant": "on", "weight": 50}, {"variant": "off", "weight": 40}]}})));
    assert_eq!(path, "$.flags[0].default.rollout");
    assert_eq!(code, "weights_sum");
    assert_eq!(kind, ErrorKind::WeightsSum(90.0));
}

#[test]
fn a_serve_needs_exactly_one_of_variant_and_rollout() {
    let (path, _, _) = fails(flag(json!({"rules": [{"serve": {}}]})));
    assert_eq!(path, "$.flags[0].rules[0].serve");
    let (path, _, _) = fails(flag(json!({"rules": [{"serve": {"variant": "on",
        "rollout": [{"variant": "on", "weight": 100}]}}]})));
    assert_eq!(path, "$.flags[0].rules[0].serve");
}

#[test]
fn traffic_splits_must_sum_to_100() {
    let (path, code, _) = fails(json!({"experiments": [{"name": "e",
        "variants": ["control", "a"], "traffic_splits": {"control": 50, "a": 49.99}}]}));
    assert_eq!(path, "$.experiments[0].traffic_splits");
    assert_eq!(code, "weights_sum");
}

#[test]
fn traffic_split_for_an_unknown_variant_is_refused() {
    let (path, code, _) = fails(json!({"experiments": [{"name": "e",
        "variants": ["control", "a"], "traffic_splits": {"control": 50, "b": 50}}]}));
    assert_eq!(path, "$.experiments[0].traffic_splits.b");
    assert_eq!(code, "unknown_variant");
}

#[test]
fn traffic_splits_must_cover_every_variant() {
    let (path, code, _) = fails(json!({"experiments": [{"name": "e",
        "variants": ["control", "a", "b"], "traffic_splits": {"control": 50, "a": 50}}]}));
    assert_eq!(path, "$.experiments[0].traffic_splits");
    assert_eq!(code, "invalid");
}

#[test]
fn percentages_must_be_within_0_and_100_at_0_01_precision() {
    let (path, code, _) = fails(flag(json!({"rollout_percentage": 120})));
    assert_eq!(path, "$.flags[0].rollout_percentage");
    assert_eq!(code, "bad_percentage");
    let (_, code, _) = fails(flag(json!({"rollout_percentage": 12.345})));
    assert_eq!(code, "bad_percentage");
    let (path, _, _) = fails(
        json!({"experiments": [{"name": "e", "variants": ["control"],
        "allocation": -5}]}),
    );
    assert_eq!(path, "$.experiments[0].allocation");
}

#[test]
fn experiment_without_control_is_refused() {
    let (path, code, _) = fails(json!({"experiments": [{"name": "e", "variants": ["A", "B"]}]}));
    assert_eq!(path, "$.experiments[0].variants");
    assert_eq!(code, "missing_control");
    let (path, _, _) = fails(json!({"experiments": [{"name": "e", "variants": ["A", "B"],
        "control": "C"}]}));
    assert_eq!(path, "$.experiments[0].control");
}

#[test]
fn experiment_naming_another_baseline_as_control_is_accepted() {
    let e = Engine::from_json(
        &json!({"experiments": [{"name": "e", "variants": ["A", "B"], "control": "A"}]})
            .to_string(),
    );
    assert!(e.is_ok());
}

#[test]
fn experiment_referencing_an_unknown_flag_is_refused() {
    let (path, code, _) =
        fails(json!({"experiments": [{"name": "e", "variants": ["control"], "flag": "nope"}]}));
    assert_eq!(path, "$.experiments[0].flag");
    assert_eq!(code, "unknown_flag");
}

#[test]
fn overlapping_running_experiments_in_one_layer_are_refused() {
    let (path, code, kind) = fails(json!({"experiments": [
        {"name": "e1", "variants": ["control"], "is_active": true, "layer": {"name": "L", "range": [0, 50]}},
        {"name": "e2", "variants": ["control"], "is_active": true, "layer": {"name": "L", "range": [40, 100]}}
    ]}));
    assert_eq!(path, "$.experiments[1].layer.range");
    assert_eq!(code, "layer_overlap");
    assert_eq!(kind, ErrorKind::LayerOverlap("e1".into()));
}

#[test]
fn overlapping_layer_ranges_are_fine_when_one_experiment_is_stopped() {
    let ok = Engine::from_json(&json!({"experiments": [
        {"name": "e1", "variants": ["control"], "is_active": false, "layer": {"name": "L", "range": [0, 50]}},
        {"name": "e2", "variants": ["control"], "is_active": true, "layer": {"name": "L", "range": [40, 100]}}
    ]}).to_string());
    assert!(ok.is_ok());
}

#[test]
fn duplicate_names_are_refused() {
    for (kind, item) in [
        ("flags", json!({"name": "x"})),
        ("segments", json!({"name": "x", "criteria": {}})),
        ("configs", json!({"name": "x", "config_data": {}})),
        ("experiments", json!({"name": "x", "variants": ["control"]})),
    ] {
        let (path, code, _) = fails(json!({ kind: [item.clone(), item] }));
        assert_eq!(path, format!("$.{kind}[1].name"));
        assert_eq!(code, "duplicate_name");
    }
}

#[test]
fn duplicate_variant_names_are_refused() {
    let (path, code, _) = fails(flag(json!({"variants": [
        {"name": "a", "value": "x"}, {"name": "a", "value": "y"}]})));
    assert_eq!(path, "$.flags[0].variants[1].name");
    assert_eq!(code, "duplicate_name");
    let (path, _, _) =
        fails(json!({"experiments": [{"name": "e", "variants": ["control", "control"]}]}));
    assert_eq!(path, "$.experiments[0].variants[1]");
}

#[test]
fn empty_names_are_refused() {
    let (path, _, _) = fails(json!({"flags": [{"name": ""}]}));
    assert_eq!(path, "$.flags[0].name");
}

#[test]
fn variant_values_must_match_the_flag_kind() {
    let (path, code, kind) = fails(flag(json!({"kind": "string",
        "variants": [{"name": "a", "value": "x"}, {"name": "b", "value": 3}]})));
    assert_eq!(path, "$.flags[0].variants[1].value");
    assert_eq!(code, "variant_type");
    assert_eq!(
        kind,
        ErrorKind::VariantType {
            expected: "string",
            found: "number"
        }
    );
}

#[test]
fn non_boolean_prerequisite_must_name_its_variants() {
    let (path, _, _) = fails(json!({"flags": [
        {"name": "a", "prerequisites": [{"flag": "b"}]},
        {"name": "b", "variants": [{"name": "x", "value": "1"}]}
    ]}));
    assert_eq!(path, "$.flags[0].prerequisites[0].variants");
}

#[test]
fn unknown_segment_in_a_config_override_is_refused() {
    let (path, code, _) = fails(json!({"configs": [{"name": "c", "config_data": {},
        "overrides": [{"segment": "vips", "config_data": {}}]}]}));
    assert_eq!(path, "$.configs[0].overrides[0].segment");
    assert_eq!(code, "unknown_segment");
}

#[test]
fn wrong_field_types_are_refused_with_their_path() {
    let (path, code, _) = fails(json!({"flags": [{"name": "f", "is_enabled": "yes"}]}));
    assert_eq!(path, "$.flags[0].is_enabled");
    assert_eq!(code, "invalid");
    let (path, _, _) = fails(json!({"flags": [{"name": "f", "rules": [{"serve": 3}]}]}));
    assert_eq!(path, "$.flags[0].rules[0].serve");
}

#[test]
fn missing_required_fields_are_refused() {
    let (path, code, kind) = fails(json!({"flags": [{"description": "no name"}]}));
    assert_eq!(path, "$.flags[0]");
    assert_eq!(code, "invalid");
    assert!(kind.to_string().contains("name"), "{kind}");
}

#[test]
fn malformed_json_is_refused() {
    assert!(Engine::from_json("{\"flags\": [").is_err());
    assert!(Engine::from_json("{} trailing").is_err());
}

#[test]
fn error_paths_also_render_as_json_pointers() {
    let e =
        Engine::from_json(&flag(json!({"targeting_rules": {"a/b~c": {"$bad": 1}}})).to_string())
            .unwrap_err();
    assert_eq!(e.path.pointer(), "/flags/0/targeting_rules/a~1b~0c/$bad");
    assert_eq!(
        e.to_string(),
        r#"$.flags[0].targeting_rules["a/b~c"]["$bad"]: unknown operator "$bad""#
    );
}
