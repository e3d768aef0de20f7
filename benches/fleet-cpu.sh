#!/usr/bin/env bash
# A query's cost with [cluster] on vs off: process CPU time per answered
# query at maximum rate (as dns-cpu.sh measures it), two geosteer processes
# with the same config (benches/dns/geosteer.toml), the second one also a
# fleet node on a real etcd, alternating round by round. Server pinned to
# core 0, dnsperf to core 1, loopback only. etcd is off the query path, so
# the two should not differ beyond noise.
#   benches/fleet-cpu.sh                  # 3 rounds of 10 s each
# Env: ROUNDS=3 DURATION=10
# Needs: apt-get install dnsperf etcd-server
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10}
run=$(mktemp -d /tmp/geosteer-fleet-cpu.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
[ -x "$bin" ] || cargo build --release --locked --manifest-path "$top/Cargo.toml" >&2
yes "www.example.test A" | head -100000 >"$run/www.txt"

etcd --data-dir "$run/etcd" --listen-client-urls http://127.0.0.1:23799 \
  --advertise-client-urls http://127.0.0.1:23799 --listen-peer-urls http://127.0.0.1:23809 \
  --initial-advertise-peer-urls http://127.0.0.1:23809 --initial-cluster default=http://127.0.0.1:23809 \
  >"$run/etcd.log" 2>&1 & pids+=($!)
python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)
cp "$top/benches/dns/example.test.zone" "$run/"
sed -e 's|"../../geoip/|"'"$top"'/geoip/|' "$top/benches/dns/geosteer.toml" >"$run/off.toml"
sed -e 's|127.0.0.1:5310|127.0.0.1:5311|; s|127.0.0.1:8054|127.0.0.1:8055|' "$run/off.toml" >"$run/on.toml"
printf '\n[cluster]\netcd = ["http://127.0.0.1:23799"]\nnode = "bench"\nprefix = "/fleet-cpu"\n' >>"$run/on.toml"
sleep 2
(cd "$run" && GEOSTEER_LOG=warn exec taskset -c 0 "$bin" serve --config off.toml) >"$run/off.log" 2>&1 & off=$!; pids+=($off)
(cd "$run" && GEOSTEER_LOG=warn exec taskset -c 0 "$bin" serve --config on.toml) >"$run/on.log" 2>&1 & on=$!; pids+=($on)
sleep 5
curl -sf http://127.0.0.1:8055/api/v1/cluster | grep -q '"connected":true' || { echo "the fleet node is not connected to etcd" >&2; cat "$run/on.log" >&2; exit 1; }

# shellcheck source=dns/cpu.sh
. "$top/benches/dns/cpu.sh"

printf "server\tqps\tlost\tcpu_us_per_query\n"
for r in $(seq "$ROUNDS"); do
  one cluster-off-ecs "$off" 5310 -E 8:00011800050901
  one cluster-on-ecs "$on" 5311 -E 8:00011800050901
done
