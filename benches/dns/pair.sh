# Sourced by dns-cpu.sh and dns-p99.sh: gdnsd (port 5303) and geosteer
# (port 5310) side by side, both pinned to core 0, with the bench's health
# check listener. Expects $top, $bench, $bin and $run; sets gs (geosteer's
# PID) and gd (gdnsd's); cleans up on exit.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; pkill -x gdnsd 2>/dev/null; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
[ -x "$bin" ] || cargo build --release --locked --manifest-path "$top/Cargo.toml" >&2
yes "www.example.test A" | head -100000 >"$run/www.txt"

python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)
mkdir -p /tmp/peers-run/gdnsd/run /tmp/peers-run/gdnsd/state
taskset -c 0 gdnsd -c "$bench/dns/gdnsd" start >"$run/gdnsd.log" 2>&1 &
(cd "$top/benches/dns" && GEOSTEER_LOG=warn exec taskset -c 0 "$bin" serve --config geosteer.toml) >"$run/gs.log" 2>&1 &
gs=$!; pids+=($gs)
sleep 4
gd=$(pgrep -x gdnsd | head -1)
[ -n "$gd" ] || { echo "gdnsd did not start" >&2; exit 1; }
