#!/usr/bin/env bash
# Time from `geosteer config push` to the last of three nodes answering with
# the new config ([cluster] config = "etcd"), RUNS times, alternating two
# configs (the failover order of www.example.test: a,b answers 192.0.2.1,
# b,a answers 192.0.2.2). One etcd and three nodes on loopback; each node
# polled with dig every 20 ms, so a figure is at most ~20 ms late.
#   benches/config-push.sh
# Env: RUNS=3 BIN=target/release/geosteer (any build works: the time is
# etcd's watch plus a reload, not query speed).
# Needs: apt-get install etcd-server bind9-dnsutils
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-${CARGO_TARGET_DIR:-$top/target}/release/geosteer}
RUNS=${RUNS:-3}
run=$(mktemp -d /tmp/geosteer-config-push.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
command -v etcd >/dev/null || { echo "needs etcd (apt-get install etcd-server)" >&2; exit 1; }
[ -x "$bin" ] || { echo "no geosteer at $bin (cargo build --release, or BIN=...)" >&2; exit 1; }

etcd --name b --data-dir "$run/etcd" \
  --listen-client-urls http://127.0.0.1:23990 --advertise-client-urls http://127.0.0.1:23990 \
  --listen-peer-urls http://127.0.0.1:23991 --initial-advertise-peer-urls http://127.0.0.1:23991 \
  --initial-cluster b=http://127.0.0.1:23991 >"$run/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs http://127.0.0.1:23990/version >/dev/null && break; sleep 0.1; done

cp "$top/zones/example.test.zone" "$run/example.test.zone"
fleet() {
  cat >"$run/geosteer.toml" <<EOF
[server]
dns_listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"

[zones]
"example.test" = "example.test.zone"

[pools.a]
endpoints = [{ address = "192.0.2.1" }]

[pools.b]
endpoints = [{ address = "192.0.2.2" }]

[[balance]]
name = "www.example.test"
policy = "failover"
pools = [$1]
ttl = 5
EOF
}
push() { "$bin" config push --config "$run/geosteer.toml" --etcd http://127.0.0.1:23990 >/dev/null; }
fleet '"a", "b"'; push

for n in 1 2 3; do
  mkdir -p "$run/n$n"
  cat >"$run/n$n/geosteer.toml" <<EOF
[server]
dns_listen = ["127.0.0.1:2395$n"]
admin_listen = "127.0.0.1:2396$n"
udp_workers = 1

[cluster]
etcd = ["http://127.0.0.1:23990"]
node = "n$n"
config = "etcd"
config_dir = "state"
EOF
  (cd "$run/n$n" && GEOSTEER_LOG=warn exec "$bin" serve --config geosteer.toml) >"$run/n$n/log" 2>&1 &
  pids+=($!)
done
sleep 3

answer() { dig +short +time=1 +tries=1 @127.0.0.1 -p "2395$1" www.example.test A; }
echo "run  push→n1 ms  push→n2 ms  push→n3 ms  last ms"
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then fleet '"b", "a"'; want=192.0.2.2; else fleet '"a", "b"'; want=192.0.2.1; fi
  t0=$(date +%s%N)
  push
  declare -A seen=()
  while [ ${#seen[@]} -lt 3 ]; do
    for n in 1 2 3; do
      [ -n "${seen[$n]:-}" ] && continue
      [ "$(answer "$n")" = "$want" ] && seen[$n]=$((($(date +%s%N) - t0) / 1000000))
    done
    now=$((($(date +%s%N) - t0) / 1000000))
    [ "$now" -gt 20000 ] && { echo "run $r: not every node answered $want within 20 s" >&2; exit 1; }
    sleep 0.02
  done
  last=$(printf '%s\n' "${seen[@]}" | sort -n | tail -1)
  printf '%3d  %10d  %10d  %10d  %7d\n' "$r" "${seen[1]}" "${seen[2]}" "${seen[3]}" "$last"
  unset seen
  sleep 1
done
