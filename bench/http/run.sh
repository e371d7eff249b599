#!/usr/bin/env bash
# HTTP benchmark of the bootcfg API against peers, run in one go so ratios compare like with like
# (shared/notes/peers.md: figures swing ±30 % between runs on this machine; only same-run ratios count).
#   1. requests/s of the boot routes GET /boot.ipxe, /ipxe?mac=…, /grub?mac=… vs a bare Koa 3 + router app
#      returning the same text on the same paths (wrk -t2 -c64)
#   2. MB/s of one 64 MiB image download, and of 20 in parallel, vs nginx (sendfile) serving the same file
# Each is also given as server CPU time per request or per MiB, steadier than rates on a shared machine.
# Servers are pinned to CPU 0, load generators to CPU 1; everything listens on 127.0.0.1 only and is
# stopped by PID on exit. Bounded: about a minute in total. Usage: bash bench/http/run.sh [SECONDS_PER_WRK_RUN]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/appliance.sh

DURATION=${1:-4}
for tool in wrk curl nginx taskset; do
  command -v "$tool" >/dev/null || { [ -x "/usr/sbin/$tool" ] || { echo "bench/http: $tool is missing" >&2; exit 1; }; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
CPUS=$(nproc)
if [ "$CPUS" -ge 2 ]; then SERVER_CPU=0; CLIENT_CPU=1; else SERVER_CPU=0; CLIENT_CPU=0; fi

WORK=$(mktemp -d /tmp/bca-bench-http.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody when started by root
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT_BASE=$((20000 + RANDOM % 20000))
APP_PORT=$PORT_BASE KOA_PORT=$((PORT_BASE + 1)) NGINX_PORT=$((PORT_BASE + 2))
MAC=52:54:00:be:0c:01

mkdir -p "$WORK/data/boot/mac" "$WORK/images/os"
cat >"$WORK/data/boot/default.json" <<JSON
{ "kernel": "/images/os/vmlinuz", "initrd": ["/images/os/initrd.img"], "cmdline": { "console": "ttyS0" } }
JSON
cat >"$WORK/data/boot/mac/$MAC.json" <<JSON
{ "kernel": "/images/os/vmlinuz", "initrd": ["/images/os/initrd.img"],
  "cmdline": { "console": "ttyS0,115200n8", "root": "/dev/nfs", "ip": "dhcp", "quiet": true, "cloud-config-url": "{{base_url}}/cloud?mac=\${mac:hexhyp}" } }
JSON
head -c $((64 * 1024 * 1024)) /dev/urandom >"$WORK/images/os/initrd.img"
head -c 1024 /dev/urandom >"$WORK/images/os/vmlinuz"

wait_http() { # url
  for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "bench/http: $1 did not come up" >&2; exit 1
}

# The appliance as users run it (JSON logs at info, one line per request, to /dev/null).
taskset -c $SERVER_CPU "${APPLIANCE[@]}" --address 127.0.0.1:$APP_PORT --base-url http://127.0.0.1:$APP_PORT \
  --data-path "$WORK/data" --images-path "$WORK/images" --log-format json >/dev/null 2>"$WORK/app.err" &
APP_PID=$!
PIDS+=($APP_PID)
wait_http "http://127.0.0.1:$APP_PORT/healthz"
# The boot routes, each with the text the peer answers on the same path.
BOOT_PATHS=("/boot.ipxe" "/ipxe?mac=$MAC" "/grub?mac=$MAC")
KOA_ROUTES=()
for i in "${!BOOT_PATHS[@]}"; do
  curl -fs "http://127.0.0.1:$APP_PORT${BOOT_PATHS[$i]}" >"$WORK/route$i.txt"
  KOA_ROUTES+=("${BOOT_PATHS[$i]%%\?*}=$WORK/route$i.txt")
done

taskset -c $SERVER_CPU node --import tsx bench/http/bare-koa.ts $KOA_PORT "${KOA_ROUTES[@]}" >/dev/null &
KOA_PID=$!
PIDS+=($KOA_PID)
wait_http "http://127.0.0.1:$KOA_PORT/boot.ipxe"
for i in "${!BOOT_PATHS[@]}"; do
  cmp -s "$WORK/route$i.txt" <(curl -fs "http://127.0.0.1:$KOA_PORT${BOOT_PATHS[$i]}") || { echo "bench/http: peer body of ${BOOT_PATHS[$i]} differs" >&2; exit 1; }
done

mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  types { application/octet-stream img; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /images/ { root $WORK; }
  }
}
CONF
taskset -c $SERVER_CPU "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
NGINX_PID=$!
PIDS+=($NGINX_PID)
wait_http "http://127.0.0.1:$NGINX_PORT/images/os/vmlinuz"

TCK=$(getconf CLK_TCK)
# CPU ticks (user+sys) of a server process and its children (nginx's worker): the cost per request
# or per MiB is steadier than throughput when other work shares the machine.
ticks() { local t=0 p; for p in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }

# Each measurement prints "<rate> <server CPU per unit>".
wrk_run() { # pid url → requests/s and CPU µs per request
  local t0 t1 out
  t0=$(ticks "$1")
  out=$(taskset -c $CLIENT_CPU wrk -t2 -c64 -d"${DURATION}s" "$2")
  t1=$(ticks "$1")
  awk -v t0="$t0" -v t1="$t1" -v hz="$TCK" '/requests in/ {n = $1} /^Requests\/sec:/ {r = $2} END {printf "%s %.1f\n", r, (t1 - t0) / hz * 1e6 / n}' <<<"$out"
}

single_run() { # pid url → median MB/s of 3 downloads and CPU ms per MiB
  local t0 t1 speed
  t0=$(ticks "$1")
  speed=$(for _ in 1 2 3; do taskset -c $CLIENT_CPU curl -fs -o /dev/null -w '%{speed_download}\n' "$2"; done | sort -n | sed -n 2p)
  t1=$(ticks "$1")
  awk -v b="$speed" -v t0="$t0" -v t1="$t1" -v hz="$TCK" 'BEGIN {printf "%.0f %.2f\n", b / 1e6, (t1 - t0) / hz * 1e3 / (3 * 64)}'
}

parallel_run() { # pid url → aggregate MB/s of 20 simultaneous downloads (wall clock) and CPU ms per MiB
  local args=() start end t0 t1 i
  for i in $(seq 1 20); do args+=(-o /dev/null "$2?n=$i"); done
  t0=$(ticks "$1"); start=$(date +%s.%N)
  taskset -c $CLIENT_CPU curl -fs --no-progress-meter --parallel --parallel-max 20 "${args[@]}" 2>/dev/null
  end=$(date +%s.%N); t1=$(ticks "$1")
  awk -v s="$start" -v e="$end" -v t0="$t0" -v t1="$t1" -v hz="$TCK" 'BEGIN {printf "%.0f %.2f\n", 20 * 64 * 1048576 / (e - s) / 1e6, (t1 - t0) / hz * 1e3 / (20 * 64)}'
}

# Alternates app, peer, peer, app and keeps each side's best rate and lowest CPU cost: other work
# on a shared machine then hurts both sides alike instead of whichever ran during it.
best_of_two() { # fn app_pid app_url peer_pid peer_url → "app_rate app_cpu peer_rate peer_cpu"
  local a1 p1 p2 a2
  a1=$($1 "$2" "$3"); p1=$($1 "$4" "$5"); p2=$($1 "$4" "$5"); a2=$($1 "$2" "$3")
  printf '%s\n%s\n' "$a1" "$a2" | awk '{ if ($1 > r) r = $1; if (c == "" || $2 < c) c = $2 } END {printf "%s %s ", r, c}'
  printf '%s\n%s\n' "$p1" "$p2" | awk '{ if ($1 > r) r = $1; if (c == "" || $2 < c) c = $2 } END {printf "%s %s\n", r, c}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "bench/http: $(date -u +%FT%TZ), $(nproc) CPUs, servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU, wrk ${DURATION}s -t2 -c64"
echo "  rate ratio = app/peer (higher is better); CPU ratio = peer/app server CPU per request or MiB (>1: app is cheaper)"
APP=http://127.0.0.1:$APP_PORT KOA=http://127.0.0.1:$KOA_PORT NGX=http://127.0.0.1:$NGINX_PORT
for i in "${!BOOT_PATHS[@]}"; do
  BOOT_PATH=${BOOT_PATHS[$i]}
  taskset -c $CLIENT_CPU wrk -t2 -c64 -d1s "$APP$BOOT_PATH" >/dev/null # warm-up (JIT, connections)
  taskset -c $CLIENT_CPU wrk -t2 -c64 -d1s "$KOA$BOOT_PATH" >/dev/null
  read -r AR AC KR KC <<<"$(best_of_two wrk_run "$APP_PID" "$APP$BOOT_PATH" "$KOA_PID" "$KOA$BOOT_PATH")"
  printf '%-34s app %7s req/s %6s µs CPU | bare Koa %7s req/s %6s µs CPU | rate ratio %s, CPU ratio %s\n' \
    "GET ${BOOT_PATH%%\?*}$([[ $BOOT_PATH == *\?* ]] && echo '?mac=') ($(wc -c <"$WORK/route$i.txt") B)" "$AR" "$AC" "$KR" "$KC" "$(ratio "$AR" "$KR")" "$(ratio "$KC" "$AC")"
done

IMG=/images/os/initrd.img
cmp -s "$WORK/images/os/initrd.img" <(curl -fs "$APP$IMG") || { echo "bench/http: image differs" >&2; exit 1; }
read -r AR AC NR NC <<<"$(best_of_two single_run "$APP_PID" "$APP$IMG" "$NGINX_PID" "$NGX$IMG")"
printf '%-34s app %7s MB/s %6s ms/MiB | nginx   %7s MB/s %6s ms/MiB | rate ratio %s, CPU ratio %s\n' \
  "64 MiB image, one download" "$AR" "$AC" "$NR" "$NC" "$(ratio "$AR" "$NR")" "$(ratio "$NC" "$AC")"
read -r AR AC NR NC <<<"$(best_of_two parallel_run "$APP_PID" "$APP$IMG" "$NGINX_PID" "$NGX$IMG")"
printf '%-34s app %7s MB/s %6s ms/MiB | nginx   %7s MB/s %6s ms/MiB | rate ratio %s, CPU ratio %s\n' \
  "64 MiB image, 20 in parallel" "$AR" "$AC" "$NR" "$NC" "$(ratio "$AR" "$NR")" "$(ratio "$NC" "$AC")"
