#!/usr/bin/env bash
# Process CPU time per answered query at maximum rate, geosteer and gdnsd
# alternating (A/B/A/B...), read from /proc/PID/stat around each dnsperf run:
# unlike the core-busy figure of dns-peers.sh, other work on the core does not
# count. Server pinned to core 0, dnsperf to core 1, loopback only.
#   benches/dns-cpu.sh                    # 3 rounds of 10 s each
# Env: ROUNDS=3 DURATION=10
# Rows: gdnsd www (its geoip name, no ECS), geosteer www with ECS 5.9.1.0/24
# (looked up in the shipped country database), geosteer www without ECS.
# Needs: apt-get install dnsperf gdnsd (see ../shared/bench/README.md).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10}
run=$(mktemp -d /tmp/geosteer-dns-cpu.XXXXXX)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# shellcheck source=dns/pair.sh
. "$top/benches/dns/pair.sh"

one() {  # one LABEL PID PORT [dnsperf options]
  local label=$1 pid=$2 port=$3; shift 3
  local before after out qps
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$run/www.txt" -l 2 -c 10 -T 1 -q 500 -t 1 "$@" >/dev/null 2>&1
  before=$(ticks "$pid")
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$run/www.txt" -l "$DURATION" -c 10 -T 1 -q 500 -t 1 "$@" 2>&1)
  after=$(ticks "$pid")
  qps=$(echo "$out" | awk '/Queries per second/ {print $4}')
  lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
  python3 -c "q=$qps; t=($after-$before)/$hz; print(f'$label\t{q:.0f}\t$lost\t{t*1e6/(q*$DURATION):.2f}')"
}

printf "server\tqps\tlost\tcpu_us_per_query\n"
for r in $(seq "$ROUNDS"); do
  one gdnsd-www "$gd" 5303
  one geosteer-www-ecs "$gs" 5310 -E 8:00011800050901
  one geosteer-www "$gs" 5310
done
