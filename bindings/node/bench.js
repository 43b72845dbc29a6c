#!/usr/bin/env node
// Evaluation latency from Node: a boolean flag with a 3-attribute context, median over 1M
// calls (1,000 batches of 1,000, timed per batch). Figures are quoted in BENCHMARKS.md.
//
// The flag is the Rust benchmarks' `simple` (benches/src/lib.rs: one `$in` condition and a 50%
// rollout); the context has a targeting key and three attributes.
//
//   node bindings/node/bench.js [calls]
"use strict";

const optifork = require("./index.js");

const RULESET = {
  environment: "production",
  version: 1,
  flags: [{ name: "simple", is_enabled: true, rollout_percentage: 50, targeting_rules: { country: { $in: ["US", "CA"] } } }],
};
const CONTEXT = { targetingKey: "user-12345", country: "US", tier: "free", age: 34 };
const BATCH = 1000;

function medianNs(batch, calls) {
  const perCall = [];
  for (let b = 0; b < Math.max(1, Math.floor(calls / BATCH)); b++) {
    const start = process.hrtime.bigint();
    batch();
    perCall.push(Number(process.hrtime.bigint() - start) / BATCH);
  }
  perCall.sort((a, b) => a - b);
  const mid = perCall.length >> 1;
  return perCall.length % 2 ? perCall[mid] : (perCall[mid - 1] + perCall[mid]) / 2;
}

async function main() {
  const calls = Number(process.argv[2] ?? 1_000_000);
  const engine = optifork.Engine.fromRuleset(RULESET);
  const client = new optifork.Client("", "", { offline: true, bootstrap: RULESET });
  if (client.isEnabled("simple", CONTEXT) !== engine.isEnabled("simple", CONTEXT)) { throw new Error("disagreement"); }

  let sink = 0;
  const noop = (flag, context) => flag.length + (context ? 1 : 0);
  const cases = [
    ["Client.isEnabled (bool flag, 3-attribute context)", () => { for (let i = 0; i < BATCH; i++) { if (client.isEnabled("simple", CONTEXT)) { sink++; } } }],
    ["Engine.isEnabled (bool flag, 3-attribute context)", () => { for (let i = 0; i < BATCH; i++) { if (engine.isEnabled("simple", CONTEXT)) { sink++; } } }],
    ["a JS function doing nothing (call overhead)", () => { for (let i = 0; i < BATCH; i++) { sink += noop("simple", CONTEXT); } }],
  ];
  console.log(`Node ${process.version}, median of ${Math.floor(calls / BATCH)} batches of ${BATCH} calls`);
  for (const [name, batch] of cases) {
    medianNs(batch, calls / 10); // warm up
    console.log(`${name.padEnd(55)} ${medianNs(batch, calls).toFixed(1).padStart(8)} ns/call`);
  }
  await client.close();
  if (sink < 0) { console.log(sink); }
}

main().catch((e) => { console.error(e); process.exit(1); });
