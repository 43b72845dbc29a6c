"""optifork.Engine: offline evaluation of a fixed ruleset, and what bad input raises."""

import json

import pytest

import optifork

RULESET = {
    "environment": "production",
    "version": 7,
    "segments": [{"name": "premium_users", "criteria": {"tier": "premium"}}],
    "flags": [
        {"name": "new_checkout", "is_enabled": True, "targeting_rules": {"country": "US"}},
        {"name": "kill_switch", "is_enabled": False},
        {
            "name": "button_color",
            "is_enabled": True,
            "variants": [{"name": "blue", "value": "#00f"}, {"name": "red", "value": "#f00"}],
            "rules": [{"condition": {"$segment": "premium_users"}, "serve": {"variant": "red"}}],
            "default": {"variant": "blue"},
        },
        {
            "name": "max_items",
            "is_enabled": True,
            "variants": [{"name": "few", "value": 10}, {"name": "half", "value": 2.5}],
            "rules": [{"condition": {"tier": "half"}, "serve": {"variant": "half"}}],
            "default": {"variant": "few"},
        },
        {
            "name": "limits",
            "is_enabled": True,
            "kind": "json",
            "variants": [{"name": "std", "value": {"rps": 10, "tags": ["a", "b"]}}],
        },
        {"name": "beta", "is_enabled": True, "targeting_rules": {"beta": True}},
        {"name": "by_city", "is_enabled": True, "targeting_rules": {"address.city": "Paris"}},
    ],
    "configs": [
        {
            "name": "theme",
            "config_data": {"color": "blue", "layout": {"columns": 2}},
            "overrides": [{"segment": "premium_users", "config_data": {"layout": {"columns": 3}}}],
        }
    ],
    "experiments": [
        {
            "name": "checkout_flow",
            "is_active": True,
            "variants": ["control", "one_page"],
            "traffic_splits": {"control": 50, "one_page": 50},
        }
    ],
}


@pytest.fixture
def engine():
    return optifork.Engine.from_ruleset(RULESET)


US = {"targetingKey": "user-1", "country": "US"}


def test_from_ruleset_accepts_a_dict(engine):
    assert engine.version == 7
    assert engine.environment == "production"


def test_from_ruleset_accepts_json_text():
    assert optifork.Engine.from_ruleset(json.dumps(RULESET)).version == 7


def test_from_ruleset_accepts_json_bytes():
    assert optifork.Engine.from_ruleset(json.dumps(RULESET).encode()).version == 7


def test_malformed_json_raises_invalid_ruleset_error():
    with pytest.raises(optifork.InvalidRulesetError) as e:
        optifork.Engine.from_ruleset('{"flags": [')
    assert isinstance(e.value, optifork.OptiForkError)
    assert isinstance(e.value, ValueError)


def test_a_ruleset_that_does_not_compile_names_the_culprit():
    bad = {"flags": [{"name": "f", "is_enabled": True, "targeting_rules": {"age": {"$gtx": 3}}}]}
    with pytest.raises(optifork.InvalidRulesetError) as e:
        optifork.Engine.from_ruleset(bad)
    assert e.value.code == "unknown_operator"
    assert e.value.path.startswith("$.flags[0].targeting_rules")
    assert "$gtx" in str(e.value)


def test_a_ruleset_of_the_wrong_type_raises_type_error():
    with pytest.raises(TypeError, match="ruleset must be a dict or a JSON str, not list"):
        optifork.Engine.from_ruleset([1, 2])


def test_a_ruleset_with_a_non_json_value_raises_type_error():
    with pytest.raises(TypeError, match=r'ruleset\["flags"\]\[0\]\["x"\]: set is not JSON'):
        optifork.Engine.from_ruleset({"flags": [{"name": "f", "x": {1}}]})


def test_is_enabled_follows_targeting(engine):
    assert engine.is_enabled("new_checkout", US)
    assert not engine.is_enabled("new_checkout", {"targetingKey": "user-1", "country": "FR"})


def test_is_enabled_is_false_for_unknown_disabled_and_non_boolean_flags(engine):
    assert not engine.is_enabled("nope", US)
    assert not engine.is_enabled("kill_switch", US)
    assert not engine.is_enabled("button_color", US)


def test_the_context_may_be_omitted(engine):
    assert not engine.is_enabled("new_checkout")
    assert engine.get_string("button_color") == "#00f"


def test_user_id_is_a_targeting_key_too(engine):
    a = engine.assign("checkout_flow", {"user_id": "user-1"})
    b = engine.assign("checkout_flow", {"targetingKey": "user-1"})
    assert a.in_experiment and (a.variant, a.reason) == (b.variant, "ASSIGNED")


def test_a_bool_attribute_is_a_boolean_not_a_number(engine):
    assert engine.is_enabled("beta", {"beta": True})
    assert not engine.is_enabled("beta", {"beta": 1})


def test_nested_attributes_are_reached_by_dot_paths(engine):
    assert engine.is_enabled("by_city", {"address": {"city": "Paris", "zip": [75001]}})
    assert not engine.is_enabled("by_city", {"address": {"city": "Lyon"}})


def test_a_mapping_that_is_not_a_dict_is_a_context(engine):
    from types import MappingProxyType

    assert engine.is_enabled("new_checkout", MappingProxyType(US))


def test_a_context_that_is_not_a_dict_raises(engine):
    with pytest.raises(optifork.InvalidContextError, match="context must be a dict of attributes"):
        engine.is_enabled("new_checkout", ["US"])


def test_a_bad_context_is_a_type_error_and_an_optifork_error(engine):
    with pytest.raises(TypeError):
        engine.is_enabled("new_checkout", "user-1")
    with pytest.raises(optifork.OptiForkError):
        engine.is_enabled("new_checkout", "user-1")


def test_a_non_string_context_key_raises(engine):
    with pytest.raises(optifork.InvalidContextError, match="context keys must be strings, not int"):
        engine.is_enabled("new_checkout", {1: "US"})


def test_an_unsupported_attribute_type_names_the_attribute(engine):
    with pytest.raises(optifork.InvalidContextError, match=r'context\["when"\]: unsupported type object'):
        engine.is_enabled("new_checkout", {"when": object()})


def test_an_unsupported_nested_value_names_its_path(engine):
    with pytest.raises(optifork.InvalidContextError, match=r'context\["a"\]\["b"\]\[1\]: unsupported type set'):
        engine.is_enabled("new_checkout", {"a": {"b": [1, {2}]}})


def test_a_self_containing_attribute_raises_instead_of_recursing_forever(engine):
    loop = []
    loop.append(loop)
    with pytest.raises(optifork.InvalidContextError, match="nests more than 64 levels"):
        engine.is_enabled("new_checkout", {"loop": loop})


def test_a_flag_name_that_is_not_a_string_raises_type_error(engine):
    with pytest.raises(TypeError):
        engine.is_enabled(42, US)


def test_get_value_returns_each_kind_of_value(engine):
    assert engine.get_value("new_checkout", US) is True
    assert engine.get_value("button_color", US) == "#00f"
    assert engine.get_value("max_items", US) == 10
    assert isinstance(engine.get_value("max_items", US), int)
    assert engine.get_value("max_items", {"tier": "half"}) == 2.5
    assert engine.get_value("limits", US) == {"rps": 10, "tags": ["a", "b"]}


def test_get_value_returns_the_default_when_no_value_is_served(engine):
    assert engine.get_value("nope", US, "fallback") == "fallback"
    assert engine.get_value("nope", US) is None


def test_typed_getters_return_the_flag_value(engine):
    assert engine.get_bool("new_checkout", US) is True
    assert engine.get_string("button_color", {"tier": "premium"}) == "#f00"
    assert engine.get_float("max_items", US) == 10.0
    assert engine.get_int("max_items", US) == 10
    assert engine.get_json("limits", US) == {"rps": 10, "tags": ["a", "b"]}


def test_typed_getters_return_the_default_on_a_type_mismatch(engine):
    assert engine.get_bool("button_color", US, True) is True
    assert engine.get_string("new_checkout", US, "x") == "x"
    assert engine.get_float("button_color", US, 1.5) == 1.5
    assert engine.get_int("max_items", {"tier": "half"}, 7) == 7
    assert engine.get_json("button_color", US, {"d": 1}) == {"d": 1}


def test_a_typed_getter_with_a_default_of_the_wrong_type_raises_type_error(engine):
    with pytest.raises(TypeError):
        engine.get_bool("new_checkout", US, "yes")
    with pytest.raises(TypeError):
        engine.get_string("button_color", US, 3)


def test_evaluate_details_reports_variant_reason_and_rule(engine):
    d = engine.evaluate_details("button_color", {"targetingKey": "u", "tier": "premium"})
    assert (d.flag_key, d.value, d.variant, d.reason, d.error_code, d.rule_index) == (
        "button_color", "#f00", "red", "TARGETING_MATCH", None, 0,
    )


def test_evaluate_details_of_an_unknown_flag_is_an_error_with_the_default(engine):
    d = engine.evaluate_details("nope", US, False)
    assert (d.value, d.variant, d.reason, d.error_code) == (False, None, "ERROR", "FLAG_NOT_FOUND")


def test_config_deep_merges_matching_overrides(engine):
    assert engine.config("theme", {"tier": "premium"}) == {"color": "blue", "layout": {"columns": 3}}
    assert engine.config("theme", {"tier": "free"}) == {"color": "blue", "layout": {"columns": 2}}


def test_an_unknown_config_is_none(engine):
    assert engine.config("nope", US) is None


def test_segments_and_in_segment(engine):
    assert engine.segments({"tier": "premium"}) == ["premium_users"]
    assert engine.segments({"tier": "free"}) == []
    assert engine.in_segment("premium_users", {"tier": "premium"}) is True
    assert engine.in_segment("nope", {}) is None


def test_assign_enrolls_identified_users(engine):
    a = engine.assign("checkout_flow", {"targetingKey": "user-1"})
    assert a.experiment == "checkout_flow"
    assert a.in_experiment and a.variant in ("control", "one_page")


def test_assign_without_a_targeting_key_gives_control(engine):
    a = engine.assign("checkout_flow", {})
    assert (a.variant, a.in_experiment, a.reason) == ("control", False, "TARGETING_KEY_MISSING")


def test_flag_names_lists_every_flag_in_order(engine):
    assert engine.flag_names()[:3] == ["new_checkout", "kill_switch", "button_color"]


def test_a_rust_panic_becomes_internal_error_not_a_crash():
    from optifork import _native

    with pytest.raises(optifork.InternalError, match="a deliberate panic"):
        _native._panic_for_tests()


def test_results_have_readable_reprs(engine):
    assert "TARGETING_MATCH" in repr(engine.evaluate_details("new_checkout", US))
    assert "checkout_flow" in repr(engine.assign("checkout_flow", US))
    assert "version=7" in repr(engine)
