"""optifork.Client against the real optifork-server: sync, change callbacks, exposures and
events arriving at the server, and the errors raised for bad input."""

import sys
import threading
import time

import pytest

import optifork
from conftest import wait_for

FAST = {"flush_interval": 0.1, "backoff_initial": 0.05, "backoff_max": 0.5}


def client_for(env, **options):
    return optifork.Client(env.url, env.sdk_key, **{**FAST, **options})


# --- sync -----------------------------------------------------------------------------------


def test_the_client_serves_the_servers_flags_once_ready(env):
    env.create("flags", {"name": "new_checkout", "is_enabled": True, "targeting_rules": {"country": "US"}})
    with client_for(env) as client:
        status = client.wait_until_ready(10)
        assert (status.state, status.source, status.environment) == ("READY", "server", env.name)
        assert status.is_ready and status.updated_at is not None
        assert client.is_enabled("new_checkout", {"targetingKey": "u1", "country": "US"})
        assert not client.is_enabled("new_checkout", {"targetingKey": "u1", "country": "FR"})


def test_a_flag_changed_on_the_server_reaches_the_client(env):
    env.create("flags", {"name": "banner", "is_enabled": False})
    with client_for(env) as client:
        client.wait_until_ready(10)
        assert not client.is_enabled("banner", {"targetingKey": "u1"})
        env.ok("PUT", "/flags/banner", {"is_enabled": True})
        wait_for(lambda: client.is_enabled("banner", {"targetingKey": "u1"}), what="the update")


def test_configs_segments_and_experiments_come_from_the_server(env):
    env.create("segments", {"name": "premium", "criteria": {"tier": "premium"}})
    env.create("configs", {
        "name": "checkout",
        "config_data": {"max_items": 20, "express": False},
        "overrides": [{"segment": "premium", "config_data": {"express": True}}],
    })
    with client_for(env) as client:
        client.wait_until_ready(10)
        premium = {"targetingKey": "u1", "tier": "premium"}
        assert client.config("checkout", premium) == {"max_items": 20, "express": True}
        assert client.segments(premium) == ["premium"]


def test_status_before_any_contact_is_not_ready(dead_url):
    with optifork.Client(dead_url, "key", backoff_initial=0.05) as client:
        assert client.status().source is None
        assert client.version is None
        assert not client.is_enabled("anything", {"targetingKey": "u1"})


# --- change callbacks -----------------------------------------------------------------------


def test_on_change_names_the_flags_that_changed(env):
    env.create("flags", {"name": "a", "is_enabled": True})
    with client_for(env) as client:
        client.wait_until_ready(10)
        changes = []
        client.on_change(changes.append)
        env.create("flags", {"name": "b", "is_enabled": True})
        wait_for(lambda: any(c.flag_changed("b") for c in changes), what="a change naming b")
        change = next(c for c in changes if c.flag_changed("b"))
        assert change.flags == ["b"] and change.source == "server"
        assert change.version > change.previous_version


def test_on_change_works_as_a_decorator_and_returns_the_callback(env):
    with client_for(env) as client:
        def callback(change):
            pass

        assert client.on_change(callback) is callback


def test_an_exception_in_a_callback_is_reported_and_later_updates_still_arrive(env, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))
    with client_for(env) as client:
        client.wait_until_ready(10)
        seen = []

        @client.on_change
        def broken(change):
            raise RuntimeError("callback bug")

        client.on_change(seen.append)
        env.create("flags", {"name": "one", "is_enabled": True})
        wait_for(lambda: any(c.flag_changed("one") for c in seen), what="first change")
        env.create("flags", {"name": "two", "is_enabled": True})
        wait_for(lambda: any(c.flag_changed("two") for c in seen), what="second change")
        assert any(isinstance(e, RuntimeError) and "callback bug" in str(e) for e in reported)


def test_a_removed_callback_is_not_called_again(env):
    with client_for(env) as client:
        client.wait_until_ready(10)
        removed, kept = [], []

        def removed_callback(change):
            removed.append(change)

        client.on_change(removed_callback)
        client.on_change(kept.append)
        assert client.remove_listener(removed_callback) is True
        env.create("flags", {"name": "x", "is_enabled": True})
        wait_for(lambda: kept, what="the kept callback")
        assert removed == []


def test_a_bound_method_can_be_removed_as_it_was_added():
    class Watcher:
        def __init__(self):
            self.changes = []

        def changed(self, change):
            self.changes.append(change)

    with optifork.Client("", "", offline=True) as client:
        w = Watcher()
        client.on_change(w.changed)
        assert client.remove_listener(w.changed) is True
        client.update_ruleset({"version": 2, "flags": [{"name": "f", "is_enabled": True}]})
        assert w.changes == []


def test_removing_a_callback_that_was_never_added_returns_false(env):
    with client_for(env) as client:
        assert client.remove_listener(print) is False


def test_a_callback_that_is_not_callable_raises_type_error(env):
    with client_for(env) as client:
        with pytest.raises(TypeError, match="callback must be callable"):
            client.on_change(42)


def test_update_ruleset_installs_a_ruleset_and_tells_the_callbacks():
    with optifork.Client("", "", offline=True) as client:
        changes = []
        client.on_change(changes.append)
        change = client.update_ruleset({"version": 3, "flags": [{"name": "f", "is_enabled": True}]})
        assert change.flags == ["f"] and change.source == "manual"
        assert [c.version for c in changes] == [3]
        assert client.is_enabled("f")


def test_update_ruleset_refuses_a_bad_ruleset_and_keeps_the_current_one():
    with optifork.Client("", "", offline=True, bootstrap={"flags": [{"name": "f", "is_enabled": True}]}) as client:
        with pytest.raises(optifork.InvalidRulesetError):
            client.update_ruleset({"flags": [{"name": "f", "targeting_rules": {"$nope": 1}}]})
        assert client.is_enabled("f")


# --- exposures and events -------------------------------------------------------------------


def test_experiment_exposures_and_tracked_events_arrive_at_the_server(env):
    env.create("experiments", {
        "name": "checkout_flow", "variants": ["control", "one_page"],
        "traffic_splits": {"control": 50, "one_page": 50}, "is_active": True,
        "metrics": [{"name": "purchase_rate", "event": "purchase", "type": "conversion"}],
    })
    with client_for(env) as client:
        client.wait_until_ready(10)
        users = {"control": 0, "one_page": 0}
        buyers = {"control": 0, "one_page": 0}
        for i in range(200):
            ctx = {"targetingKey": f"user-{i}"}
            a = client.assign("checkout_flow", ctx)
            assert a.in_experiment
            users[a.variant] += 1
            if i % 3 == 0:
                client.track("purchase", ctx, 12.5, {"sku": "A1"})
                buyers[a.variant] += 1
        client.flush(10)
        results = env.ok("GET", "/experiments/checkout_flow/results")
        for v in results["variants"]:
            assert (v["users"], v["exposures"]) == (users[v["variant"]], users[v["variant"]])
        rate = next(m for m in results["metrics"] if m["name"] == "purchase_rate")
        c = rate["comparisons"][0]
        assert c["control"]["conversions"] == buyers["control"]
        assert c["treatment"]["conversions"] == buyers["one_page"]


def test_exposures_of_tracked_flags_arrive_once_per_user(env):
    env.create("flags", {"name": "banner", "is_enabled": True, "track": True})
    with client_for(env) as client:
        client.wait_until_ready(10)
        for _ in range(3):
            for i in range(5):
                assert client.is_enabled("banner", {"targetingKey": f"user-{i}"})
        client.flush(10)
        rows = env.ok("GET", "/flags/banner/exposures?limit=100")["exposures"]
        assert sorted(r["user_id"] for r in rows) == [f"user-{i}" for i in range(5)]


def test_stats_count_what_was_sent(env):
    env.create("flags", {"name": "banner", "is_enabled": True, "track": True})
    with client_for(env) as client:
        client.wait_until_ready(10)
        client.is_enabled("banner", {"targetingKey": "u1"})
        client.track("signup", {"targetingKey": "u1"})
        client.flush(10)
        stats = client.stats()
        assert (stats["exposures_queued"], stats["events_queued"], stats["items_sent"]) == (1, 1, 2)


def test_an_event_without_a_targeting_key_is_dropped_and_counted(env):
    with client_for(env) as client:
        client.track("signup", {"country": "US"})
        assert client.stats()["dropped_invalid"] == 1


def test_events_tracked_after_close_are_dropped_and_counted(env):
    client = client_for(env)
    client.close()
    client.track("signup", {"targetingKey": "u1"})
    assert client.stats()["dropped_closed"] == 1


def test_evaluation_keeps_working_after_close():
    client = optifork.Client("", "", offline=True, bootstrap={"flags": [{"name": "f", "is_enabled": True}]})
    client.close()
    client.close()  # idempotent
    assert client.is_enabled("f")


# --- waiting without the GIL ----------------------------------------------------------------


def test_wait_until_ready_releases_the_gil(dead_url):
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    with optifork.Client(dead_url, "key", backoff_initial=0.05) as client:
        t.start()
        with pytest.raises(optifork.NotReadyError):
            client.wait_until_ready(0.5)
        stop.set()
        t.join()
    assert len(ticks) >= 10, "another thread ran while the client waited"


# --- errors for bad input -------------------------------------------------------------------


def test_a_refused_sdk_key_raises_unauthorized_error(env):
    with optifork.Client(env.url, "ofk_not_a_real_key", **FAST) as client:
        with pytest.raises(optifork.UnauthorizedError):
            client.wait_until_ready(10)


def test_an_unreachable_server_raises_not_ready_error_after_the_timeout(dead_url):
    with optifork.Client(dead_url, "key", backoff_initial=0.05) as client:
        started = time.monotonic()
        with pytest.raises(optifork.NotReadyError) as e:
            client.wait_until_ready(0.3)
        assert time.monotonic() - started >= 0.25
        assert isinstance(e.value, TimeoutError)


def test_an_invalid_url_raises_invalid_option_error():
    with pytest.raises(optifork.InvalidOptionError) as e:
        optifork.Client("ftp://example.com", "key")
    assert e.value.option == "url"


def test_an_unknown_option_raises_type_error_naming_it():
    with pytest.raises(TypeError, match='unknown option "pol_interval"'):
        optifork.Client("http://127.0.0.1:1", "key", pol_interval=1)


def test_an_option_of_the_wrong_type_raises_type_error():
    with pytest.raises(TypeError, match="poll_interval must be a number of seconds, not str"):
        optifork.Client("http://127.0.0.1:1", "key", poll_interval="30s")


def test_an_out_of_range_option_raises_invalid_option_error():
    with pytest.raises(optifork.InvalidOptionError) as e:
        optifork.Client("http://127.0.0.1:1", "key", exposure_batch_size=0)
    assert e.value.option == "exposure_batch_size"
    with pytest.raises(optifork.InvalidOptionError):
        optifork.Client("http://127.0.0.1:1", "key", poll_interval=-1)


def test_an_invalid_bootstrap_raises_invalid_ruleset_error():
    with pytest.raises(optifork.InvalidRulesetError, match="bootstrap"):
        optifork.Client("", "", offline=True, bootstrap='{"flags": 3}')


def test_an_offline_client_serves_its_bootstrap():
    bootstrap = {"version": 5, "flags": [{"name": "beta", "is_enabled": True}]}
    with optifork.Client("", "", offline=True, bootstrap=bootstrap) as client:
        assert client.is_enabled("beta", {"targetingKey": "u1"})
        assert (client.status().state, client.status().source, client.version) == ("READY", "bootstrap", 5)


def test_a_bad_track_call_raises(env):
    with client_for(env) as client:
        with pytest.raises(ValueError, match="event must not be empty"):
            client.track("", {"targetingKey": "u1"})
        with pytest.raises(ValueError, match="finite"):
            client.track("buy", {"targetingKey": "u1"}, float("nan"))
        with pytest.raises(TypeError, match="value must be a number"):
            client.track("buy", {"targetingKey": "u1"}, "12")
        with pytest.raises(TypeError, match="properties must be a dict"):
            client.track("buy", {"targetingKey": "u1"}, 1.0, ["x"])


def test_a_negative_timeout_raises_value_error(env):
    with client_for(env) as client:
        with pytest.raises(ValueError, match="timeout"):
            client.flush(-1)
