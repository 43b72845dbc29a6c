// Test harness: the real optifork-server binary on an ephemeral port with a temporary SQLite
// file, a fresh environment and SDK key per test, and a small admin API client. No mocks.
//
// The binary is $OPTIFORK_SERVER_BIN, else $CARGO_TARGET_DIR/debug/optifork-server (target/
// by default), built with `cargo build -p optifork-server` if missing.
"use strict";

const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");

const ADMIN_KEY = "node-test-admin-key-0123456789";
const REPO = path.resolve(__dirname, "..", "..", "..");
const VECTORS = path.join(REPO, "optifork-core", "tests", "vectors");

function serverBinary() {
  if (process.env.OPTIFORK_SERVER_BIN) { return process.env.OPTIFORK_SERVER_BIN; }
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO, "target");
  const bin = path.join(target, "debug", "optifork-server");
  if (!fs.existsSync(bin)) {
    const r = spawnSync("cargo", ["build", "-p", "optifork-server"], {
      cwd: REPO, stdio: "inherit", env: { ...process.env, CARGO_TARGET_DIR: target },
    });
    if (r.status !== 0) { throw new Error("cargo build -p optifork-server failed"); }
  }
  return bin;
}

/** Starts a server; resolves to { url, api(), ok(), newEnv(), stop() }. */
async function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "optifork-node-"));
  const env = { ...process.env, OPTIFORK_ADMIN_KEY: ADMIN_KEY };
  delete env.OPTIFORK_INSECURE_DEV_MODE;
  const child = spawn(serverBinary(), [
    "--listen", "127.0.0.1:0",
    "--database-url", path.join(dir, "optifork.db"),
    "--rate-limit-api", "1000000",
    "--rate-limit-evaluations", "1000000",
    "--exposure-flush-ms", "20",
    "--log", "warn,warp::server=off",
  ], { env, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start within 30 s")), 30000);
    const lines = readline.createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      const m = /^OptiFork listening on (\S+)/.exec(line);
      if (m) { clearTimeout(timer); resolve(m[1].replace(/\/$/, "")); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the server exited with ${code}`)); });
  });
  let names = 0;

  async function api(method, pathname, body, key = ADMIN_KEY) {
    const res = await fetch(url + pathname, {
      method,
      headers: { Authorization: `Bearer ${key}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: res.status, body: json };
  }

  async function ok(method, pathname, body) {
    const r = await api(method, pathname, body);
    if (r.status < 200 || r.status >= 300) {
      throw new Error(`${method} ${pathname} answered ${r.status}: ${JSON.stringify(r.body)}`);
    }
    return r.body;
  }

  /** A fresh environment with its own SDK key: tests do not see each other's flags. */
  async function newEnv() {
    const name = `env_${process.pid}_${names++}`;
    await ok("POST", "/environments", { name });
    const key = await ok("POST", "/keys", { name, scope: "sdk", environment: name });
    const scoped = (method, pathname, body) =>
      ok(method, `${pathname}${pathname.includes("?") ? "&" : "?"}environment=${name}`, body);
    return {
      name,
      url,
      sdkKey: key.key,
      ok: scoped,
      create: (kind, body) => scoped("POST", `/${kind}`, body),
    };
  }

  return {
    url,
    api,
    ok,
    newEnv,
    async stop() {
      if (child.exitCode === null) {
        const done = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await done;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An address nothing listens on. */
async function deadUrl() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

/** Polls `check` every 20 ms until it holds, for at most `withinMs`. */
async function waitFor(check, what = "condition", withinMs = 10000) {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) { throw new Error(`not within ${withinMs} ms: ${what}`); }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function loadVectors(name) {
  return JSON.parse(fs.readFileSync(path.join(VECTORS, name), "utf8"));
}

/** JSON text with sorted keys: tells true from 1 and 10 from 10.5, so agreement is exact. */
function canonical(value) {
  const sort = (v) => {
    if (Array.isArray(v)) { return v.map(sort); }
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]));
    }
    return v;
  };
  return JSON.stringify(sort(value === undefined ? null : value));
}

module.exports = { ADMIN_KEY, REPO, startServer, deadUrl, waitFor, loadVectors, canonical };
