#!/usr/bin/env bash
# A signed geo answer's cost: process CPU time per answered query at maximum
# rate (as dns-cpu.sh measures it) for www.example.test A with ECS, with
# and without the DO bit, from one geosteer serving the shared bench config
# signed with one ECDSA P-256 key ([dnssec], answers = 1), and Knot serving
# the peers' static zone signed online (dnssec-signing: on, ECDSA P-256)
# asked with DO, in one run, alternating round by round.
#   benches/dnssec-cpu.sh                    # 3 rounds of 10 s each
# Then one round of denials with DO (DENIALS=0 skips it): NODATA at the
# balanced name (prepared), the same missing name (proof cached) and 100,000
# distinct ones (each signed when asked; with NSEC=chain, proved by the
# zone's NSEC chain signed in advance: nothing is signed when asked).
#   NSEC=chain benches/dnssec-cpu.sh       # [dnssec] nsec = "chain"
# Env: ROUNDS=3 DURATION=10 DENIALS=1 NSEC=compact
# Needs: apt-get install dnsperf knot openssl
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$top/../shared/bench}
bin=${CARGO_TARGET_DIR:-$top/target}/release/geosteer
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10}
run=$(mktemp -d /tmp/geosteer-dnssec-cpu.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"; }
trap cleanup EXIT
[ -x "$bin" ] || cargo build --release --locked --manifest-path "$top/Cargo.toml" >&2
yes "www.example.test A" | head -100000 >"$run/www.txt"
# Denials with DO: one name over and over (its proof cached after the first)
# and 100,000 distinct names (each proof signed on the spot).
yes "nope.example.test A" | head -100000 >"$run/nx-same.txt"
yes "www.example.test MX" | head -100000 >"$run/nodata.txt"
seq 1 100000 | sed 's/^/n/; s/$/.example.test A/' >"$run/nx-random.txt"

python3 "$bench/dns/hc-listener.py" 8081 >"$run/hc.log" 2>&1 & pids+=($!)
cp "$top/benches/dns/example.test.zone" "$run/"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$run/zone.pem" 2>/dev/null
sed -e 's|"../../geoip/|"'"$top"'/geoip/|' \
    -e 's|127.0.0.1:5310|127.0.0.1:5314|; s|127.0.0.1:8054|127.0.0.1:8058|' \
    "$top/benches/dns/geosteer.toml" >"$run/geosteer.toml"
printf '\n[dnssec."example.test"]\nkeys = ["zone.pem"]\nnsec = "%s"\n' "${NSEC:-compact}" >>"$run/geosteer.toml"
(cd "$run" && GEOSTEER_LOG=warn exec taskset -c 0 "$bin" serve --config geosteer.toml) >"$run/geosteer.log" 2>&1 & gs=$!; pids+=($gs)

mkdir -p "$run/knot/db" "$run/knot/keys" "$run/knot/zone"
cp "$bench/dns/zone/example.test.zone" "$run/knot/zone/"
cat >"$run/knot/knot.conf" <<EOF
server:
    rundir: "$run/knot"
    listen: 127.0.0.1@5315
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$run/knot/db"
keystore:
  - id: pem
    backend: pem
    config: "$run/knot/keys"
policy:
  - id: signed
    algorithm: ecdsap256sha256
    single-type-signing: on
    nsec3: off
    keystore: pem
template:
  - id: default
    storage: "$run/knot/zone"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: example.test
    dnssec-signing: on
    dnssec-policy: signed
EOF
(exec taskset -c 0 /usr/sbin/knotd -c "$run/knot/knot.conf") >"$run/knot.log" 2>&1 & knot=$!; pids+=($knot)
sleep 4
dig @127.0.0.1 -p 5314 www.example.test A +dnssec +subnet=5.9.0.0/24 | grep -q RRSIG || { echo "geosteer does not sign" >&2; cat "$run/geosteer.log" >&2; exit 1; }
dig @127.0.0.1 -p 5315 www.example.test A +dnssec | grep -q RRSIG || { echo "knot does not sign" >&2; cat "$run/knot.log" >&2; exit 1; }

# shellcheck source=dns/cpu.sh
. "$top/benches/dns/cpu.sh"

printf "server\tqps\tlost\tcpu_us_per_query\n"
for r in $(seq "$ROUNDS"); do
  one geosteer-ecs "$gs" 5314 -E 8:00011800050901
  one geosteer-ecs-do "$gs" 5314 -E 8:00011800050901 -D
  one knot-signed-do "$knot" 5315 -D
done
if [ "${DENIALS:-1}" = 1 ]; then
  cp "$run/www.txt" "$run/www.keep"
  cp "$run/nodata.txt" "$run/www.txt"
  one geosteer-nodata-do "$gs" 5314 -D
  for kind in same random; do
    cp "$run/nx-$kind.txt" "$run/www.txt"
    one "geosteer-nxdomain-do-$kind" "$gs" 5314 -D
  done
  cp "$run/www.keep" "$run/www.txt"
fi
curl -sf http://127.0.0.1:8058/metrics | grep '^geosteer_dnssec_signatures_total' || true
