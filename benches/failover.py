#!/usr/bin/env python3
"""Measures how fast geosteer's answers follow health, end to end.

Starts real HTTP origins on loopback (Python threads), geosteer on a config
whose monitor probes them, and a DNS poller that asks for the balanced name
every POLL seconds over UDP. Then, REPS times each:

  dead     an origin's listener is closed (connection refused): time from the
           close to the first answer without its address;
  hung     an origin accepts and never answers (probe timeout): same;
  slow     every origin of the first region answers after SLOW_MS (over
           max_latency, under the timeout): time to the first answer from the
           second region;
  back     the slow region recovers: time to the first answer from it again
           (hysteresis: `rise` good intervals).

The monitor's max_error_rate is 0.5 so that one failing endpoint of two does not
degrade its region (which would move answers for the window's length).

Usage: benches/failover.py BINARY [--interval 5s] [--timeout 3s] [--fall 2]
                           [--rise 2] [--reps 3]
Prints one line per measurement and a summary with the operator's bound
interval x fall + timeout. Only loopback traffic; every wait is bounded.
"""

import argparse
import http.server
import os
import random
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time

POLL = 0.02
SLOW_MS = 400
MAX_LATENCY_MS = 200


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Origin:
    """An HTTP origin that can be ok, slow, hung or dead (listener closed)."""

    def __init__(self):
        self.port = free_port()
        self.mode = "ok"
        self.server = None
        self.start()

    def start(self):
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if origin.mode == "hung":
                    time.sleep(30)
                    return
                if origin.mode == "slow":
                    time.sleep(SLOW_MS / 1000)
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self):
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def revive(self):
        self.mode = "ok"
        if self.server is None:
            self.start()


def query(port, name, qid):
    """One A query over UDP; returns the set of addresses, or None on timeout."""
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.strip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(q, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            return None
    an = struct.unpack(">H", data[6:8])[0]
    at = 12
    at = skip_name(data, at) + 4
    out = set()
    for _ in range(an):
        at = skip_name(data, at)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[at : at + 10])
        at += 10
        if rtype == 1 and rdlen == 4:
            out.add(socket.inet_ntoa(data[at : at + 4]))
        at += rdlen
    return out


def skip_name(data, at):
    while True:
        n = data[at]
        if n == 0:
            return at + 1
        if n & 0xC0 == 0xC0:
            return at + 2
        at += 1 + n


def wait_for(port, predicate, limit):
    """Polls until predicate(answer) holds; returns seconds taken or None."""
    start = time.monotonic()
    qid = random.randrange(65536)
    while time.monotonic() - start < limit:
        qid = (qid + 1) & 0xFFFF
        a = query(port, "www.example.test", qid)
        if a is not None and predicate(a):
            return time.monotonic() - start
        time.sleep(POLL)
    return None


def status(admin):
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/api/v1/status", timeout=5) as r:
        return r.read().decode()


def seconds(text):
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text.rstrip("s"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--interval", default="5s")
    p.add_argument("--timeout", default="3s")
    p.add_argument("--fall", type=int, default=2)
    p.add_argument("--rise", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    interval, timeout = seconds(a.interval), seconds(a.timeout)
    bound = interval * a.fall + timeout
    limit = bound + 2 * interval + 5

    eu = [Origin(), Origin()]
    us = [Origin()]
    dns, admin = free_port(socket.SOCK_DGRAM), free_port()
    tmp = tempfile.mkdtemp(prefix="geosteer-failover-")
    with open(os.path.join(tmp, "z.zone"), "w") as f:
        f.write(
            "$ORIGIN example.test.\n$TTL 300\n"
            "@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n"
            "@ IN NS ns1\nns1 IN A 192.0.2.53\n"
        )
    with open(os.path.join(tmp, "geosteer.toml"), "w") as f:
        f.write(
            f"""[server]
dns_listen = ["127.0.0.1:{dns}"]
admin_listen = "127.0.0.1:{admin}"
[zones]
"example.test" = "z.zone"
[monitors.web]
type = "http"
interval = "{a.interval}"
timeout = "{a.timeout}"
fall = {a.fall}
rise = {a.rise}
max_latency = "{MAX_LATENCY_MS}ms"
# One endpoint failing must not degrade the whole region here: this run
# measures endpoint failover and latency steering, not the error-rate rule.
max_error_rate = 0.5
[pools.eu]
monitor = "web"
endpoints = [{{ address = "192.0.2.1", probe = "127.0.0.1:{eu[0].port}" }},
             {{ address = "192.0.2.2", probe = "127.0.0.1:{eu[1].port}" }}]
[pools.us]
monitor = "web"
endpoints = [{{ address = "192.0.2.9", probe = "127.0.0.1:{us[0].port}" }}]
[[balance]]
name = "www.example.test"
policy = "failover"
pools = ["eu", "us"]
answers = 2
ttl = 1
"""
        )
    env = dict(os.environ, GEOSTEER_LOG="warn")
    server = subprocess.Popen(
        [a.binary, "serve", "--config", os.path.join(tmp, "geosteer.toml")], env=env
    )
    results = {"dead": [], "hung": [], "slow": [], "back": []}
    both = {"192.0.2.1", "192.0.2.2"}
    try:
        if wait_for(dns, lambda s: s == both, 30) is None:
            sys.exit("geosteer never answered with both eu endpoints")
        for rep in range(a.reps):
            for kind in ("dead", "hung"):
                # Desynchronise from the probe schedule, like a real failure.
                time.sleep(random.uniform(0, interval))
                if kind == "dead":
                    eu[1].kill()
                else:
                    eu[1].mode = "hung"
                t = wait_for(dns, lambda s: "192.0.2.2" not in s, limit)
                results[kind].append(t)
                print(f"{kind}: rep {rep + 1}: {fmt(t)} (bound {bound:.1f} s)", flush=True)
                eu[1].revive()
                if wait_for(dns, lambda s: s == both, limit * 2) is None:
                    sys.exit("endpoint never came back: " + status(admin))
            time.sleep(random.uniform(0, interval))
            for o in eu:
                o.mode = "slow"
            t = wait_for(dns, lambda s: s == {"192.0.2.9"}, limit)
            results["slow"].append(t)
            print(f"slow: rep {rep + 1}: {fmt(t)} (bound {bound:.1f} s)", flush=True)
            for o in eu:
                o.mode = "ok"
            t = wait_for(dns, lambda s: s == both, limit * 4)
            results["back"].append(t)
            print(f"back: rep {rep + 1}: {fmt(t)} (rise {a.rise} x interval)", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    print()
    print(f"interval {a.interval}, timeout {a.timeout}, fall {a.fall}, rise {a.rise}: "
          f"bound interval x fall + timeout = {bound:.1f} s; poll every {POLL * 1000:.0f} ms")
    print("event\tmin_s\tmedian_s\tmax_s\tover_bound")
    for kind, ts in results.items():
        got = sorted(t for t in ts if t is not None)
        missing = len(ts) - len(got)
        if not got:
            print(f"{kind}\t-\t-\t-\t{missing} never")
            continue
        over = sum(1 for t in got if t > bound) + missing
        print(f"{kind}\t{got[0]:.2f}\t{got[len(got) // 2]:.2f}\t{got[-1]:.2f}\t"
              f"{over if kind != 'back' else '-'}")


def fmt(t):
    return "never" if t is None else f"{t:.2f} s"


if __name__ == "__main__":
    main()
