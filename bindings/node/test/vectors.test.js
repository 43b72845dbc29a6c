// Agreement with the core: the golden bucketing vectors and the shared evaluation fixture
// (optifork-core/tests/vectors/), which the Rust core and the Python binding check too.
// Results are compared as canonical JSON: exact agreement.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");

const { Client, Engine, bucket } = require("..");
const { canonical, loadVectors } = require("./harness.js");

const BUCKETING = loadVectors("bucketing.json");
const FIXTURE = loadVectors("evaluation.json");

test("every golden bucketing vector matches", () => {
  assert.ok(BUCKETING.cases.length >= 200);
  const wrong = BUCKETING.cases.filter((c) => bucket(c.salt, c.unit) !== c.bucket);
  assert.deepEqual(wrong, []);
});

/** What the binding produced for one case, in the fixture's shape (as fixture.rs does). */
function actual(source, c) {
  switch (c.type) {
    case "flag": {
      const d = source.evaluateDetails(c.flag, c.context);
      return { value: d.value, variant: d.variant, reason: d.reason, error_code: d.errorCode, rule_index: d.ruleIndex };
    }
    case "config": return { value: source.config(c.config, c.context) };
    case "segments": return { segments: source.segments(c.context) };
    case "assign": {
      const a = source.assign(c.experiment, c.context);
      return { variant: a.variant, in_experiment: a.inExperiment, reason: a.reason };
    }
    default: throw new Error(`unknown case type ${c.type}`);
  }
}

function failures(source) {
  return FIXTURE.cases
    .filter((c) => canonical(actual(source, c)) !== canonical(c.expected))
    .map((c) => `${c.description}: expected ${canonical(c.expected)}, got ${canonical(actual(source, c))}`);
}

test("the fixture has every kind of case", () => {
  assert.ok(FIXTURE.cases.length >= 30);
  assert.deepEqual(new Set(FIXTURE.cases.map((c) => c.type)), new Set(["flag", "config", "segments", "assign"]));
});

test("the engine agrees with the shared evaluation fixture", () => {
  assert.deepEqual(failures(Engine.fromRuleset(FIXTURE.ruleset)), []);
});

test("a client agrees with the shared evaluation fixture", async () => {
  const client = new Client("", "", { offline: true, bootstrap: FIXTURE.ruleset });
  try {
    assert.deepEqual(failures(client), []);
  } finally {
    await client.close();
  }
});
