#!/usr/bin/env node
// Builds the Node-API addon (the crate optifork-node, napi-rs) with cargo and installs it as
// optifork.node beside index.js. napi-build (build.rs) sets the platform's linker flags.
//
//   node build.js [--release]        (npm run build: --release)
//
// CARGO_TARGET_DIR is honoured. (This is what `napi build` does for a package that loads one
// local binary; it needs nothing from npm.)
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const release = process.argv.includes("--release");
const cargo = process.env.CARGO || "cargo";
execFileSync(cargo, ["build", "-p", "optifork-node", "--locked", ...(release ? ["--release"] : [])], {
  cwd: __dirname,
  stdio: "inherit",
});
const metadata = JSON.parse(execFileSync(cargo, ["metadata", "--format-version", "1", "--no-deps", "--locked"], {
  cwd: __dirname,
  encoding: "utf8",
  maxBuffer: 256 * 1024 * 1024,
}));
const file = { darwin: "liboptifork_node.dylib", win32: "optifork_node.dll" }[process.platform] ?? "liboptifork_node.so";
const built = path.join(metadata.target_directory, release ? "release" : "debug", file);
const dest = path.join(__dirname, "optifork.node");
// Copy then rename: a process that has the old addon loaded keeps its (unlinked) file.
const tmp = `${dest}.${process.pid}.tmp`;
fs.copyFileSync(built, tmp);
fs.renameSync(tmp, dest);
console.log(`built ${path.relative(process.cwd(), dest) || dest} (${release ? "release" : "debug"}) from ${built}`);
