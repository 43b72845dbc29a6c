#!/usr/bin/env bash
# Load test of optifork-server with wrk (Debian package `wrk`): the figures in BENCHMARKS.md.
#
#   bash benches/load/server-load.sh            # SQLite (default)
#   DATABASE_URL=postgres://... bash benches/load/server-load.sh
#
# Starts a release build on a free port, seeds it, runs each scenario for DURATION seconds
# with CONNECTIONS connections over 2 wrk threads, and prints requests/s and latency
# percentiles. Client and server share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18181}
KEY=load-test-admin-key-0123456789
WORK=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release -q -p optifork-server
DB=${DATABASE_URL:-$WORK/optifork.db}
OPTIFORK_ADMIN_KEY=$KEY ./target/release/optifork-server --listen 127.0.0.1:$PORT \
  --database-url "$DB" --rate-limit-api 0 --log warn >"$WORK/out.txt" 2>"$WORK/err.txt" &
SERVER_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
sleep 2
IDLE_RSS=$(rss_kb)

# Seed: a flag to evaluate, an SDK key, and a 1,000-flag environment.
python3 - "$PORT" "$KEY" >"$WORK/seed.env" <<'PY'
import http.client, json, sys
port, key = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=None):
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data!r}")
    return json.loads(data) if data else None
call("POST", "/flags", {"name": "new_checkout", "is_enabled": True, "rollout_percentage": 50,
                        "targeting_rules": {"country": {"$in": ["US", "CA"]}}})
sdk = call("POST", "/keys", {"name": "load", "scope": "sdk", "environment": "production"})["key"]
call("POST", "/environments", {"name": "big"})
for i in range(1000):
    call("POST", "/flags?environment=big", {
        "name": f"flag_{i}", "description": f"generated flag {i}", "is_enabled": i % 7 != 0,
        "rollout_percentage": i % 100, "tags": ["generated", f"team-{i % 12}"],
        "targeting_rules": {"country": {"$in": ["US", "CA", "GB", "DE"]}},
        "rules": [{"condition": {"plan": "enterprise"}, "serve": {"variant": "on"}}]})
big = call("POST", "/keys", {"name": "load-big", "scope": "sdk", "environment": "big"})["key"]
c.request("GET", "/sdk/v1/ruleset", headers={"Authorization": f"Bearer {sdk}"})
r = c.getresponse(); r.read()
print(f"SDK={sdk}\nBIG={big}\nETAG='{r.getheader('ETag')}'")
PY
source "$WORK/seed.env"

cat >"$WORK/users.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/flags/new_checkout?user_id=user-" .. counter .. "&country=US")
end
LUA

run() { # name, extra wrk args...
  local name=$1; shift
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  local rps p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '| %-48s | %10s | %8s | %8s | %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:+non-2xx/3xx: $non2xx}"
}

URL=http://127.0.0.1:$PORT
echo "storage: $(grep -o 'storage: [a-z]*' "$WORK/out.txt"), connections: $CONNECTIONS, duration: ${DURATION}s"
printf '| %-48s | %10s | %8s | %8s |\n' "scenario" "req/s" "p50" "p99"
run "GET /sdk/v1/ruleset → 304" -H "Authorization: Bearer $SDK" -H "If-None-Match: $ETAG" "$URL/sdk/v1/ruleset"
run "GET /flags/{name}?user_id=… (evaluate + exposure)" -H "Authorization: Bearer $SDK" -s "$WORK/users.lua" "$URL"
run "GET /sdk/v1/ruleset, 1,000 flags, 200 gzip" -H "Authorization: Bearer $BIG" -H "Accept-Encoding: gzip" "$URL/sdk/v1/ruleset"
echo
echo "idle RSS after start: $((IDLE_RSS / 1024)) MB; after the load: $(( $(rss_kb) / 1024 )) MB"
GZ=$(curl -s -H "Authorization: Bearer $BIG" -H "Accept-Encoding: gzip" "$URL/sdk/v1/ruleset" | wc -c)
RAW=$(curl -s -H "Authorization: Bearer $BIG" "$URL/sdk/v1/ruleset" | wc -c)
echo "1,000-flag ruleset: $RAW bytes, $GZ gzipped"
