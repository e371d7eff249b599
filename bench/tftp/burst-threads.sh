#!/usr/bin/env bash
# Where a burst of TFTP transfers spends its CPU: ROUNDS (default 6, at most 20) rounds of one
# curl fetching undionly.kpxe 200 times at once (--parallel, blksize 1468), from this tree's
# appliance and from dnsmasq, both on `lo` of a network namespace this script creates and
# deletes, both pinned to CPU 0, curl to CPU 1. Per round: wall time, server CPU, and for ours
# the CPU of each of its threads (main, the TFTP transfer thread, V8's own), from
# /proc/<pid>/task/*/schedstat: how the cost moves from the first, cold burst to later ones.
#   sudo bash bench/tftp/burst-threads.sh        (needs firmware/undionly.kpxe: bash firmware/fetch.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "bench/tftp/burst-threads.sh: needs root (a network namespace)" >&2; exit 1; }
for tool in curl dnsmasq taskset ip; do command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "bench/tftp/burst-threads.sh: $tool is missing" >&2; exit 1; }; done
[ -f firmware/undionly.kpxe ] || { echo "bench/tftp/burst-threads.sh: no firmware/undionly.kpxe (bash firmware/fetch.sh)" >&2; exit 1; }
. bench/appliance.sh
ROUNDS=${ROUNDS:-6}
[ "$ROUNDS" -le 20 ] || ROUNDS=20
N=200
NS=bca-burst-$$.0
WORK=$(mktemp -d /tmp/bca-burst.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up

# `ip netns exec` and taskset exec what they run, so each PID is the server's own.
ip netns exec "$NS" taskset -c 0 "${APPLIANCE[@]}" --tftp-address 127.0.0.1:69 --tftp-max-per-client 1000 \
  --address 127.0.0.1:18080 --firmware-path firmware --log-format json --log-level info >"$WORK/ours.log" 2>&1 &
OURS=$!
PIDS+=("$OURS")
cp firmware/undionly.kpxe "$WORK/"
ip netns exec "$NS" taskset -c 0 dnsmasq --keep-in-foreground --port=0 --enable-tftp --tftp-root="$WORK" --listen-address=127.0.0.2 \
  --bind-interfaces --tftp-max=400 --log-facility="$WORK/dnsmasq.log" --pid-file= --user=root &
PEER=$!
PIDS+=("$PEER")
for _ in $(seq 1 200); do ip netns exec "$NS" curl -fs -o /dev/null http://127.0.0.1:18080/healthz && break; sleep 0.05; done
# What starts with the process (its threads, their modules) is done before the first burst, as on a provisioner booted long before its rack.
sleep 3

# CPU nanoseconds on the CPU (schedstat's first field), per thread and for the whole process: clock ticks are 10 ms, a round 100.
# Only threads alive at the time count; the appliance's threads all live as long as it does.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{n += $1} END {printf "%.0f\n", n}'; }
threads() { for t in /proc/"$1"/task/*; do echo "$(basename "$t") $(awk '{print $1}' "$t/schedstat")"; done | sort; }
burst() { # host server-pid → "<ms> ms, CPU <ms> ms, <n> of N intact"
  local args=(-s --max-time 20 --parallel --parallel-max "$N" --tftp-blksize 1468) k t0 t1 s e ok=0
  for k in $(seq 1 "$N"); do args+=(-o "$WORK/p$k" "tftp://$1/undionly.kpxe"); done
  t0=$(cpu_ns "$2")
  s=$(date +%s%N)
  ip netns exec "$NS" taskset -c 1 curl "${args[@]}" 2>/dev/null || true
  e=$(date +%s%N)
  t1=$(cpu_ns "$2")
  for k in $(seq 1 "$N"); do cmp -s "$WORK/p$k" firmware/undionly.kpxe && ok=$((ok + 1)); done
  rm -f "$WORK"/p*
  echo "$(((e - s) / 1000000)) ms, CPU $(((t1 - t0) / 1000000)) ms, $ok of $N intact"
}
echo "bench/tftp/burst-threads: $(date -u +%FT%TZ), $N transfers a round, servers on CPU 0, curl on CPU 1"
for r in $(seq 1 "$ROUNDS"); do
  before=$(threads "$OURS")
  line="round $r: ours $(burst 127.0.0.1 "$OURS")"
  after=$(threads "$OURS")
  per=$(join <(echo "$before") <(echo "$after") | awk -v main="$OURS" '$3 - $2 >= 500000 {printf " %s=%d", ($1 == main ? "main" : "thread " $1), ($3 - $2) / 1000000}')
  echo "$line | dnsmasq $(burst 127.0.0.2 "$PEER")"
  echo "    ours per thread (ms):$per"
done
