#!/usr/bin/env python3
"""Generates bucketing.json: golden (salt, unit, bucket) cases for OptiFork's bucketing.

It uses the `xxhash` package from PyPI (a binding of the reference C implementation), not
OptiFork's own code, so the Rust tests and every binding check themselves against an
independent implementation of docs/bucketing.md:

    seed   = XXH64(utf8(salt), seed=0)
    bucket = XXH64(utf8(unit), seed=seed) mod 10000

Run: python3 -m venv /tmp/v && /tmp/v/bin/pip install xxhash && /tmp/v/bin/python generate_bucketing.py
The output is committed; re-running it must not change it (the algorithm is frozen).
"""
import json
import os
import random

import xxhash


def bucket(salt: str, unit: str) -> int:
    seed = xxhash.xxh64_intdigest(salt.encode("utf-8"), seed=0)
    return xxhash.xxh64_intdigest(unit.encode("utf-8"), seed=seed) % 10000


def cases():
    rng = random.Random(20261124)
    salts = ["new_checkout", "checkout_experiment", "", "a", "flag.with.dots", "Ünïcödé-flag",
             "日本語のフラグ", "emoji-🚀", "x" * 300, "salt with spaces", "0", "layer:pricing"]
    units = ["user-123", "123", "0", "", " ", "a", "user@example.com", "ユーザー",
             "Ǆemo", "🙂🙃", "x" * 1000, "nul\u0000byte", "tab\tand\nnewline", "-1",
             "9007199254740993", "Straße", "İstanbul", "e\u0301", "\u00e9", "user-124"]
    for s in salts:
        for u in units:
            yield s, u
    for i in range(60):
        s = rng.choice(salts)
        n = rng.choice([1, 8, 31, 32, 33, 64, 200])
        u = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_αβγ中") for _ in range(n))
        yield s, u


def main():
    seen = set()
    out = []
    for salt, unit in cases():
        if (salt, unit) in seen:
            continue
        seen.add((salt, unit))
        out.append({"salt": salt, "unit": unit, "bucket": bucket(salt, unit)})
    doc = {
        "algorithm": "bucket = XXH64(utf8(unit), seed = XXH64(utf8(salt), 0)) mod 10000",
        "generated_by": "generate_bucketing.py with python-xxhash " + xxhash.VERSION,
        "cases": out,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bucketing.json")
    with open(path, "w", encoding="utf-8") as f:
        # One case per line: easy to read and to diff.
        f.write("{\n")
        f.write(f' "algorithm": {json.dumps(doc["algorithm"])},\n')
        f.write(f' "generated_by": {json.dumps(doc["generated_by"])},\n')
        f.write(' "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in out))
        f.write("\n ]\n}\n")
    print(f"wrote {len(out)} cases to {path}")


if __name__ == "__main__":
    main()
