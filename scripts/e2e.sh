#!/usr/bin/env bash
# End-to-end tests of the admin UI in headless Chromium: installs Chromium (Debian's) if it
# is missing and the e2e package's dependencies (npm ci), builds the server, and runs the
# node:test suite in optifork-server/e2e against the real binary. Screenshots of every main
# page are written to optifork-server/e2e/screenshots/. Run from anywhere:
#   bash scripts/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x /usr/bin/chromium ]; then
  step "installing Chromium"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null || { echo "node is required (Node.js 20 or newer)" >&2; exit 1; }

step "npm ci (optifork-server/e2e)"
(cd optifork-server/e2e && npm ci --no-audit --no-fund --loglevel=error)

step "cargo build -p optifork-server"
cargo build -p optifork-server --locked

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export OPTIFORK_SERVER_BIN="${OPTIFORK_SERVER_BIN:-$target_dir/debug/optifork-server}"

step "end-to-end tests (headless Chromium)"
rm -rf optifork-server/e2e/screenshots
(cd optifork-server/e2e && node --test --test-concurrency=1 tests/)
printf '\nScreenshots: optifork-server/e2e/screenshots/\n'
