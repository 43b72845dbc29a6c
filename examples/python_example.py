#!/usr/bin/env python3
"""OptiFork from Python: a flag, a remote config and an A/B experiment, against a local
server, with live updates. The entities are the ones examples/README.md creates
(new_checkout, checkout_settings, checkout_redesign).

    pip install ./bindings/python          # or: maturin develop -m bindings/python/Cargo.toml
    OPTIFORK_URL=http://127.0.0.1:8000 OPTIFORK_SDK_KEY=ofk_... python examples/python_example.py
"""

import os
import time

import optifork

URL = os.environ.get("OPTIFORK_URL", "http://127.0.0.1:8000")
SDK_KEY = os.environ.get("OPTIFORK_SDK_KEY", "dev")
WATCH = float(os.environ.get("EXAMPLE_WATCH_SECS", "0"))


def main() -> None:
    # The client keeps the ruleset fresh in the background; `with` closes it (flushing what
    # is left to send) at the end.
    with optifork.Client(URL, SDK_KEY, snapshot_path="/tmp/optifork-python-example.json") as client:
        status = client.wait_until_ready(timeout=5)
        print(f"ruleset version {status.version} from {status.source}")

        @client.on_change
        def changed(change: optifork.Change) -> None:
            print(f"ruleset {change.version}: flags {change.flags}, configs {change.configs}")

        # A flag: contexts are plain dicts; targetingKey (or user_id) identifies the user.
        for i in range(5):
            user = {"targetingKey": f"user-{i}", "country": "US", "tier": "premium" if i % 2 else "free"}
            details = client.evaluate_details("new_checkout", user, False)
            print(f"{user['targetingKey']}: new_checkout={details.value} ({details.reason})")

        # A remote config, resolved for one user (overrides for premium users merged in).
        print("checkout_settings:", client.config("checkout_settings", {"targetingKey": "user-1", "tier": "premium"}))

        # An experiment: enrolled users are recorded as exposures; purchases are events.
        enrolled: dict[str, int] = {}
        for i in range(100):
            user = {"targetingKey": f"user-{i}", "country": "US"}
            arm = client.assign("checkout_redesign", user)
            if arm.in_experiment:
                enrolled[arm.variant] = enrolled.get(arm.variant, 0) + 1
                if i % 4 == 0:
                    client.track("purchase", user, value=20.0 + i % 7)
        print("enrolled:", enrolled)
        client.flush(timeout=10)
        print("sent:", client.stats()["items_sent"], "exposures and events")

        if WATCH > 0:
            print(f"watching for changes for {WATCH:.0f} s (edit a flag or config now)")
            time.sleep(WATCH)


if __name__ == "__main__":
    main()
