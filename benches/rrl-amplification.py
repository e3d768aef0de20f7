#!/usr/bin/env python3
"""Amplification factor of a one-source UDP flood, response rate limiting on
vs off: DNS bytes answered / DNS bytes asked, counted at the flooding client.

Two geosteer processes (release build) serve the same zone, one with the
default [server.rrl] (loopback is exempt by default, so the flood comes from
127.0.0.2 and `exempt` is emptied), one with enabled = false. Each is sent
COUNT queries at RATE per second from one source for two kinds of query:
ANY at the apex, and the largest answer the zone holds (a TXT RRset of
about 1,100 bytes, asked with a 1,232-byte EDNS buffer).

    benches/rrl-amplification.py            # COUNT=5000 RATE=2500
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(TOP, "target")), "release", "geosteer")
COUNT = int(os.environ.get("COUNT", "5000"))
RATE = int(os.environ.get("RATE", "2500"))
SOURCE = "127.0.0.2"

ZONE = """$ORIGIN amp.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 14400 3600 1209600 300
@ IN NS ns1
@ IN NS ns2
@ IN MX 10 mail
@ IN TXT "v=spf1 -all"
ns1 IN A 127.0.0.1
ns2 IN A 127.0.0.2
mail IN A 192.0.2.25
big IN TXT "{a}" "{b}" "{c}" "{d}"
""".format(a="a" * 250, b="b" * 250, c="c" * 250, d="d" * 250)


def config(port, admin, rrl):
    return f"""[server]
dns_listen = ["127.0.0.1:{port}"]
admin_listen = "127.0.0.1:{admin}"
udp_workers = 1
{rrl}
[zones]
"amp.test" = "amp.test.zone"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(name, qtype, qid):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split("."))
    header = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1)
    opt = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return header + labels + b"\x00" + struct.pack(">HH", qtype, 1) + opt


def flood(port, name, qtype):
    """(bytes asked, bytes answered, answers, truncated answers)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((SOURCE, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    got = {"bytes": 0, "answers": 0, "tc": 0}
    stop = threading.Event()

    def receive():
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                data = s.recv(65535)
            except socket.timeout:
                continue
            got["bytes"] += len(data)
            got["answers"] += 1
            if len(data) > 2 and data[2] & 0x02:
                got["tc"] += 1

    t = threading.Thread(target=receive)
    t.start()
    sent = 0
    start = time.monotonic()
    for i in range(COUNT):
        q = query(name, qtype, i & 0xFFFF)
        s.sendto(q, ("127.0.0.1", port))
        sent += len(q)
        due = start + (i + 1) / RATE
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    time.sleep(1.0)
    stop.set()
    t.join()
    s.close()
    return sent, got["bytes"], got["answers"], got["tc"]


def main():
    if not os.access(BIN, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "--locked", "--manifest-path", os.path.join(TOP, "Cargo.toml")], check=True)
    run = tempfile.mkdtemp(prefix="geosteer-amp.")
    with open(os.path.join(run, "amp.test.zone"), "w") as f:
        f.write(ZONE)
    procs = []
    ports = {}
    for mode, rrl in [("off", "[server.rrl]\nenabled = false\n"), ("on", "[server.rrl]\nexempt = []\n")]:
        port, admin = free_port(), free_port()
        path = os.path.join(run, f"{mode}.toml")
        with open(path, "w") as f:
            f.write(config(port, admin, rrl))
        env = dict(os.environ, GEOSTEER_LOG="warn")
        procs.append(subprocess.Popen([BIN, "serve", "--config", path], cwd=run, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports[mode] = port
    time.sleep(2)
    try:
        print(f"# {COUNT} queries at {RATE}/s from {SOURCE}, DNS payload bytes")
        print("query\trrl\tasked_B\tanswered_B\tanswers\ttc\tamplification")
        for label, name, qtype in [("ANY amp.test", "amp.test.", 255), ("TXT big.amp.test", "big.amp.test.", 16)]:
            for mode in ["off", "on"]:
                sent, recv, answers, tc = flood(ports[mode], name, qtype)
                print(f"{label}\t{mode}\t{sent}\t{recv}\t{answers}\t{tc}\t{recv / sent:.2f}")
                # A fresh window for the next run (the accounts recover).
                time.sleep(1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
