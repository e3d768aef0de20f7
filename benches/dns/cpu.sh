# Sourced by dns-cpu.sh, fleet-cpu.sh and rrl-cpu.sh: process CPU time per
# answered query at maximum rate, read from /proc around one dnsperf run
# pinned to core 1 (the server runs pinned to core 0). Expects $run/www.txt
# (the query file) and $DURATION.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

one() {  # one LABEL PID PORT [dnsperf options]: prints label, qps, lost, µs/query
  local label=$1 pid=$2 port=$3; shift 3
  local before after out qps lost
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$run/www.txt" -l 2 -c 10 -T 1 -q 500 -t 1 "$@" >/dev/null 2>&1
  before=$(ticks "$pid")
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$run/www.txt" -l "$DURATION" -c 10 -T 1 -q 500 -t 1 "$@" 2>&1)
  after=$(ticks "$pid")
  qps=$(echo "$out" | awk '/Queries per second/ {print $4}')
  lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
  python3 -c "q=$qps; t=($after-$before)/$hz; print(f'$label\t{q:.0f}\t$lost\t{t*1e6/(q*$DURATION):.2f}')"
}
