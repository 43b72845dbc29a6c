#!/usr/bin/env bash
# Builds the Python and Node bindings from source and runs their tests (pytest, node:test)
# against the real optifork-server binary, which it builds too. Needs only the Rust
# toolchain, Python 3.9+ with pip and venv, and Node 20+ with npm; everything else is
# installed into the target directory (a virtualenv) and bindings/node/node_modules.
# scripts/test.sh runs it. Run from anywhere:
#   bash scripts/bindings.sh
# OPTIFORK_BINDINGS_PROFILE=debug builds the bindings without optimizations (quicker; the
# benches in bindings/*/bench.* need the default, release).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

step() { printf '\n==> %s\n' "$*"; }

command -v python3 >/dev/null || { echo "python3 is required (Python 3.9 or newer)" >&2; exit 1; }
command -v node >/dev/null || { echo "node is required (Node.js 20 or newer)" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is required" >&2; exit 1; }

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
mkdir -p "$target_dir"
target_dir="$(cd "$target_dir" && pwd)"
export CARGO_TARGET_DIR="$target_dir"
profile="${OPTIFORK_BINDINGS_PROFILE:-release}"
case "$profile" in
  release) release_flag="--release" ;;
  debug) release_flag="" ;;
  *) echo "OPTIFORK_BINDINGS_PROFILE must be release or debug, not $profile" >&2; exit 1 ;;
esac

step "cargo build -p optifork-server (the tests' server)"
cargo build -p optifork-server --locked
export OPTIFORK_SERVER_BIN="$target_dir/debug/optifork-server"

# --- Python -----------------------------------------------------------------------------------

venv="$target_dir/bindings-venv"
step "Python virtualenv ($venv): maturin, pytest, openfeature-sdk, mypy"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "maturin>=1.9,<2" "pytest>=8" "openfeature-sdk>=0.8" "mypy>=1.10"

step "maturin develop $release_flag (bindings/python → optifork)"
(
  cd bindings/python
  # maturin installs into the active virtualenv; PYO3_PYTHON makes PyO3 build for it.
  VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" PYO3_PYTHON="$venv/bin/python" \
    "$venv/bin/maturin" develop $release_flag --locked
)

step "pytest (bindings/python/tests)"
(cd bindings/python && "$venv/bin/python" -m pytest -q tests)

step "mypy --strict (the package, its stubs and examples/python_example.py)"
(cd bindings/python && "$venv/bin/python" -m mypy --strict python/optifork ../../examples/python_example.py)

# --- Node -------------------------------------------------------------------------------------

step "npm ci (bindings/node)"
(cd bindings/node && npm ci --no-audit --no-fund --loglevel=error)

step "cargo build $release_flag -p optifork-node (bindings/node/build.js → optifork.node)"
(cd bindings/node && node build.js $release_flag)

step "node --test (bindings/node/test)"
(cd bindings/node && node --test --test-concurrency=1 test/*.test.js)

step "tsc --strict (bindings/node/types/usage.ts against the TypeScript definitions)"
(cd bindings/node && npm run --silent typecheck)

printf '\nBindings: all tests passed.\n'
