#!/usr/bin/env bash
# Failover timing, end to end: origins die, hang or slow down; how long until
# DNS answers change? Builds the release binary, then runs benches/failover.py.
# Usage: benches/failover.sh [--interval 5s --timeout 3s --fall 2 --rise 2 --reps 3]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
exec timeout 1800 python3 benches/failover.py "${CARGO_TARGET_DIR:-target}/release/geosteer" "$@"
