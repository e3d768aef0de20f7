#!/usr/bin/env python3
"""A region failure and return, with and without capacity steering.

Starts geosteer (BINARY) twice on loopback, each time with three pools (eu,
us, ap: one endpoint each, no monitor) and a geo name whose subnets give
each region 100 client /24s (10.0.x.0/24: eu, us, ap; 10.1.x.0/24: us, ap,
eu; 10.2.x.0/24: ap, us, eu). Every client /24 brings one unit of load to
the pool that answers it; every pool can carry CAPACITY units.

Every TICK seconds the bench asks for the name once per client /24 (ECS),
counts the load each pool gets, and, in the steered run, reports it with
PUT /api/v1/pools/{pool}/load (ttl 10s). At FAIL_AT eu's endpoint is
drained (the region dies); at BACK_AT it is undrained (it returns).

  plain    no capacity, no slow start: today's behaviour;
  steered  capacity = CAPACITY, spill_at = 0.9 on every pool, and
           slow_start = SLOW on eu.

Prints, per run: the peak utilisation of us and ap after the failure, the
ticks until every pool is at or under capacity and the answers stop moving
(3 ticks unchanged), and, for the return, the largest one-tick jump of eu's
load and the ticks until eu has its 100 clients back.

Usage: benches/cascade.py BINARY [--tick 1] [--capacity 170] [--slow 20s]
Only loopback traffic; every wait is bounded.
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

REGIONS = ["eu", "us", "ap"]
ORDERS = {0: ["eu", "us", "ap"], 1: ["us", "ap", "eu"], 2: ["ap", "us", "eu"]}
ADDR = {"eu": "192.0.2.1", "us": "192.0.2.2", "ap": "192.0.2.3"}
POOL_OF = {v: k for k, v in ADDR.items()}
CLIENTS = [(r, i) for r in range(3) for i in range(100)]
ZONE = """$ORIGIN example.test.
$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ IN NS ns1.example.test.
ns1 IN A 127.0.0.1
"""


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(dns, admin, steered, capacity, slow):
    out = [
        "[server]",
        f'dns_listen = ["127.0.0.1:{dns}"]',
        f'admin_listen = "127.0.0.1:{admin}"',
        "udp_workers = 1",
        "[zones]",
        '"example.test" = "example.test.zone"',
    ]
    for p in REGIONS:
        out.append(f"[pools.{p}]")
        if steered:
            out.append(f"capacity = {capacity}")
            if p == "eu":
                out.append(f'slow_start = "{slow}"')
        out.append(f'endpoints = [{{ address = "{ADDR[p]}" }}]')
    out += [
        "[[balance]]",
        'name = "www.example.test"',
        'policy = "geo"',
        'pools = ["eu", "us", "ap"]',
        "[balance.subnets]",
    ]
    for r, order in ORDERS.items():
        out.append(f'"10.{r}.0.0/16" = [{", ".join(json.dumps(p) for p in order)}]')
    return "\n".join(out) + "\n"


def query(sock, port, qid, subnet):
    """An A query for www.example.test with ECS subnet/24; the address."""
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1)
    for label in ["www", "example", "test"]:
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    ecs = struct.pack(">HBB", 1, 24, 0) + socket.inet_aton(subnet)[:3]
    q += b"\0" + struct.pack(">HHIH", 41, 1232, 0, 4 + len(ecs))
    q += struct.pack(">HH", 8, len(ecs)) + ecs
    sock.sendto(q, ("127.0.0.1", port))
    data, _ = sock.recvfrom(4096)
    an = struct.unpack(">H", data[6:8])[0]
    at = 12
    while data[at] != 0:
        at += data[at] + 1
    at += 5
    for _ in range(an):
        if data[at] & 0xC0 == 0xC0:
            at += 2
        else:
            while data[at] != 0:
                at += data[at] + 1
            at += 1
        rtype, _c, _t, rdlen = struct.unpack(">HHIH", data[at : at + 10])
        at += 10
        if rtype == 1:
            return socket.inet_ntoa(data[at : at + 4])
        at += rdlen
    return None


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


def run(binary, steered, args):
    dns, admin = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    d = tempfile.mkdtemp(prefix="geosteer-cascade.")
    with open(os.path.join(d, "geosteer.toml"), "w") as f:
        f.write(config(dns, admin, steered, args.capacity, args.slow))
    with open(os.path.join(d, "example.test.zone"), "w") as f:
        f.write(ZONE)
    env = dict(os.environ, GEOSTEER_LOG="warn")
    proc = subprocess.Popen(
        [binary, "serve", "--config", "geosteer.toml"], cwd=d, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{admin}"
    try:
        deadline = time.time() + 20
        while True:
            try:
                http("GET", f"{base}/api/v1/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("geosteer did not start")
                time.sleep(0.2)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(1)
        drain = f"{base}/api/v1/pools/eu/endpoints/{ADDR['eu']}"
        rows = []
        for tick in range(args.ticks):
            t0 = time.time()
            if tick == args.fail_at:
                http("POST", f"{drain}/drain")
            if tick == args.back_at:
                http("POST", f"{drain}/undrain")
            served = {}
            load = {p: 0 for p in REGIONS}
            for n, (r, i) in enumerate(CLIENTS):
                a = query(sock, dns, n, f"10.{r}.{i}.0")
                served[(r, i)] = POOL_OF.get(a)
                if a in POOL_OF:
                    load[POOL_OF[a]] += 1
            if steered:
                for p in REGIONS:
                    http("PUT", f"{base}/api/v1/pools/{p}/load", {"value": load[p], "ttl": "10s"})
            rows.append((tick, load, served))
            time.sleep(max(0.0, args.tick - (time.time() - t0)))
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def summarize(name, rows, args):
    cap = args.capacity
    after = [r for r in rows if args.fail_at <= r[0] < args.back_at]
    peak = {p: max(r[1][p] for r in after) / cap for p in ["us", "ap"]}
    settle = None
    for k in range(len(after) - 3):
        window = after[k : k + 4]
        if all(max(r[1].values()) <= cap for r in window) and all(
            window[j][2] == window[0][2] for j in range(4)
        ):
            settle = window[0][0] - args.fail_at
            break
    back = [r for r in rows if r[0] >= args.back_at]
    jumps = [b[1]["eu"] - a[1]["eu"] for a, b in zip([rows[args.back_at - 1]] + back, back)]
    full = next((r[0] - args.back_at for r in back if r[1]["eu"] >= 100), None)
    print(
        f"{name}\tpeak us {peak['us']:.0%}\tpeak ap {peak['ap']:.0%}\t"
        f"settled after {settle if settle is not None else '>' + str(len(after))} ticks\t"
        f"return: largest jump {max(jumps)} clients/tick, eu whole after "
        f"{full if full is not None else '>' + str(len(back))} ticks"
    )
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--tick", type=float, default=1.0)
    ap.add_argument("--capacity", type=int, default=170)
    ap.add_argument("--slow", default="20s")
    ap.add_argument("--fail-at", type=int, default=3)
    ap.add_argument("--back-at", type=int, default=48)
    ap.add_argument("--ticks", type=int, default=80)
    args = ap.parse_args()
    print(f"capacity {args.capacity} per pool, 100 client /24s per region, tick {args.tick}s, "
          f"eu fails at tick {args.fail_at}, returns at {args.back_at}")
    for name, steered in [("plain", False), ("steered", True)]:
        summarize(name, run(args.binary, steered, args), args)


if __name__ == "__main__":
    main()
