#!/usr/bin/env bash
# geosteer next to gdnsd, Knot and NSD through ../shared/bench/dns-peers.sh, in
# one run: server pinned to core 0, dnsperf to core 1, loopback only.
#   benches/dns-peers.sh                 # gdnsd knot nsd geosteer, 3 x 10 s each
#   PEERS="gdnsd" REPS=1 benches/dns-peers.sh
# Needs: apt-get install dnsperf gdnsd knot nsd (see ../shared/bench/README.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
cargo build --release --manifest-path "$top/Cargo.toml" >&2
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
# shellcheck disable=SC2086
exec "$bench/dns-peers.sh" ${PEERS:-gdnsd knot nsd} \
  target geosteer 5310 "static www" "$bin serve --config $top/benches/dns/geosteer.toml"
