#!/usr/bin/env bash
# HTTP benchmark of the bootcfg API against peers, run in one go so ratios compare like with like
# (shared/notes/peers.md: figures swing ±30 % between runs on this machine; only same-run ratios count).
#   1. requests/s of GET /ipxe?mac=…  vs a bare Koa 3 + router app returning the same script (wrk -t2 -c64)
#   2. MB/s of one 64 MiB image download, and of 20 in parallel, vs nginx (sendfile) serving the same file
# Servers are pinned to CPU 0, load generators to CPU 1; everything listens on 127.0.0.1 only and is
# stopped by PID on exit. Bounded: about a minute in total. Usage: bash bench/http/run.sh [SECONDS_PER_WRK_RUN]
set -euo pipefail
cd "$(dirname "$0")/../.."

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
taskset -c $SERVER_CPU node --import tsx src/main.ts --address 127.0.0.1:$APP_PORT --base-url http://127.0.0.1:$APP_PORT \
  --data-path "$WORK/data" --images-path "$WORK/images" --log-format json >/dev/null 2>"$WORK/app.err" &
PIDS+=($!)
wait_http "http://127.0.0.1:$APP_PORT/healthz"
IPXE_PATH="/ipxe?mac=$MAC"
curl -fs "http://127.0.0.1:$APP_PORT$IPXE_PATH" >"$WORK/script.ipxe"

taskset -c $SERVER_CPU node --import tsx bench/http/bare-koa.ts $KOA_PORT "$WORK/script.ipxe" >/dev/null &
PIDS+=($!)
wait_http "http://127.0.0.1:$KOA_PORT/ipxe"
cmp -s "$WORK/script.ipxe" <(curl -fs "http://127.0.0.1:$KOA_PORT$IPXE_PATH") || { echo "bench/http: peer body differs" >&2; exit 1; }

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
PIDS+=($!)
wait_http "http://127.0.0.1:$NGINX_PORT/images/os/vmlinuz"

wrk_rps() { # url → requests/s of one run
  taskset -c $CLIENT_CPU wrk -t2 -c64 -d"${DURATION}s" "$1" | awk '/^Requests\/sec:/ {print $2}'
}

max() { printf '%s\n' "$@" | sort -g | tail -1; }

single_mbs() { # url → median MB/s of 3 downloads (curl's average speed, bytes/s → MB/s)
  for _ in 1 2 3; do
    taskset -c $CLIENT_CPU curl -fs -o /dev/null -w '%{speed_download}\n' "$1"
  done | sort -n | sed -n 2p | awk '{printf "%.0f", $1 / 1e6}'
}

parallel_mbs() { # url → aggregate MB/s of 20 simultaneous downloads (wall clock)
  local args=() start end
  for i in $(seq 1 20); do args+=(-o /dev/null "$1?n=$i"); done
  start=$(date +%s.%N)
  taskset -c $CLIENT_CPU curl -fs --no-progress-meter --parallel --parallel-max 20 "${args[@]}" 2>/dev/null
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", 20 * 64 * 1048576 / (e - s) / 1e6 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "bench/http: $(date -u +%FT%TZ), $(nproc) CPUs, servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU, wrk ${DURATION}s -t2 -c64"
# Warm both up (JIT, connections), then alternate app/peer twice and keep each one's best run:
# other work on a shared machine then hurts both sides alike instead of whichever ran during it.
taskset -c $CLIENT_CPU wrk -t2 -c64 -d1s "http://127.0.0.1:$APP_PORT$IPXE_PATH" >/dev/null
taskset -c $CLIENT_CPU wrk -t2 -c64 -d1s "http://127.0.0.1:$KOA_PORT$IPXE_PATH" >/dev/null
A1=$(wrk_rps "http://127.0.0.1:$APP_PORT$IPXE_PATH"); K1=$(wrk_rps "http://127.0.0.1:$KOA_PORT$IPXE_PATH")
K2=$(wrk_rps "http://127.0.0.1:$KOA_PORT$IPXE_PATH"); A2=$(wrk_rps "http://127.0.0.1:$APP_PORT$IPXE_PATH")
APP_RPS=$(max "$A1" "$A2") KOA_RPS=$(max "$K1" "$K2")
printf '%-44s %10s req/s   bare Koa %10s req/s   ratio %s\n' "GET /ipxe?mac= ($(wc -c <"$WORK/script.ipxe") B script)" "$APP_RPS" "$KOA_RPS" "$(ratio "$APP_RPS" "$KOA_RPS")"

IMG=/images/os/initrd.img
cmp -s "$WORK/images/os/initrd.img" <(curl -fs "http://127.0.0.1:$APP_PORT$IMG") || { echo "bench/http: image differs" >&2; exit 1; }
APP_ONE=$(single_mbs "http://127.0.0.1:$APP_PORT$IMG")
NGX_ONE=$(single_mbs "http://127.0.0.1:$NGINX_PORT$IMG")
printf '%-44s %10s MB/s    nginx    %10s MB/s    ratio %s\n' "64 MiB image, one download" "$APP_ONE" "$NGX_ONE" "$(ratio "$APP_ONE" "$NGX_ONE")"
APP_PAR=$(parallel_mbs "http://127.0.0.1:$APP_PORT$IMG")
NGX_PAR=$(parallel_mbs "http://127.0.0.1:$NGINX_PORT$IMG")
printf '%-44s %10s MB/s    nginx    %10s MB/s    ratio %s\n' "64 MiB image, 20 in parallel (aggregate)" "$APP_PAR" "$NGX_PAR" "$(ratio "$APP_PAR" "$NGX_PAR")"
