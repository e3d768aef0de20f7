#!/usr/bin/env bash
# Probes per second at one origin named by 1, 2 and 4 identical pool entries
# (same monitor, same target): with one probe per target it stays at
# 1/interval whatever N is. Usage: benches/probe-dedup.sh [path/to/geosteer]
set -euo pipefail
BIN=${1:-target/release/geosteer}
SECS=${SECS:-5}
dir=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
cat > "$dir/origin.py" <<'PY'
import http.server, sys, threading
count = 0
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        with lock:
            count += 1
            open(sys.argv[2], "w").write(str(count))
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$dir/origin.py" "$port" "$dir/count" & sleep 0.5
printf '$ORIGIN example.test.\n@ 300 IN SOA ns1 h 1 3600 600 86400 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n' > "$dir/example.test.zone"
for n in 1 2 4; do
  { printf '[server]\ndns_listen = ["127.0.0.1:0"]\nadmin_listen = "127.0.0.1:0"\nudp_workers = 1\n\n[zones]\n"example.test" = "example.test.zone"\n\n'
    printf '[monitors.web]\ntype = "http"\ninterval = "200ms"\ntimeout = "150ms"\n\n'
    for i in $(seq 1 "$n"); do
      printf '[pools.p%s]\nmonitor = "web"\nendpoints = [{ address = "192.0.2.%s", probe = "127.0.0.1:%s" }]\n\n' "$i" "$i" "$port"
    done; } > "$dir/geosteer.toml"
  "$BIN" serve --config "$dir/geosteer.toml" >/dev/null 2>&1 & pid=$!
  sleep 1; before=$(cat "$dir/count" 2>/dev/null || echo 0); sleep "$SECS"; after=$(cat "$dir/count")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "entries=$n probes_per_second=$(python3 -c "print(round(($after-$before)/$SECS,1))") (interval 200ms: one probe per target is 5/s)"
done
