#!/usr/bin/env bash
# Scale with config (issue 4, item 3): generates the large config (10,000
# balanced names, 1,000 pools, 20,000 endpoints, 1,000,000 subnet prefixes),
# times `geosteer check` and the load inside `serve`, and measures DNS latency
# at a fixed rate with and without a reload of that config in the middle.
#
#     benches/scale.sh                      # release build, then the runs
#     RATE=20000 DURATION=20 PORT=15353 OUT=/tmp/geosteer-scale benches/scale.sh
#
# Needs python3, dnsperf, dig, curl and /usr/bin/time. Every step has a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-/tmp/geosteer-scale}
PORT=${PORT:-15353}
ADMIN=${ADMIN:-15354}
RATE=${RATE:-20000}
DURATION=${DURATION:-20}
RELOAD_AT=${RELOAD_AT:-8}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/geosteer
# The geo name with the million-prefix map, asked with an ECS subnet that one
# of the prefixes holds (1.0.16.0/24): family 1, source /24, 1.0.16.
QNAME=www.example.test
ECS=8:00011800010010

log() { echo "== $*" >&2; }
mkdir -p "$OUT"

log "generating the config in $OUT/config"
timeout 300 python3 benches/gen-large-config.py "$OUT/config" --port "$PORT" --admin-port "$ADMIN" >&2
CONFIG=$OUT/config/geosteer.toml
SIZE_MB=$(( $(stat -c %s "$CONFIG") / 1000000 ))

log "building release"
timeout 1800 cargo build --release --quiet

# wall seconds and peak RSS (MiB) from /usr/bin/time -v output
wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; printf "%.2f", s}' "$1"; }
rss() { awk '/Maximum resident set size/{printf "%.0f", $6/1024}' "$1"; }

log "geosteer check"
timeout 120 /usr/bin/time -v "$BIN" check --config "$CONFIG" >"$OUT/check.out" 2>"$OUT/check.time"
tail -1 "$OUT/check.out" >&2
CHECK_S=$(wall "$OUT/check.time"); CHECK_RSS=$(rss "$OUT/check.time")

pctl() {  # latencies (s) on stdin -> "p50 p99 max" in ms
  sort -g | awk '{v[NR]=$1} END { if (NR==0) { print "NA NA NA"; exit }
    n=NR; i50=int(n*0.50); i99=int(n*0.99); if(i50<1)i50=1; if(i99<1)i99=1;
    printf "%.3f %.3f %.3f\n", 1000*v[i50], 1000*v[i99], 1000*v[n] }'
}

SERVE_PID=
# SERVE_PID is /usr/bin/time's; signals go to geosteer, its child.
serve_child() { pgrep -P "$SERVE_PID" geosteer || true; }
cleanup() { if [ -n "$SERVE_PID" ]; then kill "$(serve_child)" "$SERVE_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

log "geosteer serve"
START=$(date +%s.%N)
/usr/bin/time -v "$BIN" serve --config "$CONFIG" --log-format json >"$OUT/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 600); do
  if dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" "$QNAME" A >/dev/null 2>&1 \
     && [ -n "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" "$QNAME" A)" ]; then break; fi
  sleep 0.05
done
READY_S=$(echo "$(date +%s.%N) - $START" | bc -l | xargs printf "%.2f")
LOAD_MS=$(grep -m1 'config loaded' "$OUT/serve.log" | sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p')
log "serving after ${READY_S}s (load ${LOAD_MS} ms): $(dig +short @127.0.0.1 -p "$PORT" "$QNAME" A | tr '\n' ' ')"

{ yes "$QNAME A" || true; } | head -200000 >"$OUT/queries.txt"
run() {  # run LABEL [reload]
  local f=$OUT/dnsperf-$1.txt
  if [ "${2:-}" = reload ]; then
    ( sleep "$RELOAD_AT"
      local t0; t0=$(date +%s.%N)
      curl -s -m 60 -X POST "http://127.0.0.1:$ADMIN/api/v1/reload" >"$OUT/reload.json"
      echo "$(date +%s.%N) - $t0" | bc -l | xargs printf "%.2f" >"$OUT/reload.seconds" ) &
  fi
  timeout $((DURATION + 30)) dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/queries.txt" -l "$DURATION" \
    -Q "$RATE" -c 10 -T 1 -q 500 -t 1 -e -E "$ECS" -v >"$f" 2>&1 || true
  wait
  local qps lost
  qps=$(awk '/Queries per second/{printf "%.0f", $4}' "$f")
  lost=$(awk '/Queries lost/{print $3}' "$f")
  echo "$qps $lost $(awk '$1==">" {print $NF}' "$f" | pctl)"
  gzip -f "$f"
}

log "dnsperf ${DURATION}s at $RATE QPS, no reload"
read -r Q1 L1 P50_1 P99_1 MAX_1 < <(run steady)
log "dnsperf ${DURATION}s at $RATE QPS, reload at ${RELOAD_AT}s"
read -r Q2 L2 P50_2 P99_2 MAX_2 < <(run reload reload)
RELOAD_S=$(cat "$OUT/reload.seconds" 2>/dev/null || echo NA)
grep -q '"reloaded":true' "$OUT/reload.json" 2>/dev/null || log "reload answered: $(head -c 300 "$OUT/reload.json")"
RELOAD_MS=$(grep 'new config loaded' "$OUT/serve.log" | tail -1 | sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p')

kill -TERM "$(serve_child)"; timeout 60 tail --pid="$SERVE_PID" -f /dev/null || true; SERVE_PID=
SERVE_RSS=$(awk '/Maximum resident set size/{printf "%.0f", $6/1024}' "$OUT/serve.log")

cat <<EOF

geosteer scale with config: $(grep -c '^\[\[balance\]\]' "$CONFIG") names, $(grep -c '^\[pools\.' "$CONFIG") pools, ${SIZE_MB} MB of TOML, 1,000,000 subnet prefixes

| what | result |
|---|---|
| \`geosteer check\` | ${CHECK_S} s, peak RSS ${CHECK_RSS} MiB |
| load inside \`serve\` (parse, validate, zones, compile) | ${LOAD_MS} ms |
| \`serve\` start to first answer | ${READY_S} s |
| reload (POST /api/v1/reload round trip; load ${RELOAD_MS} ms) | ${RELOAD_S} s |
| \`serve\` peak RSS (incl. the reload) | ${SERVE_RSS} MiB |

| ${DURATION} s at ${RATE} QPS, $QNAME A + ECS | QPS | lost | p50 ms | p99 ms | max ms |
|---|---|---|---|---|---|
| no reload | $Q1 | $L1 | $P50_1 | $P99_1 | $MAX_1 |
| reload at ${RELOAD_AT} s | $Q2 | $L2 | $P50_2 | $P99_2 | $MAX_2 |
EOF
