#!/bin/bash
# Gateway CPU per /metrics scrape over the metrics-scrape shape (10k routes + prometheus, 2,000
# routes given one request each, ~100k series, ~10 MB), with the proxy idle: BIN pinned to CPU0,
# a local nginx upstream, S scrapes with curl; prints ms of process CPU (utime+stime of every
# thread: the render thread, the status API's transport, the kernel's socket work) per scrape,
# the exposition size and the process's peak RSS. CPU time, not wall time: a busy box slows a
# scrape down but does not change what it costs.
# usage: bench/metrics-scrape-cpu.sh BIN [S]
set -eu
BIN=$(realpath "$1"); N=${2:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
D=$(mktemp -d /tmp/gh-ms-XXXXXX)
P=$((31000 + RANDOM % 500)); U=$((P + 5))
mkdir -p "$D/up"
cat > "$D/up/nginx.conf" <<EOC
worker_processes 1; daemon off; pid $D/up/nginx.pid; error_log $D/up/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $D/up;
  server { listen 127.0.0.1:$U; location / { return 200 "ok"; } } }
EOC
nginx -p "$D/up" -c "$D/up/nginx.conf" > /dev/null 2>&1 &
NPID=$!
python3 - "$U" "$HERE/scenarios/metrics-scrape.py" > "$D/kong.json" <<'EOP'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("scenario", sys.argv[2])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
print(json.dumps(m.kong_config(f"http://127.0.0.1:{sys.argv[1]}")))
EOP
cat > "$D/gh.conf" <<EOC
prefix = $D/gh
database = off
declarative_config = $D/kong.json
proxy_listen = 127.0.0.1:$P reuseport
admin_listen = 127.0.0.1:$((P + 1))
status_listen = 127.0.0.1:$((P + 2))
nginx_worker_processes = 1
proxy_access_log = off
EOC
taskset -c 0 "$BIN" start -c "$D/gh.conf" > "$D/log" 2>&1 &
GPID=$!
for _ in $(seq 240); do curl -s -o /dev/null "127.0.0.1:$P/svc-00001/bench" && break; sleep 0.5; done
python3 - "$P" "$HERE/scenarios/metrics-scrape.py" <<'EOP'
import http.client, importlib.util, sys
spec = importlib.util.spec_from_file_location("scenario", sys.argv[2])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(m.WARM):
    c.request("GET", f"/svc-{i:05d}/bench")
    c.getresponse().read()
EOP
cpu() { awk '{print $14 + $15}' "/proc/$GPID/stat"; }
curl -s "127.0.0.1:$((P + 2))/metrics" > "$D/metrics.txt"
sleep 1
TICK=$(getconf CLK_TCK)
c0=$(cpu)
for _ in $(seq "$N"); do curl -s -o /dev/null "127.0.0.1:$((P + 2))/metrics"; done
c1=$(cpu)
echo "scrapes=$N bytes=$(wc -c < "$D/metrics.txt") cpu_ms_per_scrape=$(echo "($c1 - $c0) * 1000 / $TICK / $N" | bc -l | cut -c1-5) peak_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$GPID/status")"
kill "$GPID"; wait "$GPID" 2>/dev/null || true
kill "$NPID"; wait "$NPID" 2>/dev/null || true
rm -rf "$D"
