#!/usr/bin/env bash
# SSE propagation across replicas (BENCHMARKS.md): PostgreSQL + a private Redis + two release
# replicas; 1,000 stream clients on replica B, writes through replica A; then 10,000 idle
# streams on one replica for memory per connection.
#
#   bash benches/load/sse-fanout.sh            (PostgreSQL at 127.0.0.1:5432, user postgres)
set -euo pipefail
cd "$(dirname "$0")/../.."
PG=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=optifork_bench_$$
KEY=fanout-admin-key-0123456789
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  psql "$PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p optifork-server -p optifork-benches --bins
psql "$PG" -qc "CREATE DATABASE $DB" >/dev/null
DB_URL="${PG%/*}/$DB"
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >/dev/null &
PIDS+=($!)

start_replica() { # port
  OPTIFORK_ADMIN_KEY=$KEY ./target/release/optifork-server --listen "127.0.0.1:$1" \
    --database-url "$DB_URL" --redis-url "redis://127.0.0.1:$REDIS_PORT/" --redis-prefix bench \
    --rate-limit-api 0 --rate-limit-evaluations 0 --log warn,warp::server=off >"$WORK/out-$1" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.1; done
  echo "replica on $1 did not start" >&2; cat "$WORK/out-$1" >&2; exit 1
}
A=18201; B=18202
start_replica $A
start_replica $B
SDK=$(curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"name":"fanout","scope":"sdk","environment":"production"}' "http://127.0.0.1:$A/keys" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
sleep 2.5 # B learns about the key (Redis, or its database poll)

echo "== 1,000 stream clients on B, 20 writes through A"
./target/release/sse-fanout --writer "http://127.0.0.1:$A" --reader "http://127.0.0.1:$B" \
  --admin-key "$KEY" --sdk-key "$SDK" --clients 1000 --writes 20
echo
echo "== 10,000 idle stream clients on A"
./target/release/sse-fanout --writer "http://127.0.0.1:$A" --reader "http://127.0.0.1:$A" \
  --admin-key "$KEY" --sdk-key "$SDK" --clients 10000 --writes 3
