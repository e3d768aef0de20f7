#!/usr/bin/env bash
# Process CPU time per answered query of a CNAME answer and of a two-step
# CNAME chain against today's A answer, alternating (benches/dns-cpu.sh's
# method: /proc/PID/stat around each dnsperf run, server on core 0, dnsperf
# on core 1, loopback only). Goals: a CNAME answer within 1.1x of an A
# answer, a chain within 1.5x.
#   benches/cname-cpu.sh
# Env: ROUNDS=3 DURATION=10 BIN=path/to/geosteer (default: the release build)
# Rows: www A (geo over three pools, an address answer); cdn A (geo over a
# pool of one CNAME endpoint out of our names: the CNAME alone); chain A
# (geo to a CNAME endpoint whose target is www: CNAME + www's A, two
# decisions). All without ECS (the packet source, 127.0.0.1, decides).
# Needs: apt-get install dnsperf (and ../shared/bench/dns/hc-listener.py).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${BIN:-${CARGO_TARGET_DIR:-$top/target}/release/geosteer}
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10}
run=$(mktemp -d /tmp/geosteer-cname-cpu.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
for q in www cdn chain; do
  yes "$q.example.test A" | head -100000 >"$run/$q.txt"
done
python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)

cp "$top/benches/dns/example.test.zone" "$run/"
sed -e "s|127.0.0.1:5310|127.0.0.1:5314|" -e "s|127.0.0.1:8054|127.0.0.1:8058|" \
  -e "s|\.\./\.\./geoip/|$top/geoip/|" \
  "$top/benches/dns/geosteer.toml" >"$run/geosteer.toml"
cat >>"$run/geosteer.toml" <<'TOML'

[pools.cdn]
endpoints = [{ cname = "www.cdn-a.example.net" }]
[pools.to-www]
endpoints = [{ cname = "www.example.test" }]

[[balance]]
name = "cdn.example.test"
policy = "geo"
pools = ["cdn"]
ttl = 30

[[balance]]
name = "chain.example.test"
policy = "geo"
pools = ["to-www"]
ttl = 30
TOML
(cd "$run" && GEOSTEER_LOG=warn exec taskset -c 0 "$bin" serve --config geosteer.toml) >"$run/log" 2>&1 &
gs=$!; pids+=("$gs")
sleep 4
for q in www cdn chain; do
  dig @127.0.0.1 -p 5314 +short "$q.example.test" A | tr '\n' ' ' >&2; echo "($q)" >&2
done

# shellcheck source=dns/cpu.sh
. "$top/benches/dns/cpu.sh"
printf "server\tqps\tlost\tcpu_us_per_query\n"
for r in $(seq "$ROUNDS"); do
  for q in www cdn chain; do
    cp "$run/$q.txt" "$run/www.txt"
    one "$q-A" "$gs" 5314
  done
done
