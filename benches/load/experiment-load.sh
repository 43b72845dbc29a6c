#!/usr/bin/env bash
# Experiment ingestion and results on PostgreSQL (BENCHMARKS.md): a release server on a fresh
# database; 1M exposures and 1M events through the SDK ingestion API; results timed.
#
#   bash benches/load/experiment-load.sh                  (PostgreSQL)
#   DATABASE=sqlite bash benches/load/experiment-load.sh  (SQLite, for comparison)
set -euo pipefail
cd "$(dirname "$0")/../.."
PG=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=optifork_bench_$$
KEY=experiment-load-admin-key-0123
PORT=${PORT:-18301}
WORK=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  [ -n "${KEEP_DB:-}" ] && echo "kept database $DB" || psql "$PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cargo build --release -q -p optifork-server -p optifork-benches --bins
if [ "${DATABASE:-postgres}" = sqlite ]; then
  URL=$WORK/optifork.db
else
  psql "$PG" -qc "CREATE DATABASE $DB" >/dev/null
  URL="${PG%/*}/$DB"
fi
OPTIFORK_ADMIN_KEY=$KEY ./target/release/optifork-server --listen 127.0.0.1:$PORT --database-url "$URL" \
  --rate-limit-api 0 --log warn,warp::server=off >"$WORK/out" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
SDK=$(curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"name":"bench","scope":"sdk","environment":"production"}' "http://127.0.0.1:$PORT/keys" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
./target/release/experiment-load --server "127.0.0.1:$PORT" --admin-key "$KEY" --sdk-key "$SDK" \
  --exposures "${EXPOSURES:-1000000}" --events "${EVENTS:-1000000}" --batch 5000 --concurrency 4
