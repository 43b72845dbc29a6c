#!/usr/bin/env python3
"""Generates evaluation.json: a ruleset, contexts and the results every OptiFork
implementation (Rust core, Python and Node bindings) must produce for them.

Expected results are written out by hand from the documented semantics (optifork-core's crate
docs); where a percentage decides, the expected variant is derived here from the bucket
computed with python-xxhash (see generate_bucketing.py), not from OptiFork's code.

Run: /tmp/v/bin/python generate_evaluation.py   (needs `pip install xxhash`)
"""
import json
import os

import xxhash


def bucket(salt, unit):
    seed = xxhash.xxh64_intdigest(salt.encode("utf-8"), seed=0)
    return xxhash.xxh64_intdigest(unit.encode("utf-8"), seed=seed) % 10000


RULESET = {
    "environment": "production",
    "version": 42,
    "segments": [
        {"name": "premium_users", "criteria": {"tier": "premium"}},
        {"name": "us_users", "criteria": {"country": {"$in": ["US", "CA"]}}},
        {"name": "staff", "criteria": {"email": {"$regex": "@optifork\\.dev$", "$options": "i"}}},
        {"name": "premium_us", "criteria": {"$and": [{"$segment": "premium_users"}, {"$segment": "us_users"}]}},
        {"name": "retired", "criteria": {}, "is_active": False},
    ],
    "flags": [
        {"name": "new_checkout", "description": "the seed's flag", "is_enabled": True,
         "rollout_percentage": 50, "targeting_rules": {"country": "US"}},
        {"name": "kill_switch", "is_enabled": False},
        {"name": "everyone", "is_enabled": True},
        {"name": "button_color", "is_enabled": True,
         "variants": [{"name": "blue", "value": "#0000ff"}, {"name": "green", "value": "#00ff00"},
                      {"name": "red", "value": "#ff0000"}],
         "rules": [
             {"condition": {"$segment": "staff"}, "serve": {"variant": "red"}},
             {"condition": {"app_version": {"$vgte": "2.3.0"}},
              "serve": {"rollout": [{"variant": "blue", "weight": 50}, {"variant": "green", "weight": 50}]}},
         ],
         "default": {"variant": "blue"}, "off_variant": "blue"},
        {"name": "max_items", "is_enabled": True,
         "variants": [{"name": "few", "value": 10}, {"name": "many", "value": 100}],
         "rules": [{"condition": {"$segment": "premium_users"}, "serve": {"variant": "many"}}],
         "default": {"variant": "few"}},
        {"name": "limits", "is_enabled": True, "kind": "json",
         "variants": [{"name": "std", "value": {"rps": 10, "burst": 20}}]},
        {"name": "beta_child", "is_enabled": True, "prerequisites": [{"flag": "beta_parent"}]},
        {"name": "beta_parent", "is_enabled": True, "targeting_rules": {"beta": True}},
        {"name": "by_org", "is_enabled": True, "rollout_percentage": 30, "bucket_by": "org_id"},
    ],
    "configs": [
        {"name": "theme", "config_data": {"color": "blue", "layout": {"sidebar": True, "columns": 2}},
         "environment": "production", "is_active": True,
         "overrides": [
             {"segment": "premium_users", "config_data": {"color": "gold", "layout": {"columns": 3}}},
             {"condition": {"country": "FR"}, "config_data": {"color": "bleu", "cookie_banner": True}},
         ]},
        {"name": "old", "config_data": {"x": 1}, "is_active": False},
    ],
    "experiments": [
        {"name": "checkout_flow", "variants": ["control", "one_page", "two_page"],
         "traffic_splits": {"control": 34, "one_page": 33, "two_page": 33},
         "targeting_rules": {"country": "US"}, "is_active": True, "allocation": 80},
        {"name": "paused_test", "variants": ["control", "b"], "is_active": False},
    ],
}

CASES = []


def flag(desc, name, ctx, value, variant, reason, error_code=None, rule_index=None):
    CASES.append({"description": desc, "type": "flag", "flag": name, "context": ctx,
                  "expected": {"value": value, "variant": variant, "reason": reason,
                               "error_code": error_code, "rule_index": rule_index}})


def users_in(salt, threshold, inside, n=2, prefix="user"):
    out, i = [], 0
    while len(out) < n:
        uid = f"{prefix}-{i}"
        if (bucket(salt, uid) < threshold) == inside:
            out.append(uid)
        i += 1
    return out


# The seed's flag: targeting, then a 50% rollout.
for uid in users_in("new_checkout", 5000, True):
    flag("seed flag: US user inside the rollout", "new_checkout",
         {"user_id": uid, "country": "US"}, True, "on", "SPLIT")
for uid in users_in("new_checkout", 5000, False):
    flag("seed flag: US user outside the rollout", "new_checkout",
         {"user_id": uid, "country": "US"}, False, "off", "SPLIT")
flag("seed flag: targeting not matched", "new_checkout", {"user_id": "u1", "country": "FR"},
     False, "off", "DEFAULT")
flag("seed flag: no key for the rollout", "new_checkout", {"country": "US"},
     None, None, "ERROR", "TARGETING_KEY_MISSING")
flag("disabled flag", "kill_switch", {"user_id": "u1"}, False, "off", "DISABLED")
flag("flag on for everyone", "everyone", {}, True, "on", "STATIC")
flag("unknown flag", "does_not_exist", {"user_id": "u1"}, None, None, "ERROR", "FLAG_NOT_FOUND")

# Multivariate string flag.
flag("staff segment (case-insensitive regex) wins rule 0", "button_color",
     {"targetingKey": "u9", "email": "Ann@OptiFork.dev", "app_version": "3.0.0"},
     "#ff0000", "red", "TARGETING_MATCH", rule_index=0)
for uid in users_in("button_color", 5000, True):
    flag("app_version >= 2.3 splits 50/50: blue half", "button_color",
         {"targetingKey": uid, "app_version": "2.10.1"}, "#0000ff", "blue", "SPLIT", rule_index=1)
for uid in users_in("button_color", 5000, False):
    flag("app_version >= 2.3 splits 50/50: green half", "button_color",
         {"targetingKey": uid, "app_version": "v2.3"}, "#00ff00", "green", "SPLIT", rule_index=1)
flag("old app version falls through to the default", "button_color",
     {"targetingKey": "u1", "app_version": "2.2.9"}, "#0000ff", "blue", "DEFAULT")

flag("number flag: premium", "max_items", {"user_id": 5, "tier": "premium"}, 100, "many",
     "TARGETING_MATCH", rule_index=0)
flag("number flag: default", "max_items", {"user_id": 5}, 10, "few", "DEFAULT")
flag("json flag", "limits", {}, {"rps": 10, "burst": 20}, "std", "STATIC")
flag("prerequisite met", "beta_child", {"user_id": "u1", "beta": True}, True, "on", "STATIC")
flag("prerequisite not met", "beta_child", {"user_id": "u1"}, False, "off", "PREREQUISITE_FAILED")
for org in users_in("by_org", 3000, True, n=1, prefix="org"):
    flag("bucket_by org_id: inside", "by_org", {"user_id": "any", "org_id": org}, True, "on", "SPLIT")
for org in users_in("by_org", 3000, False, n=1, prefix="org"):
    flag("bucket_by org_id: outside", "by_org", {"user_id": "any", "org_id": org}, False, "off", "SPLIT")
num_org = next(i for i in range(10000) if bucket("by_org", str(i)) < 3000)
flag("bucket_by a numeric attribute hashes its decimal form", "by_org",
     {"user_id": "any", "org_id": num_org}, True, "on", "SPLIT")

# Configs.
CASES.append({"description": "config: general value", "type": "config", "config": "theme",
              "context": {"user_id": "u1"},
              "expected": {"value": {"color": "blue", "layout": {"sidebar": True, "columns": 2}}}})
CASES.append({"description": "config: segment override deep-merged", "type": "config",
              "config": "theme", "context": {"user_id": "u1", "tier": "premium"},
              "expected": {"value": {"color": "gold", "layout": {"sidebar": True, "columns": 3}}}})
CASES.append({"description": "config: first override wins on conflicts", "type": "config",
              "config": "theme", "context": {"user_id": "u1", "tier": "premium", "country": "FR"},
              "expected": {"value": {"color": "gold", "layout": {"sidebar": True, "columns": 3},
                                     "cookie_banner": True}}})
CASES.append({"description": "config: inactive", "type": "config", "config": "old",
              "context": {}, "expected": {"value": None}})

# Segments.
CASES.append({"description": "segments of a premium US user", "type": "segments",
              "context": {"user_id": "u1", "tier": "premium", "country": "CA"},
              "expected": {"segments": ["premium_users", "us_users", "premium_us"]}})
CASES.append({"description": "segments of nobody in particular", "type": "segments",
              "context": {"user_id": "u1"}, "expected": {"segments": []}})

# Experiments: 80% allocation of splits 34/33/33, laid out from each variant's start.
def expected_assignment(uid):
    b = bucket("checkout_flow", uid)
    starts, weights = [0, 3400, 6700], [3400, 3300, 3300]
    for name, s, w in zip(["control", "one_page", "two_page"], starts, weights):
        width = w * 8000 // 10000
        if s <= b < s + width:
            return {"variant": name, "in_experiment": True, "reason": "ASSIGNED"}
    return {"variant": "control", "in_experiment": False, "reason": "NOT_ALLOCATED"}


seen = set()
for i in range(200):
    uid = f"visitor-{i}"
    exp = expected_assignment(uid)
    key = (exp["variant"], exp["in_experiment"])
    if key in seen:
        continue
    seen.add(key)
    CASES.append({"description": f"assignment: {exp['variant']} ({exp['reason']})",
                  "type": "assign", "experiment": "checkout_flow",
                  "context": {"user_id": uid, "country": "US"}, "expected": exp})
CASES.append({"description": "assignment: targeting not matched", "type": "assign",
              "experiment": "checkout_flow", "context": {"user_id": "u1", "country": "FR"},
              "expected": {"variant": "control", "in_experiment": False, "reason": "TARGETING_MISMATCH"}})
CASES.append({"description": "assignment: inactive experiment", "type": "assign",
              "experiment": "paused_test", "context": {"user_id": "u1"},
              "expected": {"variant": "control", "in_experiment": False, "reason": "INACTIVE"}})
CASES.append({"description": "assignment: unknown experiment", "type": "assign",
              "experiment": "nope", "context": {"user_id": "u1"},
              "expected": {"variant": "control", "in_experiment": False, "reason": "EXPERIMENT_NOT_FOUND"}})


def main():
    doc = {"about": "Shared evaluation fixture: every OptiFork implementation must produce "
                    "exactly these results. Generated by generate_evaluation.py.",
           "ruleset": RULESET, "cases": CASES}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluation.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(CASES)} cases to {path}")


if __name__ == "__main__":
    main()
