#!/usr/bin/env bash
# Process CPU time per answered query with a valid DNS cookie against the
# same query without one, alternating (benches/dns-cpu.sh's method:
# /proc/PID/stat around each dnsperf run, server on core 0, dnsperf on core
# 1, loopback only). Goal: the valid cookie within 3 % of none.
#   benches/cookies-cpu.sh
# Env: ROUNDS=5 DURATION=10
# Rows: www A with EDNS and no cookie; www A with a valid server cookie
# (learned with dig from 127.0.0.1 first, sent back unchanged: the server
# checks it, one SipHash, and echoes it); www A with a client cookie alone
# (a fresh server cookie made per query).
# Needs: apt-get install dnsperf bind9-dnsutils (and ../shared/bench/dns/hc-listener.py).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
ROUNDS=${ROUNDS:-5}; DURATION=${DURATION:-10}
run=$(mktemp -d /tmp/geosteer-cookies-cpu.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
yes "www.example.test A" | head -100000 >"$run/www.txt"
python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)

cp "$top/benches/dns/example.test.zone" "$run/"
sed -e "s|127.0.0.1:5310|127.0.0.1:5313|" -e "s|127.0.0.1:8054|127.0.0.1:8057|" \
  -e "s|\.\./\.\./geoip/|$top/geoip/|" \
  -e "s|^udp_workers = 1|udp_workers = 1\ncookie_secret = \"e5e973e5a6b2a43f48e7dc849e37bfcf\"|" \
  "$top/benches/dns/geosteer.toml" >"$run/geosteer.toml"
(cd "$run" && GEOSTEER_LOG=warn exec taskset -c 0 "$bin" serve --config geosteer.toml) >"$run/log" 2>&1 &
gs=$!; pids+=("$gs")
sleep 4

# shellcheck source=dns/cpu.sh
. "$top/benches/dns/cpu.sh"
# A cookie the server made for 127.0.0.1 (fresh for half an hour: enough
# for ROUNDS × 3 × (DURATION + 2) s up to ROUNDS=5, DURATION=60).
cookie() {
  dig @127.0.0.1 -p 5313 -b 127.0.0.1 +cookie www.example.test A | awk '/^; COOKIE:/ {print $3}'
}
printf "server\tqps\tlost\tcpu_us_per_query\n"
for r in $(seq "$ROUNDS"); do
  full=$(cookie)
  [ ${#full} -eq 48 ] || { echo "no cookie from the server: '$full'" >&2; exit 1; }
  one no-cookie "$gs" 5313 -e
  one valid-cookie "$gs" 5313 -E "10:$full"
  one client-cookie "$gs" 5313 -E "10:${full:0:16}"
done
