#!/usr/bin/env python3
"""Fleet measurements on loopback: three geosteer processes sharing health
through a real etcd (one member, temp data dir).

  failover   A majority of vantages (2 of 3) lose their path to one origin at
             the same moment (the origin closes their probes' connections);
             time from then to the LAST node's answer changing. REPS runs,
             probes every 1 s (timeout 500 ms, fall 2). Bound: interval x fall
             + timeout + the watch delay.
  writes     3 nodes x ENDPOINTS endpoints (1,000 pools, TCP monitors on
             loopback listeners, interval 10 s): etcd write load while every
             node publishes its first verdicts, in steady state (should be
             the lease keep-alives alone), and while a region of 50 pools
             (ENDPOINTS/20 endpoints) fails. Figures from etcd's own
             /metrics (raft proposals committed: every write) and from
             geosteer's (transactions, keys, keep-alives).

Usage: benches/fleet.py BINARY [failover|writes|all] [--reps 3] [--endpoints 20000]
Only loopback traffic; every wait is bounded.
"""

import argparse
import http.server
import json
import os
import random
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

POLL = 0.02

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import failover as bench_failover  # noqa: E402  (its DNS client and free_port)

free_port = bench_failover.free_port


class Etcd:
    def __init__(self, tmp):
        self.client, self.peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client}"
        log = open(os.path.join(tmp, "etcd.log"), "w")
        self.proc = subprocess.Popen(
            [
                shutil.which("etcd") or "etcd",
                "--name=bench",
                f"--data-dir={tmp}/etcd",
                f"--listen-client-urls={self.url}",
                f"--advertise-client-urls={self.url}",
                f"--listen-peer-urls=http://127.0.0.1:{self.peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{self.peer}",
                f"--initial-cluster=bench=http://127.0.0.1:{self.peer}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.client), 0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("etcd did not start")
                time.sleep(0.05)

    def metric(self, name):
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.split()[-1])
        return 0.0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class PickyOrigin:
    """HTTP origin that closes connections from blocked source addresses."""

    def __init__(self):
        self.blocked = set()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.client_address[0] in origin.blocked:
                    self.close_connection = True
                    return
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

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def query(port, qid):
    """The balanced name's A addresses from one UDP query (None: no reply)."""
    return bench_failover.query(port, "www.example.test", qid)


ZONE = (
    "$ORIGIN example.test.\n$TTL 300\n"
    "@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n"
    "@ IN NS ns1\nns1 IN A 192.0.2.53\n"
)


def start_node(binary, tmp, n, body, etcd):
    d = os.path.join(tmp, f"n{n}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "z.zone"), "w") as f:
        f.write(ZONE)
    dns, admin = free_port(socket.SOCK_DGRAM), free_port()
    with open(os.path.join(d, "geosteer.toml"), "w") as f:
        f.write(
            f"""[server]
dns_listen = ["127.0.0.1:{dns}"]
admin_listen = "127.0.0.1:{admin}"
udp_workers = 1
probe_source = "127.0.0.{10 + n}"
[zones]
"example.test" = "z.zone"
{body}
[cluster]
etcd = ["{etcd.url}"]
node = "n{n}"
prefix = "/bench"
lease = "10s"
"""
        )
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen(
        [binary, "serve", "--config", os.path.join(d, "geosteer.toml")],
        stdout=log,
        stderr=log,
        env=dict(os.environ, GEOSTEER_LOG="warn"),
    )
    return p, dns, admin


def get_json(admin, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}{path}", timeout=10) as r:
        return json.loads(r.read())


def metrics(admin):
    out = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("geosteer_cluster_"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
    return out


def wait_until(what, limit, check):
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out: {what}")
        time.sleep(0.1)


def failover(binary, reps):
    tmp = tempfile.mkdtemp(prefix="geosteer-fleet-")
    etcd = Etcd(tmp)
    a, b = PickyOrigin(), PickyOrigin()
    body = f"""[monitors.web]
type = "http"
interval = "1s"
timeout = "500ms"
fall = 2
rise = 2
[pools.a]
monitor = "web"
endpoints = [{{ address = "192.0.2.1", probe = "127.0.0.1:{a.port}" }}]
[pools.b]
monitor = "web"
endpoints = [{{ address = "192.0.2.2", probe = "127.0.0.1:{b.port}" }}]
[[balance]]
name = "www.example.test"
policy = "failover"
pools = ["a", "b"]
ttl = 5
"""
    nodes = [start_node(binary, tmp, n, body, etcd) for n in (1, 2, 3)]
    try:
        wait_until("three vantages", 30, lambda: all_vantages(nodes, 3))
        times = []
        for rep in range(reps):
            wait_until("all answer a", 30, lambda: all_answer(nodes, "192.0.2.1"))
            time.sleep(random.uniform(0, 1.0))  # a random moment of the probe cycle
            t0 = time.monotonic()
            a.blocked = {"127.0.0.11", "127.0.0.12"}
            pending = {dns for _, dns, _ in nodes}
            last = None
            qid = 0
            while pending and time.monotonic() - t0 < 30:
                for dns in list(pending):
                    qid = (qid + 1) & 0xFFFF
                    ans = query(dns, qid)
                    if ans == {"192.0.2.2"}:
                        pending.discard(dns)
                        last = time.monotonic() - t0
                time.sleep(POLL)
            if pending:
                sys.exit("a node never steered away")
            times.append(last)
            print(f"failover run {rep + 1}: last node changed after {last:.2f} s", flush=True)
            a.blocked = set()
        print(
            f"failover (majority loss -> last node's answer), {reps} runs: "
            f"min {min(times):.2f} s, median {statistics.median(times):.2f} s, max {max(times):.2f} s "
            f"(bound: 1 s x fall 2 + 500 ms timeout = 2.5 s, plus the watch delay)"
        )
        # A drain on node 1: how long until the other nodes' answers follow.
        drains = []
        for rep in range(reps):
            wait_until("all answer a", 30, lambda: all_answer(nodes, "192.0.2.1"))
            admin1 = nodes[0][2]
            url = f"http://127.0.0.1:{admin1}/api/v1/pools/a/endpoints/192.0.2.1/drain"
            t0 = time.monotonic()
            urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10).read()
            returned = time.monotonic() - t0
            pending = {dns for _, dns, _ in nodes[1:]}
            qid = 0
            while pending and time.monotonic() - t0 < 10:
                for dns in list(pending):
                    qid = (qid + 1) & 0xFFFF
                    if query(dns, qid) == {"192.0.2.2"}:
                        pending.discard(dns)
            if pending:
                sys.exit("a drain never reached the other nodes")
            drains.append(time.monotonic() - t0)
            print(f"drain run {rep + 1}: call returned after {returned * 1000:.0f} ms, other nodes followed after {drains[-1] * 1000:.0f} ms", flush=True)
            urllib.request.urlopen(urllib.request.Request(url.replace("/drain", "/undrain"), method="POST"), timeout=10).read()
        print(
            f"drain on one node -> every other node's answer, {reps} runs: min {min(drains) * 1000:.0f} ms, "
            f"median {statistics.median(drains) * 1000:.0f} ms, max {max(drains) * 1000:.0f} ms"
        )
    finally:
        for p, _, _ in nodes:
            p.terminate()
        for p, _, _ in nodes:
            p.wait()
        etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def all_vantages(nodes, n):
    try:
        return all(get_json(admin, "/api/v1/cluster")["vantages"] == n for _, _, admin in nodes)
    except OSError:
        return False


def all_answer(nodes, ip):
    return all(query(dns, 1) == {ip} for _, dns, _ in nodes)


class Listeners:
    """TCP listeners that accept and close at once, one per pool, served by
    one selector thread: a connection's fd lives for microseconds, so a
    start-up round of 60,000 checks does not need 60,000 descriptors (the
    kernel's accept queues hold them meanwhile)."""

    def __init__(self, count):
        import selectors

        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.ports = []
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(4096)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.socks.append(s)
            self.ports.append(s.getsockname()[1])
        self.closing = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            for s in self.closing:
                try:
                    self.sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                s.close()
            self.closing = []
            for key, _ in self.sel.select(0.2):
                while True:
                    try:
                        conn, _ = key.fileobj.accept()
                    except (BlockingIOError, OSError):
                        break
                    conn.close()

    def close(self, index):
        self.closing.append(self.socks[index])


def writes(binary, endpoints):
    pools = 1000
    per = max(1, endpoints // pools)
    tmp = tempfile.mkdtemp(prefix="geosteer-fleet-writes-")
    etcd = Etcd(tmp)
    listeners = Listeners(pools)
    lines = ['[monitors.hc]\ntype = "tcp"\ninterval = "10s"\ntimeout = "2s"\nfall = 2\nrise = 2\n']
    for p in range(pools):
        eps = ", ".join(
            f'{{ address = "10.{p // 250}.{p % 250}.{e + 1}", probe = "127.0.0.1:{listeners.ports[p]}" }}'
            for e in range(per)
        )
        lines.append(f'[pools.p{p}]\nmonitor = "hc"\nendpoints = [{eps}]\n')
    lines.append('[[balance]]\nname = "www.example.test"\npolicy = "failover"\npools = ["p0", "p1"]\nttl = 5\n')
    body = "\n".join(lines)
    proposals = lambda: etcd.metric("etcd_server_proposals_committed_total")
    p0 = proposals()
    t0 = time.monotonic()
    nodes = [start_node(binary, tmp, n, body, etcd) for n in (1, 2, 3)]
    try:
        wait_until("three vantages", 120, lambda: all_vantages(nodes, 3))

        def sums():
            total = {}
            for _, _, admin in nodes:
                for k, v in metrics(admin).items():
                    total[k] = total.get(k, 0) + v
            return total

        def cpu():
            hz = os.sysconf("SC_CLK_TCK")
            total = 0
            for p, _, _ in nodes:
                with open(f"/proc/{p.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / hz
            return total

        # Let the first publish and the first probe round settle.
        time.sleep(25)
        s1, p1, c1 = sums(), proposals(), cpu()
        print(
            f"writes: first publish of 3 x {pools * per} endpoints ({time.monotonic() - t0:.0f} s incl. start-up): "
            f"{p1 - p0:.0f} etcd proposals, {s1.get('geosteer_cluster_etcd_txns_total', 0):.0f} txns, "
            f"{s1.get('geosteer_cluster_etcd_puts_total', 0):.0f} keys put",
            flush=True,
        )
        steady = 60
        time.sleep(steady)
        s2, p2, c2 = sums(), proposals(), cpu()
        d = lambda k: s2.get(k, 0) - s1.get(k, 0)
        print(
            f"writes: steady state, {steady} s: {(p2 - p1) / steady:.2f} etcd proposals/s; "
            f"geosteer txns {d('geosteer_cluster_etcd_txns_total'):.0f}, keys put {d('geosteer_cluster_etcd_puts_total'):.0f}, "
            f"keep-alives {d('geosteer_cluster_etcd_keepalives_total'):.0f} ({d('geosteer_cluster_etcd_keepalives_total') / steady:.2f}/s); "
            f"geosteer CPU {100 * (c2 - c1) / steady / 3:.1f} % of a core per node (probing 2,000 endpoints/s each)",
            flush=True,
        )
        failed = 50
        for i in range(failed):
            listeners.close(i)
        window = 30
        time.sleep(window)
        s3, p3 = sums(), proposals()
        d = lambda k: s3.get(k, 0) - s2.get(k, 0)
        print(
            f"writes: region failure ({failed} pools, {failed * per} endpoints down), {window} s: "
            f"{p3 - p2:.0f} etcd proposals ({(p3 - p2) / window:.2f}/s); geosteer txns {d('geosteer_cluster_etcd_txns_total'):.0f}, "
            f"keys put {d('geosteer_cluster_etcd_puts_total'):.0f}; re-syncs with etcd over the whole run {s3.get('geosteer_cluster_syncs_total', 0) - 3:.0f}",
            flush=True,
        )
    finally:
        for p, _, _ in nodes:
            p.terminate()
        for p, _, _ in nodes:
            p.wait()
        etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    import resource

    # 1,000 listeners plus the connections in flight; geosteer inherits it.
    # Each node's start-up probe round opens every endpoint's connection at
    # once (20,000), so the listeners may hold 60,000 at a time.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (262144, 262144))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("what", nargs="?", default="all", choices=["failover", "writes", "all"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--endpoints", type=int, default=20000)
    a = ap.parse_args()
    if a.what in ("failover", "all"):
        failover(a.binary, a.reps)
    if a.what in ("writes", "all"):
        writes(a.binary, a.endpoints)


if __name__ == "__main__":
    main()
