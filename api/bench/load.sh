#!/usr/bin/env bash
# Load test of the dashboard API on loopback (bounded: each wrk run lasts DURATION seconds).
#
#   api/bench/load.sh [path/to/pulso-flow]     # default: the release binary
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), Redis on 127.0.0.1:6379 and wrk
# (`apt-get install -y wrk`). Creates the database pfapi_bench with the demo loaded, then runs:
#   1. a cached dashboard query (memory hit) — client-side latency from wrk, server-side from the
#      API's own histogram (http_request_duration_seconds);
#   2. an uncached dashboard query (in-process cache disabled, no Redis: every request queries
#      PostgreSQL; concurrent identical requests still coalesce, so the URL varies).
set -euo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/pulso-flow/target-release}/release/pulso-flow}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${PORT:-18080}
DURATION=${DURATION:-15}
CONNS=${CONNS:-32}
DB=postgres://postgres@127.0.0.1:5432/pfapi_bench
OUT=${OUT:-/tmp/pfapi-bench}
mkdir -p "$OUT"

psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS pfapi_bench WITH (FORCE)" \
     -c "CREATE DATABASE pfapi_bench"
DATABASE_URL=$DB "$BIN" run "$ROOT/examples/demo.yaml" --summary json > "$OUT/load.json"

server() { # $1 = extra env assignments
  # A server left on the port (e.g. by a profiling session) would answer instead of this one.
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/health"; then
    echo "port $PORT already answers: stop that server first (or set PORT)" >&2; exit 1
  fi
  env DATABASE_URL=$DB PULSO_API_BIND=127.0.0.1:$PORT PULSO_LOG=warn \
      PULSO_API_PIPELINE="$ROOT/examples/demo.yaml" "$@" "$BIN" serve &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
stop() { kill -TERM "$SERVER"; wait "$SERVER" || true; }

# Server-side quantiles of one endpoint from the Prometheus histogram (upper bucket bounds).
quantiles() {
  curl -s "http://127.0.0.1:$PORT/metrics" | python3 -c '
import sys, re
b = {}
for line in sys.stdin:
    m = re.match(r"http_request_duration_seconds_bucket\{endpoint=\"/api/v1/dashboard\",method=\"GET\",le=\"([^\"]+)\"\} (\d+)", line)
    if m: b[float(m.group(1))] = int(m.group(2))
total = b[float("inf")]
def q(p):
    for le in sorted(b):
        if b[le] >= p * total: return le
print(f"server-side: {total} requests; p50 <= {q(0.5)*1000:g} ms; p99 <= {q(0.99)*1000:g} ms; p99.9 <= {q(0.999)*1000:g} ms; share under 1 ms: {b[0.001]/total*100:.3f}%")
'
}

echo "== cached: memory hit (Redis on, access log off) =="
server REDIS_URL=redis://127.0.0.1:6379 PULSO_API_REDIS_PREFIX=pfapibench$$ PULSO_API_ACCESS_LOG=false
URL="http://127.0.0.1:$PORT/api/v1/dashboard?fechaCorte=2025-06-20&cartera=TEMPRANA,OTRAS"
curl -s "$URL" -o "$OUT/cached.json"
wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL" | tee "$OUT/cached.txt"
quantiles | tee -a "$OUT/cached.txt"
stop

echo "== cached, with the structured access log on (stderr to /dev/null) =="
server REDIS_URL=redis://127.0.0.1:6379 PULSO_API_REDIS_PREFIX=pfapibench$$ PULSO_API_ACCESS_LOG=true PULSO_LOG=info 2>/dev/null
curl -s "$URL" >/dev/null
wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL" | tee "$OUT/cached_log.txt"
quantiles | tee -a "$OUT/cached_log.txt"
stop

echo "== uncached: every request queries PostgreSQL =="
server PULSO_API_CACHE_MAX_BYTES=0 PULSO_API_ACCESS_LOG=false
cat > "$OUT/vary.lua" <<'LUA'
-- Cycle through photo dates and groupings so concurrent requests rarely share a key.
local dates = {"2025-06-10","2025-06-11","2025-06-12","2025-06-13","2025-06-16","2025-06-17",
               "2025-06-18","2025-06-19","2025-06-20","2025-06-23","2025-06-24","2025-06-25"}
local dims = {"", "&dimensions=tramo", "&dimensions=cartera,servicio", "&dimensions=rangoDeuda,tramo"}
local n = 0
request = function()
  n = n + 1
  local path = "/api/v1/dashboard?fechaCorte=" .. dates[(n % #dates) + 1] .. dims[(math.floor(n / #dates) % #dims) + 1]
  return wrk.format("GET", path)
end
LUA
wrk -t1 -c8 -d"${DURATION}s" --latency -s "$OUT/vary.lua" "http://127.0.0.1:$PORT" | tee "$OUT/uncached.txt"
quantiles | tee -a "$OUT/uncached.txt"
stop
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS pfapi_bench WITH (FORCE)"
