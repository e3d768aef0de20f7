#!/usr/bin/env bash
# geosteer next to gdnsd, Knot and NSD through ../shared/bench/dns-peers.sh, in
# one run: server pinned to core 0, dnsperf to core 1, loopback only.
#   benches/dns-peers.sh                 # gdnsd knot nsd geosteer, 3 x 10 s each
#   PEERS="gdnsd" REPS=1 benches/dns-peers.sh
# Rows: the peers' and geosteer's `static` and `www` names queried as the peers
# are (no ECS: geo decisions on the 127.0.0.1 source), then `geosteer-ecs`:
# the geo name with an ECS option (5.9.1.0/24, a German network) in every
# query, at maximum rate. One TSV, one summary table (OUT).
# Needs: apt-get install dnsperf gdnsd knot nsd (see ../shared/bench/README.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
cmd="$bin serve --config $top/benches/dns/geosteer.toml"
cargo build --release --locked --manifest-path "$top/Cargo.toml" >&2
export OUT=${OUT:-${TMPDIR:-/tmp}/geosteer-bench/dns-$(date +%Y%m%d-%H%M%S)}
# shellcheck disable=SC2086
"$bench/dns-peers.sh" ${PEERS:-gdnsd knot nsd} target geosteer 5310 "static www" "$cmd"
# ECS option 8: FAMILY 1, SOURCE 24, SCOPE 0, ADDRESS 5.9.1.
MAXOPTS="-c 10 -T 1 -q 500 -t 1 -E 8:00011800050901" MODES=max \
  "$bench/dns-peers.sh" target geosteer-ecs 5310 "www" "$cmd"
