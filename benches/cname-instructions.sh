#!/usr/bin/env bash
# Instructions per answered query of a CNAME answer and of a two-step CNAME
# chain against an A answer, one binary (callgrind, the DNS worker threads
# only, as benches/ab-instructions.sh): deterministic, so the ratios hold
# beside a build. benches/cname-cpu.sh measures the same rows in CPU time.
# Goals (issue 21): a CNAME answer within 1.1x of an A answer, a chain 1.5x.
#   benches/cname-instructions.sh
# Env: QUERIES=5000 BIN=path/to/geosteer (default: the release build)
# Rows as cname-cpu.sh: www A (geo, an address), cdn A (the CNAME alone),
# chain A (a CNAME to www, then www's A: two decisions). No ECS.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${BIN:-${CARGO_TARGET_DIR:-$top/target}/release/geosteer}
QUERIES=${QUERIES:-5000}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "dnsperf is missing (apt-get install dnsperf)" >&2; exit 1; }
run=$(mktemp -d /tmp/geosteer-cname-instr.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)

printf "row\tanswered\tIr_per_query\tx_www\n"
base=""
port=5420
for q in www cdn chain; do
  port=$((port + 1))
  dir="$run/$q"
  mkdir -p "$dir"
  yes "$q.example.test A" | head -"$QUERIES" >"$dir/q.txt"
  cp "$top/benches/dns/example.test.zone" "$dir/"
  sed -e "s|127.0.0.1:5310|127.0.0.1:$port|" -e "s|127.0.0.1:8054|127.0.0.1:$((port + 1000))|" \
    -e "s|\.\./\.\./geoip/|$top/geoip/|" "$top/benches/dns/geosteer.toml" >"$dir/geosteer.toml"
  cat >>"$dir/geosteer.toml" <<'TOML'

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
  (cd "$dir" && GEOSTEER_LOG=warn exec valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
     --separate-threads=yes "$bin" serve --config geosteer.toml) >"$dir/log" 2>&1 &
  pid=$!
  pids+=("$pid")
  sleep 8
  dig @127.0.0.1 -p "$port" +short "$q.example.test" A | tr '\n' ' ' >&2; echo "($q)" >&2
  out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$dir/q.txt" -n 1 -c 1 -T 1 -q 20 -t 5 2>&1)
  answered=$(echo "$out" | awk '/Queries completed/ {print $3}')
  kill -INT "$pid"; wait "$pid" 2>/dev/null
  ir=0
  for f in "$dir"/cg.out-*; do
    grep -q 'dns::fast' "$f" || continue
    ir=$((ir + $(awk '/^summary:/ {print $2}' "$f")))
  done
  # One dig query was answered beside dnsperf's.
  per=$(python3 -c "print(round($ir / ($answered + 1)))")
  [ -z "$base" ] && base=$per
  python3 -c "print(f'$q-A\t$answered\t$per\t{$per/$base:.2f}')"
done
