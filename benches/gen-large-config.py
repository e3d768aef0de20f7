#!/usr/bin/env python3
"""Writes a large geosteer config for the scale checks of benches/scale.sh:
10,000 balanced names, 1,000 pools, 20,000 endpoints, and one geo name whose
`subnets` map holds 1,000,000 prefixes (sizes adjustable by flags).

    benches/gen-large-config.py OUT_DIR [--names N] [--pools N] [--endpoints-per-pool N]
                                        [--prefixes N] [--port P] [--admin-port P]

The format is the one in docs/src/configuration.md: `[pools.NAME]` tables, one `[[balance]]`
per name, and the big map as a `[balance.subnets]` table with one
`"prefix" = ["pool", ...]` per line (the form `geosteer` reads fastest).
"""
import argparse, ipaddress, os, random

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--names", type=int, default=10_000)
ap.add_argument("--pools", type=int, default=1_000)
ap.add_argument("--endpoints-per-pool", type=int, default=20)
ap.add_argument("--prefixes", type=int, default=1_000_000)
ap.add_argument("--port", type=int, default=5311)
ap.add_argument("--admin-port", type=int, default=None)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
rnd = random.Random(7)

with open(os.path.join(a.out, "example.test.zone"), "w") as z:
    z.write("$ORIGIN example.test.\n$TTL 300\n"
            "@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60\n"
            "@ IN NS ns1.example.test.\nns1 IN A 127.0.0.1\nstatic IN A 192.0.2.10\n")

with open(os.path.join(a.out, "geosteer.toml"), "w") as f:
    f.write(f'[server]\ndns_listen = ["127.0.0.1:{a.port}"]\nadmin_listen = "127.0.0.1:{a.admin_port or a.port + 1000}"\nudp_workers = 1\n\n')
    f.write('[zones]\n"example.test" = "example.test.zone"\n\n')
    for p in range(a.pools):
        f.write(f"[pools.p{p}]\nlocation = [{rnd.uniform(-60, 60):.2f}, {rnd.uniform(-179, 179):.2f}]\nendpoints = [")
        eps = []
        for e in range(a.endpoints_per_pool):
            n = p * a.endpoints_per_pool + e
            eps.append(f'{{ address = "10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" }}')
        f.write(", ".join(eps) + "]\n")
    f.write("\n")
    policies = ["geo", "failover", "weighted", "random", "proximity", "latency"]
    for i in range(a.names):
        pools = rnd.sample(range(a.pools), 3)
        pl = ", ".join(f'"p{x}"' for x in pools)
        f.write(f'[[balance]]\nname = "n{i}.example.test"\npolicy = "{policies[i % len(policies)]}"\npools = [{pl}]\n')
    # www: geo with the big subnets map (distinct /24s spread over IPv4 space).
    f.write('[[balance]]\nname = "www.example.test"\npolicy = "geo"\npools = ["p0", "p1", "p2"]\n')
    f.write("[balance.subnets]\n")
    step = (2**32 - 2**24) // a.prefixes
    base = 2**24
    for k in range(a.prefixes):
        net = ipaddress.IPv4Network(((base + k * step) & ~0xFF, 24))
        f.write(f'"{net}" = ["p{k % a.pools}"]\n')
print(f"wrote {a.out}/geosteer.toml: {a.names + 1} names, {a.pools} pools, "
      f"{a.pools * a.endpoints_per_pool} endpoints, {a.prefixes} prefixes")
