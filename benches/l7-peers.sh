#!/usr/bin/env bash
# geosteer's proxy next to HAProxy and nginx through ../shared/bench/l7-peers.sh,
# in one run: balancer and the three nginx backends pinned to core 0, wrk to
# core 1, loopback only.
#   benches/l7-peers.sh                        # haproxy-rr nginx geosteer, c64 and c256, 3 x 10 s
#   PEERS="nginx" REPS=1 CONNS=64 benches/l7-peers.sh
# Needs: apt-get install haproxy nginx wrk (see ../shared/bench/README.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
target=${CARGO_TARGET_DIR:-$top/target}
cargo build --release --locked --manifest-path "$top/Cargo.toml" >&2
# shellcheck disable=SC2086
GEOSTEER_LOG=warn exec "$bench/l7-peers.sh" ${PEERS:-haproxy-rr nginx} \
  target geosteer 8085 "$target/release/geosteer serve --config $top/benches/l7/geosteer.toml"
