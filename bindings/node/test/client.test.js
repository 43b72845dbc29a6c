// Client against the real optifork-server: sync, change callbacks, exposures and events
// arriving at the server, and the errors thrown for bad input.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const path = require("node:path");

const {
  Client, FlushTimeoutError, InvalidOptionError, InvalidRulesetError, NotReadyError, OptiForkError, UnauthorizedError,
} = require("..");
const { deadUrl, startServer, waitFor } = require("./harness.js");

const FAST = { flushIntervalMs: 100, backoffInitialMs: 50, backoffMaxMs: 500 };

let server;
test.before(async () => { server = await startServer(); });
test.after(async () => { await server.stop(); });

/** A client of a fresh environment, closed after `fn`. */
async function withClient(env, options, fn) {
  const client = new Client(env.url, env.sdkKey, { ...FAST, ...options });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

// --- sync ------------------------------------------------------------------------------------

test("the client serves the server's flags once ready", async () => {
  const env = await server.newEnv();
  await env.create("flags", { name: "new_checkout", is_enabled: true, targeting_rules: { country: "US" } });
  await withClient(env, {}, async (client) => {
    const status = await client.waitUntilReady(10000);
    assert.deepEqual([status.state, status.source, status.environment, status.isReady], ["READY", "server", env.name, true]);
    assert.ok(status.updatedAt instanceof Date);
    assert.equal(client.isEnabled("new_checkout", { targetingKey: "u1", country: "US" }), true);
    assert.equal(client.isEnabled("new_checkout", { targetingKey: "u1", country: "FR" }), false);
  });
});

test("a flag changed on the server reaches the client", async () => {
  const env = await server.newEnv();
  await env.create("flags", { name: "banner", is_enabled: false });
  await withClient(env, {}, async (client) => {
    await client.waitUntilReady(10000);
    assert.equal(client.isEnabled("banner", { targetingKey: "u1" }), false);
    await env.ok("PUT", "/flags/banner", { is_enabled: true });
    await waitFor(() => client.isEnabled("banner", { targetingKey: "u1" }), "the update");
  });
});

test("configs and segments come from the server", async () => {
  const env = await server.newEnv();
  await env.create("segments", { name: "premium", criteria: { tier: "premium" } });
  await env.create("configs", {
    name: "checkout", config_data: { max_items: 20, express: false },
    overrides: [{ segment: "premium", config_data: { express: true } }],
  });
  await withClient(env, {}, async (client) => {
    await client.waitUntilReady(10000);
    const premium = { targetingKey: "u1", tier: "premium" };
    assert.deepEqual(client.config("checkout", premium), { max_items: 20, express: true });
    assert.deepEqual(client.segments(premium), ["premium"]);
  });
});

test("before any contact the client has no ruleset and serves defaults", async () => {
  const client = new Client(await deadUrl(), "key", { backoffInitialMs: 50 });
  try {
    assert.equal(client.status().source, null);
    assert.equal(client.version, null);
    assert.equal(client.getBool("anything", { targetingKey: "u1" }, true), true);
  } finally {
    await client.close();
  }
});

// --- change callbacks ------------------------------------------------------------------------

test("onChange names the flags that changed", async () => {
  const env = await server.newEnv();
  await env.create("flags", { name: "a", is_enabled: true });
  await withClient(env, {}, async (client) => {
    await client.waitUntilReady(10000);
    const changes = [];
    client.onChange((c) => changes.push(c));
    await env.create("flags", { name: "b", is_enabled: true });
    await waitFor(() => changes.some((c) => c.flags.includes("b")), "a change naming b");
    const change = changes.find((c) => c.flags.includes("b"));
    assert.deepEqual(change.flags, ["b"]);
    assert.equal(change.source, "server");
    assert.ok(change.version > change.previousVersion);
  });
});

test("an exception in a callback is reported as a warning and later updates still arrive", async () => {
  const env = await server.newEnv();
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on("warning", onWarning);
  try {
    await withClient(env, {}, async (client) => {
      await client.waitUntilReady(10000);
      const seen = [];
      client.onChange(() => { throw new Error("callback bug"); });
      client.onChange((c) => seen.push(c));
      await env.create("flags", { name: "one", is_enabled: true });
      await waitFor(() => seen.some((c) => c.flags.includes("one")), "first change");
      await env.create("flags", { name: "two", is_enabled: true });
      await waitFor(() => seen.some((c) => c.flags.includes("two")), "second change");
      await waitFor(() => warnings.some((w) => w.code === "OPTIFORK_CALLBACK_ERROR" && /callback bug/.test(w.message)), "the warning");
    });
  } finally {
    process.off("warning", onWarning);
  }
});

test("a removed callback is not called again", async () => {
  const env = await server.newEnv();
  await withClient(env, {}, async (client) => {
    await client.waitUntilReady(10000);
    const removed = [];
    const kept = [];
    const off = client.onChange((c) => removed.push(c));
    client.onChange((c) => kept.push(c));
    assert.equal(off(), true);
    assert.equal(off(), false);
    await env.create("flags", { name: "x", is_enabled: true });
    await waitFor(() => kept.length > 0, "the kept callback");
    assert.deepEqual(removed, []);
  });
});

test("offChange removes a callback by identity", async () => {
  const client = new Client("", "", { offline: true });
  const seen = [];
  const callback = (c) => seen.push(c);
  client.onChange(callback);
  assert.equal(client.offChange(callback), true);
  assert.equal(client.offChange(callback), false);
  client.updateRuleset({ version: 2, flags: [{ name: "f", is_enabled: true }] });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, []);
  await client.close();
});

test("a callback that is not a function throws TypeError", async () => {
  const client = new Client("", "", { offline: true });
  assert.throws(() => client.onChange(42), { name: "TypeError", message: /callback must be a function/ });
  await client.close();
});

test("updateRuleset installs a ruleset and tells the callbacks", async () => {
  const client = new Client("", "", { offline: true });
  const changes = [];
  client.onChange((c) => changes.push(c));
  const change = client.updateRuleset({ version: 3, flags: [{ name: "f", is_enabled: true }] });
  assert.deepEqual([change.flags, change.source], [["f"], "manual"]);
  assert.equal(client.isEnabled("f"), true);
  await waitFor(() => changes.length === 1, "the callback");
  assert.equal(changes[0].version, 3);
  await client.close();
});

test("updateRuleset refuses a bad ruleset and keeps the current one", async () => {
  const client = new Client("", "", { offline: true, bootstrap: { flags: [{ name: "f", is_enabled: true }] } });
  assert.throws(() => client.updateRuleset({ flags: [{ name: "f", targeting_rules: { $nope: 1 } }] }), InvalidRulesetError);
  assert.equal(client.isEnabled("f"), true);
  await client.close();
});

// --- exposures and events --------------------------------------------------------------------

test("experiment exposures and tracked events arrive at the server", async () => {
  const env = await server.newEnv();
  await env.create("experiments", {
    name: "checkout_flow", variants: ["control", "one_page"],
    traffic_splits: { control: 50, one_page: 50 }, is_active: true,
    metrics: [{ name: "purchase_rate", event: "purchase", type: "conversion" }],
  });
  await withClient(env, {}, async (client) => {
    await client.waitUntilReady(10000);
    const users = { control: 0, one_page: 0 };
    const buyers = { control: 0, one_page: 0 };
    for (let i = 0; i < 200; i++) {
      const ctx = { targetingKey: `user-${i}` };
      const a = client.assign("checkout_flow", ctx);
      assert.equal(a.inExperiment, true);
      users[a.variant]++;
      if (i % 3 === 0) {
        client.track("purchase", ctx, 12.5, { sku: "A1" });
        buyers[a.variant]++;
      }
    }
    await client.flush(10000);
    const results = await env.ok("GET", "/experiments/checkout_flow/results");
    for (const v of results.variants) {
      assert.deepEqual([v.users, v.exposures], [users[v.variant], users[v.variant]]);
    }
    const rate = results.metrics.find((m) => m.name === "purchase_rate");
    assert.equal(rate.comparisons[0].control.conversions, buyers.control);
    assert.equal(rate.comparisons[0].treatment.conversions, buyers.one_page);
  });
});

test("exposures of tracked flags arrive once per user", async () => {
  const env = await server.newEnv();
  await env.create("flags", { name: "banner", is_enabled: true, track: true });
  await withClient(env, {}, async (client) => {
    await client.waitUntilReady(10000);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) { assert.equal(client.isEnabled("banner", { targetingKey: `user-${i}` }), true); }
    }
    await client.flush(10000);
    const { exposures } = await env.ok("GET", "/flags/banner/exposures?limit=100");
    assert.deepEqual(exposures.map((r) => r.user_id).sort(), [0, 1, 2, 3, 4].map((i) => `user-${i}`));
  });
});

test("stats count what was sent", async () => {
  const env = await server.newEnv();
  await env.create("flags", { name: "banner", is_enabled: true, track: true });
  await withClient(env, {}, async (client) => {
    await client.waitUntilReady(10000);
    client.isEnabled("banner", { targetingKey: "u1" });
    client.track("signup", { targetingKey: "u1" });
    await client.flush(10000);
    const s = client.stats();
    assert.deepEqual([s.exposuresQueued, s.eventsQueued, s.itemsSent], [1, 1, 2]);
  });
});

test("an event without a targeting key is dropped and counted", async () => {
  const client = new Client("http://127.0.0.1:9", "key", FAST);
  client.track("signup", { country: "US" });
  assert.equal(client.stats().droppedInvalid, 1);
  await client.close().catch(() => {});
});

test("evaluation keeps working after close, and close is idempotent", async () => {
  const client = new Client("", "", { offline: true, bootstrap: { flags: [{ name: "f", is_enabled: true }] } });
  await client.close();
  await client.close();
  assert.equal(client.isEnabled("f"), true);
});

test("the process can exit after close()", async () => {
  const env = await server.newEnv();
  const script = `
    const { Client } = require(${JSON.stringify(path.resolve(__dirname, ".."))});
    (async () => {
      const c = new Client(${JSON.stringify(env.url)}, ${JSON.stringify(env.sdkKey)});
      c.onChange(() => {});
      await c.waitUntilReady(10000);
      c.track("signup", { targetingKey: "u1" });
      await c.close();
      console.log("closed");
    })();`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  const code = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error("the process did not exit")); }, 20000);
    child.on("exit", (c) => { clearTimeout(timer); resolve(c); });
  });
  assert.equal(code, 0);
  assert.match(out, /closed/);
});

// --- errors for bad input --------------------------------------------------------------------

test("a refused SDK key rejects with UnauthorizedError", async () => {
  const client = new Client(server.url, "ofk_not_a_real_key", FAST);
  await assert.rejects(client.waitUntilReady(10000), (e) => e instanceof UnauthorizedError && e instanceof OptiForkError && e.code === "ERR_OPTIFORK_UNAUTHORIZED");
  await client.close();
});

test("an unreachable server rejects with NotReadyError after the timeout, without blocking the event loop", async () => {
  const client = new Client(await deadUrl(), "key", { backoffInitialMs: 50 });
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 10);
  const started = Date.now();
  await assert.rejects(client.waitUntilReady(500), NotReadyError);
  clearInterval(timer);
  assert.ok(Date.now() - started >= 450);
  assert.ok(ticks >= 10, `the event loop ran while waiting (${ticks} ticks)`);
  await client.close();
});

test("an invalid URL throws InvalidOptionError", () => {
  assert.throws(() => new Client("ftp://example.com", "key"), (e) => e instanceof InvalidOptionError && e.option === "url");
});

test("an unknown option throws TypeError naming it", () => {
  assert.throws(() => new Client("http://127.0.0.1:1", "key", { pollInterval: 1 }), { name: "TypeError", message: /unknown option "pollInterval"/ });
});

test("an option of the wrong type throws TypeError", () => {
  assert.throws(() => new Client("http://127.0.0.1:1", "key", { pollIntervalMs: "30s" }), { name: "TypeError", message: /pollIntervalMs must be a number, not string/ });
  assert.throws(() => new Client(42, "key"), { name: "TypeError", message: /url must be a string/ });
});

test("an out-of-range option throws InvalidOptionError", () => {
  assert.throws(() => new Client("http://127.0.0.1:1", "key", { exposureBatchSize: 0 }), (e) => e instanceof InvalidOptionError && e.option === "exposureBatchSize");
  assert.throws(() => new Client("http://127.0.0.1:1", "key", { pollIntervalMs: -1 }), (e) => e instanceof InvalidOptionError && e.option === "pollIntervalMs");
});

test("an invalid bootstrap throws InvalidRulesetError", () => {
  assert.throws(() => new Client("", "", { offline: true, bootstrap: '{"flags": 3}' }), { name: "InvalidRulesetError", message: /bootstrap/ });
});

test("an offline client serves its bootstrap", async () => {
  const client = new Client("", "", { offline: true, bootstrap: { version: 5, flags: [{ name: "beta", is_enabled: true }] } });
  assert.equal(client.isEnabled("beta", { targetingKey: "u1" }), true);
  const s = client.status();
  assert.deepEqual([s.state, s.source, client.version], ["READY", "bootstrap", 5]);
  await client.close();
});

test("a bad track call throws", async () => {
  const client = new Client("", "", { offline: true });
  assert.throws(() => client.track("", { targetingKey: "u1" }), { name: "RangeError", message: /event must not be empty/ });
  assert.throws(() => client.track("buy", { targetingKey: "u1" }, NaN), { name: "RangeError", message: /finite/ });
  assert.throws(() => client.track("buy", { targetingKey: "u1" }, "12"), { name: "TypeError", message: /value must be a number/ });
  assert.throws(() => client.track("buy", { targetingKey: "u1" }, 1, ["x"]), { name: "TypeError", message: /properties must be an object/ });
  assert.throws(() => client.track("buy", "u1"), { name: "TypeError", message: /context must be an object/ });
  await client.close();
});

test("a negative timeout rejects with RangeError", async () => {
  const client = new Client("", "", { offline: true });
  await assert.rejects(client.flush(-1), RangeError);
  await client.close();
});

test("flush rejects with FlushTimeoutError when the server cannot be reached", async () => {
  const client = new Client(await deadUrl(), "key", { ...FAST, closeTimeoutMs: 100 });
  client.track("signup", { targetingKey: "u1" });
  await assert.rejects(client.flush(300), FlushTimeoutError);
  await client.close().catch(() => {});
});
