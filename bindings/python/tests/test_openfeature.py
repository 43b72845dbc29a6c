"""optifork.openfeature.OptiForkProvider through the openfeature-sdk API."""

import datetime

import pytest

openfeature = pytest.importorskip("openfeature")

from openfeature import api  # noqa: E402
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402

import optifork  # noqa: E402
from conftest import wait_for  # noqa: E402
from optifork.openfeature import OptiForkProvider  # noqa: E402

RULESET = {
    "version": 4,
    "flags": [
        {"name": "new_checkout", "is_enabled": True, "targeting_rules": {"country": "US"}},
        {"name": "off_no_variant", "is_enabled": False, "kind": "string",
         "variants": [{"name": "a", "value": "A"}]},
        {"name": "color", "is_enabled": True, "variants": [{"name": "red", "value": "#f00"}]},
        {"name": "limit", "is_enabled": True, "variants": [{"name": "n", "value": 25}]},
        {"name": "ratio", "is_enabled": True, "variants": [{"name": "r", "value": 0.25}]},
        {"name": "settings", "is_enabled": True, "kind": "json",
         "variants": [{"name": "s", "value": {"a": [1, 2]}}]},
        {"name": "since", "is_enabled": True, "targeting_rules": {"joined": {"$lt": "2024-01-01"}}},
        {"name": "half", "is_enabled": True, "rollout_percentage": 50},
    ],
}


@pytest.fixture
def flags():
    api.set_provider(OptiForkProvider(optifork.Engine.from_ruleset(RULESET)))
    yield api.get_client()
    api.shutdown()


US = EvaluationContext("user-1", {"country": "US"})


def test_a_boolean_flag_resolves_with_its_reason_and_variant(flags):
    d = flags.get_boolean_details("new_checkout", False, US)
    assert (d.value, d.variant, d.reason, d.error_code) == (True, "on", "TARGETING_MATCH", None)
    assert d.flag_metadata["ruleset_version"] == 4


def test_the_targeting_key_and_attributes_reach_the_flag(flags):
    assert flags.get_boolean_value("new_checkout", False, EvaluationContext("u", {"country": "FR"})) is False
    assert flags.get_boolean_details("half", False, EvaluationContext(None, {})).error_code == (
        ErrorCode.TARGETING_KEY_MISSING
    )


def test_datetime_attributes_become_iso_strings(flags):
    old = EvaluationContext("u", {"joined": datetime.date(2020, 5, 1)})
    assert flags.get_boolean_value("since", False, old) is True


def test_each_type_resolves(flags):
    assert flags.get_string_value("color", "x", US) == "#f00"
    assert flags.get_integer_value("limit", 0, US) == 25
    assert flags.get_float_value("ratio", 0.0, US) == 0.25
    assert flags.get_float_value("limit", 0.0, US) == 25.0
    assert flags.get_object_value("settings", {}, US) == {"a": [1, 2]}


def test_an_unknown_flag_gives_the_default_with_flag_not_found(flags):
    d = flags.get_boolean_details("nope", True, US)
    assert (d.value, d.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)


def test_a_type_mismatch_gives_the_default(flags):
    d = flags.get_integer_details("color", 7, US)
    assert (d.value, d.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    assert flags.get_integer_details("ratio", 7, US).error_code == ErrorCode.TYPE_MISMATCH


def test_a_flag_serving_no_value_gives_the_default_with_its_reason(flags):
    d = flags.get_string_details("off_no_variant", "fallback", US)
    assert (d.value, d.reason, d.error_code) == ("fallback", "DISABLED", None)


def test_a_client_without_a_ruleset_is_not_ready(dead_url):
    client = optifork.Client(dead_url, "key", backoff_initial=0.05)
    provider = OptiForkProvider(client, init_timeout=0.2)
    d = provider.resolve_boolean_details("anything", False, US)
    assert d.error_code == ErrorCode.PROVIDER_NOT_READY
    client.close()


def test_the_provider_wants_a_client_or_engine():
    with pytest.raises(TypeError, match="optifork.Client or Engine"):
        OptiForkProvider("http://localhost")


def test_a_server_change_emits_configuration_changed(env):
    env.create("flags", {"name": "a", "is_enabled": True})
    client = optifork.Client(env.url, env.sdk_key, flush_interval=0.1)
    events = []
    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
    try:
        api.set_provider_and_wait(OptiForkProvider(client))
        flags = api.get_client()
        assert flags.get_boolean_value("a", False, US) is True
        env.create("flags", {"name": "b", "is_enabled": True})
        wait_for(lambda: any("b" in (e.flags_changed or []) for e in events), what="the event")
        assert flags.get_boolean_value("b", False, US) is True
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
        api.shutdown()


def test_track_records_an_event_through_the_client(env):
    client = optifork.Client(env.url, env.sdk_key, flush_interval=0.1)
    try:
        api.set_provider_and_wait(OptiForkProvider(client))
        from openfeature.track import TrackingEventDetails

        api.get_client().track("purchase", US, TrackingEventDetails(9.5, {"sku": "A"}))
        client.flush(10)
        assert client.stats()["events_queued"] == 1
        assert client.stats()["items_sent"] == 1
    finally:
        api.shutdown()
