#!/usr/bin/env bash
# Instructions per answered query of two geosteer binaries for the same
# queries (callgrind, one profile per thread; counted in the threads that ran
# the UDP fast path, the DNS workers, which do nothing else): deterministic,
# unaffected by other load on the machine, so it can run beside a build.
#   BEFORE=old/geosteer AFTER=new/geosteer benches/ab-instructions.sh
# Env: QUERIES=2000, KEEP=DIR (keep each row's worker profile there). Rows: www A with ECS 5.9.1.0/24, www A without ECS.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
: "${BEFORE:?set BEFORE to the old binary}"
: "${AFTER:?set AFTER to the new binary}"
QUERIES=${QUERIES:-2000}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "dnsperf is missing (apt-get install dnsperf)" >&2; exit 1; }
run=$(mktemp -d /tmp/geosteer-ab-instr.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)
yes "www.example.test A" | head -"$QUERIES" >"$run/www.txt"

measure() {  # measure LABEL BINARY PORT [dnsperf options]: prints label, Ir/query
  local label=$1 binary=$2 port=$3; shift 3
  local dir="$run/$label"
  mkdir -p "$dir"
  cp "$top/benches/dns/example.test.zone" "$dir/"
  sed -e "s|127.0.0.1:5310|127.0.0.1:$port|" -e "s|127.0.0.1:8054|127.0.0.1:$((port + 1000))|" \
    -e "s|\.\./\.\./geoip/|$top/geoip/|" "$top/benches/dns/geosteer.toml" >"$dir/geosteer.toml"
  (cd "$dir" && GEOSTEER_LOG=warn exec valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
     --separate-threads=yes "$binary" serve --config geosteer.toml) >"$dir/log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  sleep 8
  out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$dir/../www.txt" -n 1 -c 1 -T 1 -q 20 -t 5 "$@" 2>&1)
  local done_q; done_q=$(echo "$out" | awk '/Queries completed/ {print $3}')
  kill -INT "$pid"; wait "$pid" 2>/dev/null
  local ir=0 f
  for f in "$dir"/cg.out-*; do
    grep -q 'dns::fast' "$f" || continue
    # KEEP=DIR keeps the worker's profile for callgrind_annotate.
    [ -n "${KEEP:-}" ] && cp "$f" "$KEEP/$label.callgrind"
    ir=$((ir + $(awk '/^summary:/ {print $2}' "$f")))
  done
  python3 -c "print(f'$label\t$done_q\t{$ir/$done_q:.0f}')"
}
printf "row\tanswered\tIr_per_query\n"
measure before-ecs "$BEFORE" 5411 -E 8:00011800050901
measure after-ecs "$AFTER" 5412 -E 8:00011800050901
measure before "$BEFORE" 5413
measure after "$AFTER" 5414
