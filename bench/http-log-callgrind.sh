#!/bin/bash
# Instructions per request with a global http-log plugin (or none), per thread, under callgrind:
# a local nginx upstream (`return 200`, 100-byte body) that also answers the log POSTs, BIN
# under `valgrind --tool=callgrind --separate-threads=yes` with one proxy thread and
# `proxy_access_log = off`, a warm-up, counters zeroed, `wrk -t1 -cC -dD`, dump; prints Ir per
# request for the proxy thread, the log shipper and all threads together.
# usage: bench/http-log-callgrind.sh BIN [http-log|none] [C] [D]
set -eu
BIN=$(realpath "$1"); MODE=${2:-http-log}; C=${3:-10}; DUR=${4:-10}
P=$((29700 + RANDOM % 200)); U=$((P + 5))
D=$(mktemp -d /tmp/gh-hl-XXXXXX)
mkdir -p "$D/up/logs"
cat > "$D/up/nginx.conf" <<EOC
worker_processes 1; daemon off; pid $D/up/nginx.pid; error_log $D/up/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $D/up; keepalive_requests 1000000;
  server { listen 127.0.0.1:$U;
    location / { default_type text/plain; return 200 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456\n"; } } }
EOC
nginx -p "$D/up" -c "$D/up/nginx.conf" > /dev/null 2>&1 &
NPID=$!
PLUGINS=""
if [ "$MODE" = http-log ]; then
  PLUGINS="plugins:
- name: http-log
  config: {http_endpoint: \"http://127.0.0.1:$U/log\", queue: {max_batch_size: 100, max_coalescing_delay: 1}}"
fi
cat > "$D/kong.yml" <<EOC
_format_version: "3.0"
services:
- name: bench
  url: http://127.0.0.1:$U
  routes:
  - name: bench
    paths: [/bench]
$PLUGINS
EOC
cat > "$D/gh.conf" <<EOC
prefix = $D/gh
database = off
declarative_config = $D/kong.yml
proxy_listen = 127.0.0.1:$P reuseport
admin_listen = 127.0.0.1:$((P+1))
status_listen = 127.0.0.1:$((P+2))
nginx_worker_processes = 1
proxy_access_log = off
EOC
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$D/cg.out" \
  "$BIN" start -c "$D/gh.conf" > "$D/log" 2>&1 &
VPID=$!
for _ in $(seq 120); do curl -s -o /dev/null "localhost:$P/bench" && break; sleep 1; done
wrk -t1 -c"$C" -d3s "http://127.0.0.1:$P/bench" > /dev/null; sleep 2
callgrind_control --zero "$VPID" > /dev/null
wrk -t1 -c"$C" -d"${DUR}s" "http://127.0.0.1:$P/bench" > "$D/wrk.txt"
sleep 2   # the shipper drains what is queued (max_coalescing_delay 1 s)
callgrind_control --dump=measured "$VPID" > /dev/null; sleep 2
kill "$VPID"; wait "$VPID" 2>/dev/null || true
kill "$NPID"; wait "$NPID" 2>/dev/null || true
N=$(awk '/requests in/ {print $1}' "$D/wrk.txt")
echo "mode=$MODE c=$C requests=$N"
total=0
for f in "$D"/cg.out.*-[0-9][0-9]; do
  grep -q '^desc: Trigger: .*measured' "$f" || continue
  ir=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
  [ -n "$ir" ] || ir=$(grep -m1 '^totals:' "$f" | awk '{print $2}')
  [ -n "$ir" ] || continue
  total=$((total + ir))
  name=$(grep -m1 '^thread:' "$f" || true)
  top=$(callgrind_annotate --inclusive=yes "$f" 2>/dev/null | grep -E 'gatehouse_[a-z_]+::' | head -1 | cut -c1-110)
  [ "$ir" -gt $((N * 50)) ] && printf '%-12s %8.0f Ir/req  %s\n' "${f##*-}" "$(echo "$ir / $N" | bc -l)" "$top"
done
printf 'all threads  %8.0f Ir/req\n' "$(echo "$total / $N" | bc -l)"
echo "profiles: $D"
