// Engine: offline evaluation of a fixed ruleset, and what bad input throws.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");

const optifork = require("..");
const { Engine, InvalidRulesetError, OptiForkError } = optifork;

const RULESET = {
  environment: "production",
  version: 7,
  segments: [{ name: "premium_users", criteria: { tier: "premium" } }],
  flags: [
    { name: "new_checkout", is_enabled: true, targeting_rules: { country: "US" } },
    { name: "kill_switch", is_enabled: false },
    {
      name: "button_color", is_enabled: true,
      variants: [{ name: "blue", value: "#00f" }, { name: "red", value: "#f00" }],
      rules: [{ condition: { $segment: "premium_users" }, serve: { variant: "red" } }],
      default: { variant: "blue" },
    },
    {
      name: "max_items", is_enabled: true,
      variants: [{ name: "few", value: 10 }, { name: "half", value: 2.5 }],
      rules: [{ condition: { tier: "half" }, serve: { variant: "half" } }],
      default: { variant: "few" },
    },
    { name: "limits", is_enabled: true, kind: "json", variants: [{ name: "std", value: { rps: 10, tags: ["a", "b"] } }] },
    { name: "beta", is_enabled: true, targeting_rules: { beta: true } },
    { name: "by_city", is_enabled: true, targeting_rules: { "address.city": "Paris" } },
    { name: "since", is_enabled: true, targeting_rules: { joined: { $lt: "2024-01-01" } } },
  ],
  configs: [{
    name: "theme",
    config_data: { color: "blue", layout: { columns: 2 } },
    overrides: [{ segment: "premium_users", config_data: { layout: { columns: 3 } } }],
  }],
  experiments: [{
    name: "checkout_flow", is_active: true, variants: ["control", "one_page"],
    traffic_splits: { control: 50, one_page: 50 },
  }],
};

const engine = Engine.fromRuleset(RULESET);
const US = { targetingKey: "user-1", country: "US" };

test("fromRuleset accepts an object", () => {
  assert.equal(engine.version, 7);
  assert.equal(engine.environment, "production");
});

test("fromRuleset accepts JSON text and bytes", () => {
  assert.equal(Engine.fromRuleset(JSON.stringify(RULESET)).version, 7);
  assert.equal(Engine.fromRuleset(Buffer.from(JSON.stringify(RULESET))).version, 7);
});

test("malformed JSON throws InvalidRulesetError", () => {
  assert.throws(() => Engine.fromRuleset('{"flags": ['), (e) => e instanceof InvalidRulesetError && e instanceof OptiForkError);
});

test("a ruleset that does not compile names the culprit", () => {
  const bad = { flags: [{ name: "f", is_enabled: true, targeting_rules: { age: { $gtx: 3 } } }] };
  assert.throws(() => Engine.fromRuleset(bad), (e) => {
    assert.ok(e instanceof InvalidRulesetError);
    assert.equal(e.code, "ERR_OPTIFORK_INVALID_RULESET");
    assert.equal(e.ruleCode, "unknown_operator");
    assert.match(e.path, /^\$\.flags\[0\]\.targeting_rules/);
    assert.match(e.message, /\$gtx/);
    return true;
  });
});

test("a ruleset of the wrong type throws TypeError", () => {
  assert.throws(() => Engine.fromRuleset([1, 2]), { name: "TypeError", message: /ruleset must be an object or a JSON string, not an array/ });
});

test("new Engine() is refused: use fromRuleset", () => {
  assert.throws(() => new Engine(), TypeError);
});

test("isEnabled follows targeting", () => {
  assert.equal(engine.isEnabled("new_checkout", US), true);
  assert.equal(engine.isEnabled("new_checkout", { targetingKey: "user-1", country: "FR" }), false);
});

test("isEnabled is false for unknown, disabled and non-boolean flags", () => {
  assert.equal(engine.isEnabled("nope", US), false);
  assert.equal(engine.isEnabled("kill_switch", US), false);
  assert.equal(engine.isEnabled("button_color", US), false);
});

test("the context may be omitted", () => {
  assert.equal(engine.isEnabled("new_checkout"), false);
  assert.equal(engine.getString("button_color"), "#00f");
});

test("user_id is a targeting key too", () => {
  const a = engine.assign("checkout_flow", { user_id: "user-1" });
  const b = engine.assign("checkout_flow", { targetingKey: "user-1" });
  assert.equal(a.inExperiment, true);
  assert.equal(a.variant, b.variant);
});

test("a boolean attribute is a boolean, not a number", () => {
  assert.equal(engine.isEnabled("beta", { beta: true }), true);
  assert.equal(engine.isEnabled("beta", { beta: 1 }), false);
});

test("nested attributes are reached by dot paths", () => {
  assert.equal(engine.isEnabled("by_city", { address: { city: "Paris", zip: [75001] } }), true);
  assert.equal(engine.isEnabled("by_city", { address: { city: "Lyon" } }), false);
});

test("a Date attribute is compared as its ISO 8601 string", () => {
  assert.equal(engine.isEnabled("since", { joined: new Date("2020-05-01T00:00:00Z") }), true);
  assert.equal(engine.isEnabled("since", { joined: new Date("2025-05-01T00:00:00Z") }), false);
});

test("undefined attributes are left out", () => {
  assert.equal(engine.isEnabled("new_checkout", { targetingKey: "u", country: undefined }), false);
});

test("long and non-ASCII strings cross intact", () => {
  const long = "x".repeat(5000);
  const e = Engine.fromRuleset({ flags: [{ name: "f", is_enabled: true, targeting_rules: { name: { $in: [long, "ユーザー🙂"] } } }] });
  assert.equal(e.isEnabled("f", { name: long }), true);
  assert.equal(e.isEnabled("f", { name: "ユーザー🙂" }), true);
  assert.equal(e.isEnabled("f", { name: long.slice(1) }), false);
});

test("a context that is not an object throws TypeError", () => {
  assert.throws(() => engine.isEnabled("new_checkout", "user-1"), { name: "TypeError", code: "ERR_INVALID_ARG_TYPE", message: /context must be an object of attributes/ });
  assert.throws(() => engine.isEnabled("new_checkout", ["US"]), { name: "TypeError", message: /not an array/ });
});

test("an unsupported attribute type names the attribute", () => {
  assert.throws(() => engine.isEnabled("new_checkout", { when: () => 1 }), { name: "TypeError", message: /context\.when: unsupported type function/ });
  assert.throws(() => engine.isEnabled("new_checkout", { a: { b: [1, 2n] } }), { name: "TypeError", message: /context\.a\.b\[1\]: unsupported type bigint/ });
});

test("a self-containing attribute throws instead of recursing forever", () => {
  const loop = {};
  loop.self = loop;
  assert.throws(() => engine.isEnabled("new_checkout", { loop }), { name: "TypeError", message: /nests more than 64 levels/ });
});

test("a flag name that is not a string throws TypeError", () => {
  assert.throws(() => engine.isEnabled(42, US), { name: "TypeError", message: /flag must be a string, not number/ });
});

test("getValue returns each kind of value", () => {
  assert.equal(engine.getValue("new_checkout", US), true);
  assert.equal(engine.getValue("button_color", US), "#00f");
  assert.equal(engine.getValue("max_items", US), 10);
  assert.equal(engine.getValue("max_items", { tier: "half" }), 2.5);
  assert.deepEqual(engine.getValue("limits", US), { rps: 10, tags: ["a", "b"] });
});

test("getValue returns the default when no value is served", () => {
  assert.equal(engine.getValue("nope", US, "fallback"), "fallback");
  assert.equal(engine.getValue("nope", US), undefined);
});

test("typed getters return the flag's value", () => {
  assert.equal(engine.getBool("new_checkout", US), true);
  assert.equal(engine.getString("button_color", { tier: "premium" }), "#f00");
  assert.equal(engine.getNumber("max_items", US), 10);
  assert.equal(engine.getInt("max_items", US), 10);
  assert.deepEqual(engine.getJson("limits", US), { rps: 10, tags: ["a", "b"] });
});

test("typed getters return the default on a type mismatch", () => {
  assert.equal(engine.getBool("button_color", US, true), true);
  assert.equal(engine.getString("new_checkout", US, "x"), "x");
  assert.equal(engine.getNumber("button_color", US, 1.5), 1.5);
  assert.equal(engine.getInt("max_items", { tier: "half" }, 7), 7);
  assert.deepEqual(engine.getJson("button_color", US, { d: 1 }), { d: 1 });
});

test("a typed getter with a default of the wrong type throws TypeError", () => {
  assert.throws(() => engine.getBool("new_checkout", US, "yes"), TypeError);
  assert.throws(() => engine.getString("button_color", US, 3), TypeError);
  assert.throws(() => engine.getInt("max_items", US, 1.5), TypeError);
});

test("evaluateDetails reports variant, reason and rule", () => {
  assert.deepEqual(engine.evaluateDetails("button_color", { targetingKey: "u", tier: "premium" }), {
    flagKey: "button_color", value: "#f00", variant: "red", reason: "TARGETING_MATCH", errorCode: null, ruleIndex: 0,
  });
});

test("evaluateDetails of an unknown flag is an error with the default", () => {
  const d = engine.evaluateDetails("nope", US, false);
  assert.deepEqual([d.value, d.variant, d.reason, d.errorCode], [false, null, "ERROR", "FLAG_NOT_FOUND"]);
});

test("config deep-merges matching overrides", () => {
  assert.deepEqual(engine.config("theme", { tier: "premium" }), { color: "blue", layout: { columns: 3 } });
  assert.deepEqual(engine.config("theme", { tier: "free" }), { color: "blue", layout: { columns: 2 } });
  assert.equal(engine.config("nope", US), null);
});

test("segments and inSegment", () => {
  assert.deepEqual(engine.segments({ tier: "premium" }), ["premium_users"]);
  assert.deepEqual(engine.segments({ tier: "free" }), []);
  assert.equal(engine.inSegment("premium_users", { tier: "premium" }), true);
  assert.equal(engine.inSegment("nope", {}), null);
});

test("assign enrolls identified users and gives control to the others", () => {
  const a = engine.assign("checkout_flow", { targetingKey: "user-1" });
  assert.equal(a.experiment, "checkout_flow");
  assert.ok(a.inExperiment && ["control", "one_page"].includes(a.variant));
  assert.deepEqual(engine.assign("checkout_flow", {}), {
    experiment: "checkout_flow", variant: "control", inExperiment: false, reason: "TARGETING_KEY_MISSING",
  });
});

test("flagNames lists every flag in order", () => {
  assert.deepEqual(engine.flagNames().slice(0, 3), ["new_checkout", "kill_switch", "button_color"]);
});

test("a Rust panic becomes InternalError, not a crash", () => {
  assert.throws(() => optifork._panicForTests(), { name: "InternalError", code: "ERR_OPTIFORK_INTERNAL", message: /a deliberate panic/ });
});

test("attribute names are interned up to a limit and still read correctly beyond it", () => {
  const e = Engine.fromRuleset({ flags: [{ name: "f", is_enabled: true, targeting_rules: { k4999: "yes" } }] });
  for (let i = 0; i < 5000; i++) {
    // A fresh attribute name each time: the first 4096 get ids, the rest travel as strings.
    assert.equal(e.isEnabled("f", { targetingKey: "u", [`k${i}`]: "yes" }), i === 4999);
  }
  assert.equal(e.isEnabled("f", { k4999: "yes", k0: "no" }), true);
  assert.equal(e.getBool("f", { k4999: "no", k1: "x" }, true), false);
});
