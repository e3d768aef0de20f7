#!/usr/bin/env bash
# A query's cost with response rate limiting charging every answer vs off:
# process CPU time per answered query at maximum rate (as dns-cpu.sh
# measures it), two geosteer processes with the shipped bench config
# (benches/dns/geosteer.toml) alternating round by round. The "on" process
# has [server.rrl] with no exempt prefixes (dnsperf sends from loopback,
# exempt by default) and a rate no burst reaches, so every answer is charged
# and none is dropped; the "off" process has enabled = false.
#   benches/rrl-cpu.sh                    # 3 rounds of 10 s each
# Env: ROUNDS=3 DURATION=10
# Needs: apt-get install dnsperf
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10}
run=$(mktemp -d /tmp/geosteer-rrl-cpu.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
[ -x "$bin" ] || cargo build --release --locked --manifest-path "$top/Cargo.toml" >&2
yes "www.example.test A" | head -100000 >"$run/www.txt"

python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)
cp "$top/benches/dns/example.test.zone" "$run/"
sed -e 's|"../../geoip/|"'"$top"'/geoip/|' "$top/benches/dns/geosteer.toml" >"$run/base.toml"
# [server.rrl] goes right after [server]'s keys: before the first other table.
add_rrl() { awk -v rrl="$1" '/^\[zones\]/ && !done { print rrl; done=1 } { print }' "$run/base.toml"; }
add_rrl $'[server.rrl]\nenabled = false\n' >"$run/off.toml"
add_rrl $'[server.rrl]\nexempt = []\nresponses_per_second = 1000000\nwindow = "1s"\n' |
  sed -e 's|127.0.0.1:5310|127.0.0.1:5312|; s|127.0.0.1:8054|127.0.0.1:8056|' >"$run/on.toml"
(cd "$run" && GEOSTEER_LOG=warn exec taskset -c 0 "$bin" serve --config off.toml) >"$run/off.log" 2>&1 & off=$!; pids+=($off)
(cd "$run" && GEOSTEER_LOG=warn exec taskset -c 0 "$bin" serve --config on.toml) >"$run/on.log" 2>&1 & on=$!; pids+=($on)
sleep 4

# shellcheck source=dns/cpu.sh
. "$top/benches/dns/cpu.sh"

printf "server\tqps\tlost\tcpu_us_per_query\n"
for r in $(seq "$ROUNDS"); do
  one rrl-off-ecs "$off" 5310 -E 8:00011800050901
  one rrl-on-ecs "$on" 5312 -E 8:00011800050901
done
dropped=$(curl -sf http://127.0.0.1:8056/metrics | awk '/^geosteer_dns_rrl_dropped_total/ {print $2}')
echo "rrl-on dropped: ${dropped:-?} (must be 0: every answer charged, none over the rate)"
