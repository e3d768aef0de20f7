#!/usr/bin/env bash
# CPU time per proxied request, for geosteer's proxy and its peers, read from
# /proc/PID/stat around a wrk run: less sensitive to a busy machine than req/s.
# Backends: ../shared/bench's three nginx servers (127.0.0.1:9001-9003).
# Balancer and backends on core 0, wrk on core 1, loopback only.
#   benches/proxy-cpu.sh [geosteer] [haproxy] [nginx]     (default: all three)
# Env: DURATION=10 CONNS=64
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
DURATION=${DURATION:-10}; CONNS=${CONNS:-64}
run=$(mktemp -d /tmp/geosteer-proxy-cpu.XXXXXX)
cp "$bench"/l7/*.conf "$bench"/l7/haproxy.cfg "$run/"
sed -i "s#/tmp/peers-run#$run#g" "$run"/*.conf
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do ss -lnt | grep -q "127.0.0.1:$1 " && return 0; sleep 0.1; done; echo "port $1 not up" >&2; return 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, clock ticks

[ -x "$bin" ] || cargo build --release --locked --manifest-path "$top/Cargo.toml" >&2
taskset -c 0 nginx -p "$run/" -e "$run/backends.err" -c "$run/nginx-backends.conf" -g 'daemon off;' &
pids+=($!); wait_port 9001 || exit 1

printf "target\tconns\treq_per_s\tp99\tcpu_us_per_req\n"
for t in "${@:-geosteer haproxy nginx}"; do for t in $t; do
  case $t in
    geosteer) port=8085; GEOSTEER_LOG=warn taskset -c 0 "$bin" serve --config "$top/benches/l7/geosteer.toml" >"$run/gs.log" 2>&1 & ;;
    haproxy)  port=8082; taskset -c 0 haproxy -db -f "$run/haproxy.cfg" >"$run/hap.log" 2>&1 & ;;
    nginx)    port=8084; taskset -c 0 nginx -p "$run/" -e "$run/lb.err" -c "$run/nginx-lb.conf" -g 'daemon off;' & ;;
    *) echo "unknown target $t" >&2; continue ;;
  esac
  pid=$!; pids+=("$pid"); wait_port "$port" || continue; sleep 1
  # nginx's master forks a worker: count every process of the tree.
  tree() { echo "$pid" $(pgrep -P "$pid"); }
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/" >/dev/null 2>&1
  before=0; for p in $(tree); do before=$((before + $(ticks "$p"))); done
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/")
  after=0; for p in $(tree); do after=$((after + $(ticks "$p"))); done
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec/{printf "%.0f", $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  hz=$(getconf CLK_TCK)
  printf "%s\t%s\t%s\t%s\t%.1f\n" "$t" "$CONNS" "$rps" "$p99" \
    "$(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN{print t / hz * 1e6 / n}')"
  kill "$pid"; wait "$pid" 2>/dev/null
done; done
