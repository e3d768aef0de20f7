#!/usr/bin/env bash
# Process CPU time per answered query of two geosteer binaries on the same
# config, alternating A/B/A/B... (benches/dns-cpu.sh's method: /proc/PID/stat
# around each dnsperf run, server on core 0, dnsperf on core 1, loopback
# only). For "this change costs no more than N % per query".
#   BEFORE=/path/to/old/geosteer AFTER=target/release/geosteer benches/ab-cpu.sh
# Env: ROUNDS=5 DURATION=10
# Rows: www A with ECS 5.9.1.0/24 (geo by country), www A without ECS.
# Needs: apt-get install dnsperf (and ../shared/bench/dns/hc-listener.py).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
: "${BEFORE:?set BEFORE to the old binary}"
AFTER=${AFTER:-${CARGO_TARGET_DIR:-$top/target}/release/geosteer}
ROUNDS=${ROUNDS:-5}; DURATION=${DURATION:-10}
run=$(mktemp -d /tmp/geosteer-ab-cpu.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
yes "www.example.test A" | head -100000 >"$run/www.txt"
python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)

# One config folder per binary: the bench config with its own ports.
start() {  # start NAME BINARY DNS_PORT ADMIN_PORT: sets $started to the PID
  local dir="$run/$1"
  mkdir -p "$dir"
  cp "$top/benches/dns/example.test.zone" "$dir/"
  sed -e "s|127.0.0.1:5310|127.0.0.1:$3|" -e "s|127.0.0.1:8054|127.0.0.1:$4|" \
    -e "s|\.\./\.\./geoip/|$top/geoip/|" "$top/benches/dns/geosteer.toml" >"$dir/geosteer.toml"
  (cd "$dir" && GEOSTEER_LOG=warn exec taskset -c 0 "$2" serve --config geosteer.toml) >"$dir/log" 2>&1 &
  started=$!
  pids+=("$started")
}
start before "$BEFORE" 5311 8055; b=$started
start after "$AFTER" 5312 8056; a=$started
sleep 4

# shellcheck source=dns/cpu.sh
. "$top/benches/dns/cpu.sh"
printf "server\tqps\tlost\tcpu_us_per_query\n"
for r in $(seq "$ROUNDS"); do
  one before-www-ecs "$b" 5311 -E 8:00011800050901
  one after-www-ecs "$a" 5312 -E 8:00011800050901
  one before-www "$b" 5311
  one after-www "$a" 5312
done
