#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests. README.md documents this
# command and .ci/run calls it. Run from anywhere: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets and features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo test (workspace, doctests included)"
cargo test --workspace --all-features --locked --no-fail-fast

step "Python and Node bindings (scripts/bindings.sh)"
bash scripts/bindings.sh

step "admin UI in headless Chromium (scripts/e2e.sh)"
bash scripts/e2e.sh

printf '\nAll tests passed.\n'
