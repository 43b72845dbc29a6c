#!/usr/bin/env node
// OptiFork from Node: a flag, a remote config and an A/B experiment, against a local server,
// with live updates. The entities are the ones examples/README.md creates (new_checkout,
// checkout_settings, checkout_redesign).
//
//   npm install ./bindings/node             # after `npm run build` there
//   OPTIFORK_URL=http://127.0.0.1:8000 OPTIFORK_SDK_KEY=ofk_... node examples/node_example.js
"use strict";

const path = require("node:path");
// Installed: require("optifork"). Run from the repository: the package's folder.
let optifork;
try { optifork = require("optifork"); } catch { optifork = require(path.join(__dirname, "..", "bindings", "node")); }

const URL = process.env.OPTIFORK_URL ?? "http://127.0.0.1:8000";
const SDK_KEY = process.env.OPTIFORK_SDK_KEY ?? "dev";
const WATCH_MS = Number(process.env.EXAMPLE_WATCH_SECS ?? 0) * 1000;

async function main() {
  // The client keeps the ruleset fresh in the background; close() flushes what is left.
  const client = new optifork.Client(URL, SDK_KEY, { snapshotPath: "/tmp/optifork-node-example.json" });
  try {
    const status = await client.waitUntilReady(5000);
    console.log(`ruleset version ${status.version} from ${status.source}`);

    client.onChange((change) => {
      console.log(`ruleset ${change.version}: flags ${change.flags}, configs ${change.configs}`);
    });

    // A flag: contexts are plain objects; targetingKey (or user_id) identifies the user.
    for (let i = 0; i < 5; i++) {
      const user = { targetingKey: `user-${i}`, country: "US", tier: i % 2 ? "premium" : "free" };
      const d = client.evaluateDetails("new_checkout", user, false);
      console.log(`${user.targetingKey}: new_checkout=${d.value} (${d.reason})`);
    }

    // A remote config, resolved for one user (overrides for premium users merged in).
    console.log("checkout_settings:", client.config("checkout_settings", { targetingKey: "user-1", tier: "premium" }));

    // An experiment: enrolled users are recorded as exposures; purchases are events.
    const enrolled = {};
    for (let i = 0; i < 100; i++) {
      const user = { targetingKey: `user-${i}`, country: "US" };
      const arm = client.assign("checkout_redesign", user);
      if (arm.inExperiment) {
        enrolled[arm.variant] = (enrolled[arm.variant] ?? 0) + 1;
        if (i % 4 === 0) { client.track("purchase", user, 20 + (i % 7)); }
      }
    }
    console.log("enrolled:", enrolled);
    await client.flush(10000);
    console.log("sent:", client.stats().itemsSent, "exposures and events");

    if (WATCH_MS > 0) {
      console.log(`watching for changes for ${WATCH_MS / 1000} s (edit a flag or config now)`);
      await new Promise((r) => setTimeout(r, WATCH_MS));
    }
  } finally {
    await client.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
