//! The condition language, operator by operator: missing attributes, wrong types, arrays,
//! unicode and nested paths. Expected results follow MongoDB unless the crate docs list a
//! divergence.

use optifork_core::{Condition, Context};
use serde_json::{Value, json};

/// Whether `cond` matches a context built from `attrs` (a JSON object; `user_id` is the key).
fn m(cond: Value, attrs: Value) -> bool {
    let c = Condition::compile(&cond).unwrap_or_else(|e| panic!("{cond} does not compile: {e}"));
    c.matches(&Context::from_json(&attrs))
}

// --- implicit equality and $eq ------------------------------------------------------------

#[test]
fn implicit_equality_matches_equal_string() {
    assert!(m(json!({"tier": "premium"}), json!({"tier": "premium"})));
    assert!(!m(json!({"tier": "premium"}), json!({"tier": "free"})));
}

#[test]
fn equality_is_case_sensitive() {
    assert!(!m(json!({"tier": "premium"}), json!({"tier": "Premium"})));
}

#[test]
fn equality_on_a_missing_attribute_does_not_match() {
    assert!(!m(json!({"tier": "premium"}), json!({})));
}

#[test]
fn integer_and_float_compare_equal() {
    assert!(m(json!({"age": 18}), json!({"age": 18.0})));
    assert!(m(json!({"age": 18.0}), json!({"age": 18})));
    assert!(m(json!({"age": {"$eq": 18}}), json!({"age": 18.0})));
}

#[test]
fn type_mismatch_is_no_match() {
    assert!(!m(json!({"age": 18}), json!({"age": "18"})));
    assert!(!m(json!({"flag": true}), json!({"flag": "true"})));
    assert!(!m(json!({"flag": true}), json!({"flag": 1})));
}

#[test]
fn equality_matches_any_array_element() {
    assert!(m(
        json!({"tags": "beta"}),
        json!({"tags": ["alpha", "beta"]})
    ));
    assert!(!m(
        json!({"tags": "gamma"}),
        json!({"tags": ["alpha", "beta"]})
    ));
}

#[test]
fn equality_with_an_array_matches_the_whole_array_in_order() {
    assert!(m(json!({"tags": ["a", "b"]}), json!({"tags": ["a", "b"]})));
    assert!(!m(json!({"tags": ["b", "a"]}), json!({"tags": ["a", "b"]})));
    assert!(m(
        json!({"tags": ["a", "b"]}),
        json!({"tags": [["a", "b"], "c"]})
    ));
}

#[test]
fn equality_with_an_object_ignores_key_order() {
    assert!(m(
        json!({"geo": {"c": "US", "r": "CA"}}),
        json!({"geo": {"r": "CA", "c": "US"}})
    ));
    assert!(!m(
        json!({"geo": {"c": "US"}}),
        json!({"geo": {"c": "US", "r": "CA"}})
    ));
}

#[test]
fn equality_with_null_matches_null_and_missing() {
    assert!(m(json!({"x": null}), json!({"x": null})));
    assert!(m(json!({"x": null}), json!({})));
    assert!(!m(json!({"x": null}), json!({"x": 0})));
}

#[test]
fn equality_handles_unicode() {
    assert!(m(json!({"city": "Zürich"}), json!({"city": "Zürich"})));
    assert!(m(json!({"name": "日本"}), json!({"name": "日本"})));
    // No normalization: a composed and a decomposed é are different strings.
    assert!(!m(json!({"c": "\u{e9}"}), json!({"c": "e\u{301}"})));
}

#[test]
fn empty_condition_and_null_match_everyone() {
    assert!(m(json!({}), json!({})));
    assert!(m(json!(null), json!({"a": 1})));
}

#[test]
fn several_fields_must_all_match() {
    let c = json!({"country": "US", "tier": "premium"});
    assert!(m(c.clone(), json!({"country": "US", "tier": "premium"})));
    assert!(!m(c, json!({"country": "US", "tier": "free"})));
}

// --- nested paths ----------------------------------------------------------------------------

#[test]
fn dot_paths_reach_nested_attributes() {
    assert!(m(
        json!({"address.city": "Paris"}),
        json!({"address": {"city": "Paris", "zip": "75001"}})
    ));
    assert!(m(json!({"a.b.c": 1}), json!({"a": {"b": {"c": 1}}})));
}

#[test]
fn dot_path_through_a_missing_or_scalar_parent_is_missing() {
    assert!(!m(json!({"address.city": "Paris"}), json!({})));
    assert!(!m(
        json!({"address.city": "Paris"}),
        json!({"address": "Paris"})
    ));
    assert!(m(
        json!({"address.city": {"$exists": false}}),
        json!({"address": 3})
    ));
}

#[test]
fn dot_path_through_an_array_reaches_every_element() {
    let ctx = json!({"orders": [{"sku": "A1", "qty": 1}, {"sku": "B2", "qty": 5}]});
    assert!(m(json!({"orders.sku": "B2"}), ctx.clone()));
    assert!(m(json!({"orders.qty": {"$gt": 4}}), ctx.clone()));
    assert!(!m(json!({"orders.sku": "C3"}), ctx));
}

#[test]
fn numeric_path_part_indexes_an_array() {
    let ctx = json!({"items": ["first", "second"], "docs": [{"k": 1}, {"k": 2}]});
    assert!(m(json!({"items.1": "second"}), ctx.clone()));
    assert!(!m(json!({"items.0": "second"}), ctx.clone()));
    assert!(m(json!({"docs.1.k": 2}), ctx.clone()));
    assert!(!m(json!({"docs.0.k": 2}), ctx));
}

#[test]
fn targeting_key_is_readable_as_targetingkey() {
    let c = Condition::compile(&json!({"targetingKey": {"$in": ["u1", "u2"]}})).unwrap();
    assert!(c.matches(&Context::new("u2")));
    assert!(!c.matches(&Context::new("u3")));
}

#[test]
fn user_id_is_both_the_key_and_an_attribute() {
    let ctx = Context::from_json(&json!({"user_id": "123", "country": "US"}));
    assert_eq!(ctx.key(), Some("123"));
    assert!(
        Condition::compile(&json!({"user_id": "123"}))
            .unwrap()
            .matches(&ctx)
    );
}

// --- $ne --------------------------------------------------------------------------------------

#[test]
fn ne_matches_different_values_and_missing_attributes() {
    assert!(m(
        json!({"tier": {"$ne": "free"}}),
        json!({"tier": "premium"})
    ));
    assert!(!m(
        json!({"tier": {"$ne": "free"}}),
        json!({"tier": "free"})
    ));
    assert!(m(json!({"tier": {"$ne": "free"}}), json!({})));
}

#[test]
fn ne_on_an_array_requires_no_element_equal() {
    assert!(!m(
        json!({"tags": {"$ne": "beta"}}),
        json!({"tags": ["alpha", "beta"]})
    ));
    assert!(m(
        json!({"tags": {"$ne": "gamma"}}),
        json!({"tags": ["alpha", "beta"]})
    ));
}

#[test]
fn ne_null_matches_present_non_null_values_only() {
    assert!(m(json!({"x": {"$ne": null}}), json!({"x": 1})));
    assert!(!m(json!({"x": {"$ne": null}}), json!({})));
    assert!(!m(json!({"x": {"$ne": null}}), json!({"x": null})));
}

// --- comparisons ------------------------------------------------------------------------------

#[test]
fn gt_gte_lt_lte_compare_numbers() {
    let ctx = json!({"age": 18});
    assert!(m(json!({"age": {"$gte": 18}}), ctx.clone()));
    assert!(!m(json!({"age": {"$gt": 18}}), ctx.clone()));
    assert!(m(json!({"age": {"$lte": 18.0}}), ctx.clone()));
    assert!(!m(json!({"age": {"$lt": 18}}), ctx.clone()));
    assert!(m(json!({"age": {"$gt": 17.5, "$lt": 18.5}}), ctx));
}

#[test]
fn comparisons_do_not_cross_types() {
    assert!(!m(json!({"age": {"$gt": 5}}), json!({"age": "10"})));
    assert!(!m(json!({"age": {"$lt": "z"}}), json!({"age": 10})));
    assert!(!m(json!({"age": {"$gte": 0}}), json!({"age": null})));
    assert!(!m(json!({"age": {"$gte": 0}}), json!({"age": true})));
}

#[test]
fn comparisons_on_a_missing_attribute_do_not_match() {
    assert!(!m(json!({"age": {"$gte": 0}}), json!({})));
    assert!(!m(json!({"age": {"$lt": 100}}), json!({})));
}

#[test]
fn strings_compare_by_utf8_bytes() {
    assert!(m(json!({"v": {"$gt": "apple"}}), json!({"v": "banana"})));
    assert!(m(json!({"v": {"$lt": "a"}}), json!({"v": "Z"})));
    assert!(m(json!({"v": {"$gt": "z"}}), json!({"v": "é"})));
}

#[test]
fn booleans_compare_false_below_true() {
    assert!(m(json!({"b": {"$gt": false}}), json!({"b": true})));
    assert!(!m(json!({"b": {"$gt": true}}), json!({"b": true})));
}

#[test]
fn comparisons_match_any_array_element_independently() {
    // As in MongoDB, each operator may be satisfied by a different element.
    assert!(m(
        json!({"scores": {"$gt": 90}}),
        json!({"scores": [50, 95]})
    ));
    assert!(m(
        json!({"scores": {"$gt": 60, "$lt": 55}}),
        json!({"scores": [50, 95]})
    ));
}

#[test]
fn gte_null_matches_null_and_missing_and_gt_null_matches_nothing() {
    assert!(m(json!({"x": {"$gte": null}}), json!({})));
    assert!(m(json!({"x": {"$lte": null}}), json!({"x": null})));
    assert!(!m(json!({"x": {"$gt": null}}), json!({"x": null})));
    assert!(!m(json!({"x": {"$lt": null}}), json!({})));
}

// --- $in / $nin -----------------------------------------------------------------------------

#[test]
fn in_matches_listed_values() {
    let c = json!({"country": {"$in": ["US", "CA"]}});
    assert!(m(c.clone(), json!({"country": "CA"})));
    assert!(!m(c.clone(), json!({"country": "MX"})));
    assert!(!m(c, json!({})));
}

#[test]
fn in_compares_numbers_by_value_and_keeps_types_apart() {
    assert!(m(json!({"n": {"$in": [1, 2, 3]}}), json!({"n": 2.0})));
    assert!(!m(json!({"n": {"$in": [1, 2, 3]}}), json!({"n": "2"})));
    assert!(!m(json!({"n": {"$in": ["1"]}}), json!({"n": 1})));
}

#[test]
fn in_with_a_long_list_uses_the_same_semantics() {
    let list: Vec<String> = (0..500).map(|i| format!("id-{i}")).collect();
    let c = json!({"user_id": {"$in": list}});
    assert!(m(c.clone(), json!({"user_id": "id-499"})));
    assert!(!m(c, json!({"user_id": "id-500"})));
}

#[test]
fn in_matches_any_array_element_or_the_whole_array() {
    assert!(m(
        json!({"tags": {"$in": ["x", "beta"]}}),
        json!({"tags": ["alpha", "beta"]})
    ));
    assert!(m(
        json!({"tags": {"$in": [["alpha", "beta"]]}}),
        json!({"tags": ["alpha", "beta"]})
    ));
    assert!(!m(json!({"tags": {"$in": ["x"]}}), json!({"tags": []})));
}

#[test]
fn in_with_null_matches_missing_attributes() {
    assert!(m(json!({"x": {"$in": [null, 1]}}), json!({})));
    assert!(m(json!({"x": {"$in": [null, 1]}}), json!({"x": null})));
}

#[test]
fn in_matches_booleans_and_objects() {
    assert!(m(json!({"b": {"$in": [true]}}), json!({"b": true})));
    assert!(!m(json!({"b": {"$in": [true]}}), json!({"b": false})));
    assert!(m(json!({"o": {"$in": [{"k": 1}]}}), json!({"o": {"k": 1}})));
}

#[test]
fn nin_is_the_negation_of_in_and_matches_missing() {
    let c = json!({"country": {"$nin": ["US", "CA"]}});
    assert!(m(c.clone(), json!({"country": "FR"})));
    assert!(!m(c.clone(), json!({"country": "US"})));
    assert!(m(c, json!({})));
    assert!(!m(
        json!({"tags": {"$nin": ["beta"]}}),
        json!({"tags": ["alpha", "beta"]})
    ));
}

#[test]
fn in_handles_unicode() {
    assert!(m(
        json!({"city": {"$in": ["Zürich", "Genève"]}}),
        json!({"city": "Genève"})
    ));
}

// --- $exists --------------------------------------------------------------------------------

#[test]
fn exists_true_matches_present_attributes_even_null() {
    assert!(m(json!({"x": {"$exists": true}}), json!({"x": null})));
    assert!(m(json!({"x": {"$exists": true}}), json!({"x": 0})));
    assert!(!m(json!({"x": {"$exists": true}}), json!({})));
}

#[test]
fn exists_false_matches_missing_attributes() {
    assert!(m(json!({"x": {"$exists": false}}), json!({})));
    assert!(!m(json!({"x": {"$exists": false}}), json!({"x": false})));
}

#[test]
fn exists_follows_nested_paths() {
    assert!(m(json!({"a.b": {"$exists": true}}), json!({"a": {"b": 1}})));
    assert!(!m(
        json!({"a.b": {"$exists": true}}),
        json!({"a": {"c": 1}})
    ));
}

// --- $regex -----------------------------------------------------------------------------------

#[test]
fn regex_matches_strings() {
    let c = json!({"email": {"$regex": "@example\\.com$"}});
    assert!(m(c.clone(), json!({"email": "ann@example.com"})));
    assert!(!m(c.clone(), json!({"email": "ann@example.org"})));
    assert!(!m(c, json!({})));
}

#[test]
fn regex_is_case_sensitive_unless_options_i() {
    assert!(!m(json!({"n": {"$regex": "^ann"}}), json!({"n": "ANNA"})));
    assert!(m(
        json!({"n": {"$regex": "^ann", "$options": "i"}}),
        json!({"n": "ANNA"})
    ));
    assert!(m(
        json!({"n": {"$regex": "(?i)^ann"}}),
        json!({"n": "ANNA"})
    ));
}

#[test]
fn regex_does_not_match_non_strings() {
    assert!(!m(json!({"n": {"$regex": "1"}}), json!({"n": 1})));
    assert!(!m(json!({"n": {"$regex": ".*"}}), json!({"n": null})));
}

#[test]
fn regex_matches_any_string_element_of_an_array() {
    assert!(m(
        json!({"emails": {"$regex": "@corp\\.com$"}}),
        json!({"emails": [1, "a@corp.com"]})
    ));
}

#[test]
fn regex_handles_unicode() {
    assert!(m(
        json!({"n": {"$regex": "^Zü.ich$"}}),
        json!({"n": "Zürich"})
    ));
    assert!(m(
        json!({"n": {"$regex": "^\\p{Han}+$"}}),
        json!({"n": "日本"})
    ));
    assert!(m(
        json!({"n": {"$regex": "^straße$", "$options": "i"}}),
        json!({"n": "STRAßE"})
    ));
}

// --- $all / $size / $elemMatch ---------------------------------------------------------------

#[test]
fn all_requires_every_listed_value() {
    let ctx = json!({"tags": ["a", "b", "c"]});
    assert!(m(json!({"tags": {"$all": ["a", "c"]}}), ctx.clone()));
    assert!(!m(json!({"tags": {"$all": ["a", "z"]}}), ctx.clone()));
    assert!(!m(json!({"tags": {"$all": []}}), ctx));
}

#[test]
fn all_on_a_scalar_means_equality() {
    assert!(m(
        json!({"tier": {"$all": ["gold"]}}),
        json!({"tier": "gold"})
    ));
    assert!(!m(
        json!({"tier": {"$all": ["gold", "silver"]}}),
        json!({"tier": "gold"})
    ));
}

#[test]
fn all_on_a_missing_attribute_does_not_match() {
    assert!(!m(json!({"tags": {"$all": ["a"]}}), json!({})));
}

#[test]
fn size_matches_array_length_only() {
    assert!(m(
        json!({"tags": {"$size": 2}}),
        json!({"tags": ["a", "b"]})
    ));
    assert!(!m(
        json!({"tags": {"$size": 1}}),
        json!({"tags": ["a", "b"]})
    ));
    assert!(m(json!({"tags": {"$size": 0}}), json!({"tags": []})));
    assert!(!m(json!({"tags": {"$size": 0}}), json!({})));
    assert!(!m(json!({"tags": {"$size": 2}}), json!({"tags": "ab"})));
}

#[test]
fn elem_match_with_operators_needs_one_element_satisfying_all() {
    let c = json!({"scores": {"$elemMatch": {"$gte": 80, "$lt": 85}}});
    assert!(m(c.clone(), json!({"scores": [70, 82]})));
    assert!(!m(c.clone(), json!({"scores": [70, 90]})));
    assert!(!m(c, json!({"scores": 82})));
}

#[test]
fn elem_match_with_a_document_tests_each_element() {
    let c = json!({"orders": {"$elemMatch": {"sku": "A1", "qty": {"$gte": 2}}}});
    assert!(m(
        c.clone(),
        json!({"orders": [{"sku": "A1", "qty": 1}, {"sku": "A1", "qty": 3}]})
    ));
    assert!(!m(
        c.clone(),
        json!({"orders": [{"sku": "A1", "qty": 1}, {"sku": "B2", "qty": 3}]})
    ));
    assert!(!m(c, json!({})));
}

#[test]
fn elem_match_document_supports_logical_operators() {
    let c = json!({"orders": {"$elemMatch": {"$or": [{"sku": "A1"}, {"qty": {"$gt": 10}}]}}});
    assert!(m(c.clone(), json!({"orders": [{"sku": "Z", "qty": 11}]})));
    assert!(!m(c, json!({"orders": [{"sku": "Z", "qty": 1}]})));
}

// --- logical operators -----------------------------------------------------------------------

#[test]
fn and_requires_every_condition() {
    let c = json!({"$and": [{"country": "US"}, {"age": {"$gte": 18}}]});
    assert!(m(c.clone(), json!({"country": "US", "age": 20})));
    assert!(!m(c, json!({"country": "US", "age": 17})));
}

#[test]
fn or_requires_any_condition() {
    let c = json!({"$or": [{"country": "US"}, {"tier": "premium"}]});
    assert!(m(c.clone(), json!({"country": "FR", "tier": "premium"})));
    assert!(!m(c, json!({"country": "FR", "tier": "free"})));
}

#[test]
fn nor_requires_no_condition() {
    let c = json!({"$nor": [{"country": "US"}, {"tier": "premium"}]});
    assert!(m(c.clone(), json!({"country": "FR"})));
    assert!(!m(c, json!({"tier": "premium"})));
}

#[test]
fn top_level_not_negates_a_condition() {
    let c = json!({"$not": {"country": "US"}});
    assert!(m(c.clone(), json!({"country": "FR"})));
    assert!(m(c.clone(), json!({})));
    assert!(!m(c, json!({"country": "US"})));
}

#[test]
fn field_not_negates_its_operators_and_matches_missing() {
    let c = json!({"age": {"$not": {"$gte": 18}}});
    assert!(m(c.clone(), json!({"age": 10})));
    assert!(m(c.clone(), json!({})));
    assert!(!m(c, json!({"age": 30})));
    assert!(m(
        json!({"n": {"$not": {"$regex": "^a"}}}),
        json!({"n": "bob"})
    ));
}

#[test]
fn logical_operators_nest() {
    let c = json!({"$or": [
        {"$and": [{"country": "US"}, {"$not": {"state": "CA"}}]},
        {"$nor": [{"tier": "free"}, {"tier": {"$exists": false}}]}
    ]});
    assert!(m(c.clone(), json!({"country": "US", "state": "NY"})));
    assert!(m(c.clone(), json!({"country": "FR", "tier": "gold"})));
    assert!(!m(
        c.clone(),
        json!({"country": "US", "state": "CA", "tier": "free"})
    ));
    assert!(!m(c, json!({"country": "FR"})));
}

// --- semver -------------------------------------------------------------------------------

#[test]
fn semver_operators_compare_by_precedence() {
    let ctx = json!({"app_version": "2.10.0"});
    assert!(m(json!({"app_version": {"$vgt": "2.9.9"}}), ctx.clone()));
    assert!(m(json!({"app_version": {"$vgte": "2.10.0"}}), ctx.clone()));
    assert!(!m(json!({"app_version": {"$vlt": "2.10.0"}}), ctx.clone()));
    assert!(m(json!({"app_version": {"$vlte": "2.10.0"}}), ctx.clone()));
    assert!(m(json!({"app_version": {"$veq": "2.10.0"}}), ctx.clone()));
    assert!(m(json!({"app_version": {"$vne": "2.9.0"}}), ctx));
}

#[test]
fn semver_prerelease_sorts_below_release() {
    assert!(m(
        json!({"v": {"$vlt": "2.0.0"}}),
        json!({"v": "2.0.0-rc.1"})
    ));
    assert!(m(
        json!({"v": {"$vlt": "2.0.0-rc.10"}}),
        json!({"v": "2.0.0-rc.9"})
    ));
    assert!(m(
        json!({"v": {"$vgt": "2.0.0-alpha"}}),
        json!({"v": "2.0.0-alpha.1"})
    ));
}

#[test]
fn semver_ignores_build_metadata() {
    assert!(m(
        json!({"v": {"$veq": "1.2.3"}}),
        json!({"v": "1.2.3+build.7"})
    ));
}

#[test]
fn semver_parses_leniently() {
    assert!(m(json!({"v": {"$vgte": "2.3"}}), json!({"v": "v2.3.0"})));
    assert!(m(json!({"v": {"$veq": "2"}}), json!({"v": "2.0.0"})));
    assert!(m(json!({"v": {"$vgt": "1.9"}}), json!({"v": "2.0-beta"})));
}

#[test]
fn semver_on_unparseable_or_missing_attributes_does_not_match() {
    assert!(!m(json!({"v": {"$vgt": "1.0.0"}}), json!({"v": "latest"})));
    assert!(!m(json!({"v": {"$vgt": "1.0.0"}}), json!({"v": 2})));
    assert!(!m(json!({"v": {"$vgt": "1.0.0"}}), json!({})));
    assert!(m(json!({"v": {"$vne": "1.0.0"}}), json!({})));
}

// --- unknown attributes of other shapes never panic ------------------------------------------

#[test]
fn every_operator_tolerates_every_attribute_type() {
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1.5),
        json!(""),
        json!("ü"),
        json!([]),
        json!([1, "a", null, [2], {"k": 1}]),
        json!({}),
        json!({"k": [1, 2]}),
    ];
    let conds = [
        json!({"x": 1}),
        json!({"x": {"$ne": "a"}}),
        json!({"x": {"$gt": 0}}),
        json!({"x": {"$lte": "m"}}),
        json!({"x": {"$in": [1, "a", null, [2]]}}),
        json!({"x": {"$nin": [true]}}),
        json!({"x": {"$exists": true}}),
        json!({"x": {"$regex": "a"}}),
        json!({"x": {"$all": [1]}}),
        json!({"x": {"$size": 1}}),
        json!({"x": {"$elemMatch": {"$gt": 1}}}),
        json!({"x": {"$elemMatch": {"k": 1}}}),
        json!({"x": {"$not": {"$eq": 1}}}),
        json!({"x": {"$vgt": "1.0.0"}}),
        json!({"x.k": 1}),
        json!({"x.0": 1}),
    ];
    for c in &conds {
        for v in &values {
            // The result is not the point here: nothing may panic.
            let _ = m(c.clone(), json!({"x": v}));
        }
    }
}
