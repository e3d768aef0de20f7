#!/usr/bin/env bash
# geosteer's UDP path under load, beyond the peer table of dns-peers.sh:
#  1. lossless: 30 s at 80 % of the measured maximum rate, www with ECS:
#     queries lost must be 0;
#  2. cores: maximum rate with 1 UDP worker (server on core 0) and with 2
#     workers (server on cores 0-1, sharing core 1 with dnsperf).
# Loopback only; needs dnsperf. Server CPU per query from /proc/PID/stat.
#   benches/dns-load.sh            Env: DURATION=10 LOSSLESS=30
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
DURATION=${DURATION:-10}; LOSSLESS=${LOSSLESS:-30}
run=$(mktemp -d /tmp/geosteer-dns-load.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
[ -x "$bin" ] || cargo build --release --locked --manifest-path "$top/Cargo.toml" >&2
python3 "$bench/dns/hc-listener.py" >/dev/null 2>&1 & pids+=($!)
awk 'BEGIN { for (i = 0; i < 100000; i++) print "www.example.test A" }' >"$run/www.txt"
ECS="-E 8:00011800050901"   # 5.9.1.0/24
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

serve() {  # serve WORKERS CPUS -> sets GS
  if ss -lnu | grep -q "127.0.0.1:5310 "; then echo "udp/5310 already in use -- refusing" >&2; exit 1; fi
  sed "s/^udp_workers = .*/udp_workers = $1/" "$top/benches/dns/geosteer.toml" >"$run/geosteer.toml"
  sed -i "s#\"example.test.zone\"#\"$top/benches/dns/example.test.zone\"#; s#\"../../geoip/#\"$top/geoip/#" "$run/geosteer.toml"
  GEOSTEER_LOG=warn taskset -c "$2" "$bin" serve --config "$run/geosteer.toml" >"$run/gs.log" 2>&1 &
  GS=$!; pids+=("$GS")
  for _ in $(seq 100); do dig +short +time=1 @127.0.0.1 -p 5310 static.example.test >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 3  # monitors settle
}

measure() {  # measure LABEL DNSPERF-ARGS... -> prints qps, lost, cpu µs/query
  local label=$1; shift
  local a b out
  a=$(ticks "$GS")
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p 5310 -d "$run/www.txt" "$@" 2>&1)
  b=$(ticks "$GS")
  local qps lost done_ avg
  qps=$(awk '/Queries per second/{printf "%.0f", $4}' <<<"$out")
  lost=$(awk '/Queries lost/{print $3}' <<<"$out")
  done_=$(awk '/Queries completed/{print $3}' <<<"$out")
  avg=$(awk '/Average Latency/{printf "%.3f", $4*1000}' <<<"$out")
  printf "%s\t%s\t%s\t%s\t%.2f\n" "$label" "$qps" "$lost" "$avg" \
    "$(awk -v t=$((b - a)) -v hz="$(getconf CLK_TCK)" -v n="$done_" 'BEGIN{print t / hz * 1e6 / n}')"
  LAST_QPS=$qps
}

printf "run\tqps\tlost\tavg_ms\tcpu_us_per_query\n"
serve 1 0
measure "1 worker, max, ECS" -l "$DURATION" -c 10 -T 1 -q 500 -t 1 $ECS
max=$LAST_QPS
rate=$((max * 8 / 10))
measure "1 worker, ${rate} qps (80 %) for ${LOSSLESS} s, ECS" -l "$LOSSLESS" -Q "$rate" -c 10 -T 1 -q 500 -t 1 $ECS
kill "$GS"; wait "$GS" 2>/dev/null || true
sleep 0.5
serve 2 0,1
measure "2 workers on cores 0-1 (dnsperf shares core 1), max, ECS" -l "$DURATION" -c 10 -T 1 -q 500 -t 1 $ECS
