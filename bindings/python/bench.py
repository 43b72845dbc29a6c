#!/usr/bin/env python3
"""Evaluation latency from Python: a boolean flag with a 3-attribute context, median over
1M calls (1,000 batches of 1,000, timed per batch). Figures are quoted in BENCHMARKS.md.

The flag is the Rust benchmarks' `simple` (benches/src/lib.rs: one `$in` condition and a 50%
rollout); the context has a targeting key and three attributes.

    python bindings/python/bench.py [--calls N]
"""

import argparse
import statistics
import sys
import time

import optifork

RULESET = {
    "environment": "production",
    "version": 1,
    "flags": [
        {
            "name": "simple",
            "is_enabled": True,
            "rollout_percentage": 50,
            "targeting_rules": {"country": {"$in": ["US", "CA"]}},
        }
    ],
}
CONTEXT = {"targetingKey": "user-12345", "country": "US", "tier": "free", "age": 34}
BATCH = 1000


def median_ns(batch, calls):
    """The median per-call time in ns of `batch()`, which makes BATCH calls, over `calls`
    calls."""
    per_call = []
    for _ in range(max(1, calls // BATCH)):
        start = time.perf_counter_ns()
        batch()
        per_call.append((time.perf_counter_ns() - start) / BATCH)
    return statistics.median(per_call)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()

    engine = optifork.Engine.from_ruleset(RULESET)
    client = optifork.Client("", "", offline=True, bootstrap=RULESET)
    assert client.is_enabled("simple", CONTEXT) == engine.is_enabled("simple", CONTEXT)

    def noop(flag, context):
        return True

    # The loops are written out (no lambda per call), as an application would call.
    def client_batch():
        for _ in range(BATCH):
            client.is_enabled("simple", CONTEXT)

    def engine_batch():
        for _ in range(BATCH):
            engine.is_enabled("simple", CONTEXT)

    def noop_batch():
        for _ in range(BATCH):
            noop("simple", CONTEXT)

    cases = [
        ("Client.is_enabled (bool flag, 3-attribute context)", client_batch),
        ("Engine.is_enabled (bool flag, 3-attribute context)", engine_batch),
        ("a Python function doing nothing (call overhead)", noop_batch),
    ]
    print(f"Python {sys.version.split()[0]}, optifork {optifork.__version__}, "
          f"median of {args.calls // BATCH} batches of {BATCH} calls")
    for name, fn in cases:
        median_ns(fn, args.calls // 10)  # warm up
        print(f"{name:55s} {median_ns(fn, args.calls):8.1f} ns/call")
    client.close()


if __name__ == "__main__":
    main()
