// OptiForkProvider through the @openfeature/server-sdk API.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");

const { ErrorCode, OpenFeature, ProviderEvents } = require("@openfeature/server-sdk");
const { Client, Engine } = require("..");
const { OptiForkProvider } = require("../openfeature.js");
const { deadUrl, startServer, waitFor } = require("./harness.js");

const RULESET = {
  version: 4,
  flags: [
    { name: "new_checkout", is_enabled: true, targeting_rules: { country: "US" } },
    { name: "off_no_variant", is_enabled: false, kind: "string", variants: [{ name: "a", value: "A" }] },
    { name: "color", is_enabled: true, variants: [{ name: "red", value: "#f00" }] },
    { name: "limit", is_enabled: true, variants: [{ name: "n", value: 25 }] },
    { name: "settings", is_enabled: true, kind: "json", variants: [{ name: "s", value: { a: [1, 2] } }] },
    { name: "since", is_enabled: true, targeting_rules: { joined: { $lt: "2024-01-01" } } },
    { name: "half", is_enabled: true, rollout_percentage: 50 },
  ],
};
const US = { targetingKey: "user-1", country: "US" };

let server;
test.before(async () => { server = await startServer(); });
test.after(async () => { await server.stop(); });

async function engineFlags() {
  await OpenFeature.setProviderAndWait(new OptiForkProvider(Engine.fromRuleset(RULESET)));
  return OpenFeature.getClient();
}

test("a boolean flag resolves with its reason, variant and metadata", async () => {
  const flags = await engineFlags();
  const d = await flags.getBooleanDetails("new_checkout", false, US);
  assert.deepEqual([d.value, d.variant, d.reason, d.errorCode], [true, "on", "TARGETING_MATCH", undefined]);
  assert.equal(d.flagMetadata.ruleset_version, 4);
  await OpenFeature.close();
});

test("the targeting key and attributes reach the flag", async () => {
  const flags = await engineFlags();
  assert.equal(await flags.getBooleanValue("new_checkout", false, { targetingKey: "u", country: "FR" }), false);
  assert.equal((await flags.getBooleanDetails("half", false, {})).errorCode, ErrorCode.TARGETING_KEY_MISSING);
  assert.equal(await flags.getBooleanValue("since", false, { targetingKey: "u", joined: new Date("2020-05-01") }), true);
  await OpenFeature.close();
});

test("each type resolves", async () => {
  const flags = await engineFlags();
  assert.equal(await flags.getStringValue("color", "x", US), "#f00");
  assert.equal(await flags.getNumberValue("limit", 0, US), 25);
  assert.deepEqual(await flags.getObjectValue("settings", {}, US), { a: [1, 2] });
  await OpenFeature.close();
});

test("an unknown flag gives the default with FLAG_NOT_FOUND", async () => {
  const flags = await engineFlags();
  const d = await flags.getBooleanDetails("nope", true, US);
  assert.deepEqual([d.value, d.errorCode], [true, ErrorCode.FLAG_NOT_FOUND]);
  await OpenFeature.close();
});

test("a type mismatch gives the default", async () => {
  const flags = await engineFlags();
  const d = await flags.getNumberDetails("color", 7, US);
  assert.deepEqual([d.value, d.errorCode], [7, ErrorCode.TYPE_MISMATCH]);
  await OpenFeature.close();
});

test("a flag serving no value gives the default with its reason", async () => {
  const flags = await engineFlags();
  const d = await flags.getStringDetails("off_no_variant", "fallback", US);
  assert.deepEqual([d.value, d.reason, d.errorCode], ["fallback", "DISABLED", undefined]);
  await OpenFeature.close();
});

test("a client without a ruleset is not ready", async () => {
  const client = new Client(await deadUrl(), "key", { backoffInitialMs: 50 });
  const provider = new OptiForkProvider(client, { initTimeoutMs: 200 });
  const d = await provider.resolveBooleanEvaluation("anything", false, US);
  assert.equal(d.errorCode, ErrorCode.PROVIDER_NOT_READY);
  await client.close();
});

test("the provider wants a Client or an Engine", () => {
  assert.throws(() => new OptiForkProvider("http://localhost"), TypeError);
});

test("a server change emits PROVIDER_CONFIGURATION_CHANGED", async () => {
  const env = await server.newEnv();
  await env.create("flags", { name: "a", is_enabled: true });
  const events = [];
  const handler = (e) => events.push(e);
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, handler);
  try {
    await OpenFeature.setProviderAndWait(new OptiForkProvider(new Client(env.url, env.sdkKey, { flushIntervalMs: 100 })));
    const flags = OpenFeature.getClient();
    assert.equal(await flags.getBooleanValue("a", false, US), true);
    await env.create("flags", { name: "b", is_enabled: true });
    await waitFor(() => events.some((e) => (e.flagsChanged ?? []).includes("b")), "the event");
    assert.equal(await flags.getBooleanValue("b", false, US), true);
  } finally {
    OpenFeature.removeHandler(ProviderEvents.ConfigurationChanged, handler);
    await OpenFeature.close();
  }
});

test("track records an event through the client", async () => {
  const env = await server.newEnv();
  const client = new Client(env.url, env.sdkKey, { flushIntervalMs: 100 });
  try {
    await OpenFeature.setProviderAndWait(new OptiForkProvider(client));
    OpenFeature.getClient().track("purchase", US, { value: 9.5, sku: "A" });
    await client.flush(10000);
    const s = client.stats();
    assert.deepEqual([s.eventsQueued, s.itemsSent], [1, 1]);
  } finally {
    await OpenFeature.close();
  }
});
