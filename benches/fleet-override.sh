#!/usr/bin/env bash
# Time from an override set through node 1's admin API to node 3's answers
# changing, in a fleet of three on one etcd (issue 22, "Measure"), RUNS
# times: `override a down` on node 1 (www.example.test moves from a's
# 192.0.2.1 to b's 192.0.2.2), then the override cleared (back to a).
# Node 3 is polled with dig every 10 ms, so a figure is at most ~10 ms late;
# the time includes curl's request to node 1 (which returns once etcd holds
# the override) and node 3's watch delivering it.
#   benches/fleet-override.sh
# Env: RUNS=3 BIN=target/release/geosteer (else the debug build: the time is
# etcd's watch and one snapshot, not query speed).
# Needs: apt-get install etcd-server bind9-dnsutils curl
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$top/target}
bin=${BIN:-$target/release/geosteer}
[ -x "$bin" ] || bin=$target/debug/geosteer
RUNS=${RUNS:-3}
run=$(mktemp -d /tmp/geosteer-fleet-override.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
command -v etcd >/dev/null || { echo "needs etcd (apt-get install etcd-server)" >&2; exit 1; }
[ -x "$bin" ] || { echo "no geosteer at $bin (cargo build --release, or BIN=...)" >&2; exit 1; }

etcd --name b --data-dir "$run/etcd" \
  --listen-client-urls http://127.0.0.1:24990 --advertise-client-urls http://127.0.0.1:24990 \
  --listen-peer-urls http://127.0.0.1:24991 --initial-advertise-peer-urls http://127.0.0.1:24991 \
  --initial-cluster b=http://127.0.0.1:24991 >"$run/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs http://127.0.0.1:24990/version >/dev/null && break; sleep 0.1; done

cp "$top/zones/example.test.zone" "$run/example.test.zone"
for n in 1 2 3; do
  cat >"$run/n$n.toml" <<EOF
[server]
dns_listen = ["127.0.0.1:2497$n"]
admin_listen = "127.0.0.1:2498$n"
udp_workers = 1

[zones]
"example.test" = "example.test.zone"

[pools.a]
endpoints = [{ address = "192.0.2.1" }]

[pools.b]
endpoints = [{ address = "192.0.2.2" }]

[[balance]]
name = "www.example.test"
policy = "failover"
pools = ["a", "b"]
ttl = 5

[cluster]
etcd = ["http://127.0.0.1:24990"]
node = "n$n"
prefix = "/bench-override"
EOF
  GEOSTEER_LOG=warn "$bin" serve --config "$run/n$n.toml" >"$run/n$n.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  [ "$(curl -fs http://127.0.0.1:24983/api/v1/cluster | grep -o '"vantages":3')" ] && break
  sleep 0.1
done

answer() { dig +short +time=1 +tries=1 @127.0.0.1 -p 24973 www.example.test A; }
# Waits until node 3 answers $1; prints the ms since $2 (ns).
until_node3() {
  while [ "$(answer)" != "$1" ]; do
    [ $((($(date +%s%N) - $2) / 1000000)) -gt 10000 ] && { echo "node 3 did not answer $1 within 10 s" >&2; exit 1; }
    sleep 0.01
  done
  echo $((($(date +%s%N) - $2) / 1000000))
}
url=http://127.0.0.1:24981/api/v1/pools/a/endpoints/192.0.2.1/override
until_node3 192.0.2.1 "$(date +%s%N)" >/dev/null
echo "run  override→node 3 ms  clear→node 3 ms"
for r in $(seq "$RUNS"); do
  t0=$(date +%s%N)
  curl -fs -X POST "$url" -H 'content-type: application/json' \
    -d '{"state": "down", "reason": "bench"}' >/dev/null || { echo "override refused" >&2; exit 1; }
  set_ms=$(until_node3 192.0.2.2 "$t0") || exit 1
  sleep 0.5
  t0=$(date +%s%N)
  curl -fs -X DELETE "$url" >/dev/null || { echo "clear refused" >&2; exit 1; }
  clear_ms=$(until_node3 192.0.2.1 "$t0") || exit 1
  printf '%3d  %19d  %16d\n' "$r" "$set_ms" "$clear_ms"
  sleep 0.5
done
