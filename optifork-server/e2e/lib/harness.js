// Starts the real optifork-server binary on an ephemeral port with a temporary SQLite file,
// and drives headless Chromium (Debian's) through playwright-core. Builds nothing itself:
// scripts/e2e.sh builds the server first.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");
const { chromium } = require("playwright-core");

const ADMIN_KEY = "e2e-admin-key-0123456789abcdef";
const REPO = path.resolve(__dirname, "..", "..", "..");
const SCREENSHOTS = path.resolve(__dirname, "..", "screenshots");

function serverBinary() {
  if (process.env.OPTIFORK_SERVER_BIN) { return process.env.OPTIFORK_SERVER_BIN; }
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO, "target");
  return path.join(target, "debug", "optifork-server");
}

/** Starts the server; resolves to { url, stop() }. */
async function startServer() {
  const bin = serverBinary();
  if (!fs.existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: run cargo build -p optifork-server (or set OPTIFORK_SERVER_BIN)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "optifork-e2e-"));
  const env = { ...process.env, OPTIFORK_ADMIN_KEY: ADMIN_KEY };
  delete env.OPTIFORK_INSECURE_DEV_MODE;
  const child = spawn(bin, [
    "--listen", "127.0.0.1:0",
    "--database-url", path.join(dir, "optifork.db"),
    "--rate-limit-api", "1000000",
    "--rate-limit-evaluations", "1000000",
    "--exposure-flush-ms", "50",
    "--log", "warn",
  ], { env, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start within 30 s")), 30000);
    const lines = readline.createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      const m = /^OptiFork listening on (\S+)/.exec(line);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the server exited with ${code}`)); });
  });
  return {
    url,
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

/** Headless Chromium with a fresh profile. */
async function startBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "optifork-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Calls the HTTP API; resolves to { status, body }. */
async function api(base, method, pathname, body, key = ADMIN_KEY) {
  const res = await fetch(base + pathname, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

/** Saves a screenshot of the page into e2e/screenshots/. */
async function shot(page, name, { full = true } = {}) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  // Sticky bars are drawn where the viewport is: capture from the top.
  if (full) { await page.evaluate(() => window.scrollTo(0, 0)); }
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: full });
}

module.exports = { ADMIN_KEY, startServer, startBrowser, api, shot, SCREENSHOTS };
