#!/usr/bin/env python3
"""Prints the median of every criterion benchmark under target/criterion, for BENCHMARKS.md.

Run after `cargo bench`: python3 benches/medians.py [filter]
"""
import json
import pathlib
import sys


def fmt(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def main():
    root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
    flt = sys.argv[1] if len(sys.argv) > 1 else ""
    for est in sorted(root.glob("**/new/estimates.json")):
        name = str(est.parent.parent.relative_to(root))
        if flt not in name:
            continue
        median = json.loads(est.read_text())["median"]
        lo, hi = median["confidence_interval"]["lower_bound"], median["confidence_interval"]["upper_bound"]
        print(f"{name:60s} median {fmt(median['point_estimate']):>10s}  (95% CI {fmt(lo)} – {fmt(hi)})")


if __name__ == "__main__":
    main()
