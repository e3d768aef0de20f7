#!/usr/bin/env bash
# Latency at a fixed rate, geosteer and gdnsd alternating (A/B/A/B...) so
# that drift on the host hits both alike: p50/p99/p99.9 of dnsperf's
# per-query latencies at RATE QPS. Server pinned to core 0, dnsperf to core 1,
# loopback only.
#   benches/dns-p99.sh                    # 5 rounds of 10 s at 20,000 QPS
# Env: ROUNDS=5 DURATION=10 RATE=20000
# Rows: gdnsd www (its geoip name), geosteer www (geo decision on the
# 127.0.0.1 source), geosteer www with ECS 5.9.1.0/24.
# Needs: apt-get install dnsperf gdnsd (see ../shared/bench/README.md).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
ROUNDS=${ROUNDS:-5}; DURATION=${DURATION:-10}; RATE=${RATE:-20000}
run=$(mktemp -d /tmp/geosteer-dns-p99.XXXXXX)
# shellcheck source=dns/pair.sh
. "$top/benches/dns/pair.sh"

one() {  # one LABEL PORT [dnsperf options]
  local label=$1 port=$2; shift 2
  local out="$run/out.txt"
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$run/www.txt" -l "$DURATION" \
    -Q "$RATE" -c 10 -T 1 -q 500 -t 1 -v "$@" >"$out" 2>&1
  local lost; lost=$(awk '/Queries lost/ {print $3}' "$out")
  awk '$1==">" {print $NF}' "$out" | sort -g | awk -v l="$label" -v lost="$lost" \
    '{v[NR]=$1} END { n=NR; if (n==0) { print l "\tNA"; exit }
      i50=int(n*0.50); i99=int(n*0.99); i999=int(n*0.999);
      printf "%s\t%d\t%s\t%.3f\t%.3f\t%.3f\n", l, n, lost, 1000*v[i50], 1000*v[i99], 1000*v[i999] }'
}

printf "server\tanswers\tlost\tp50_ms\tp99_ms\tp999_ms\n"
for r in $(seq "$ROUNDS"); do
  one gdnsd-www 5303
  one geosteer-www 5310
  one geosteer-www-ecs 5310 -E 8:00011800050901
done
