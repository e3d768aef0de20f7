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
# shellcheck source=dns/pair.sh
. "$top/benches/dns/pair.sh"

# shellcheck source=dns/cpu.sh
. "$top/benches/dns/cpu.sh"

printf "server\tqps\tlost\tcpu_us_per_query\n"
for r in $(seq "$ROUNDS"); do
  one gdnsd-www "$gd" 5303
  one geosteer-www-ecs "$gs" 5310 -E 8:00011800050901
  one geosteer-www "$gs" 5310
done
