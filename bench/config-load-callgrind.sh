#!/bin/bash
# Instructions of one POST /config of Kong's LMDB-benchmark config in a real gatehouse process
# (callgrind): starts BIN under valgrind, loads the config once (warm-up), zeroes the counters,
# loads it again, and prints the program total plus the top inclusive Gatehouse functions.
# usage: bench/config-load-callgrind.sh BIN [PORT_BASE] [N]
set -eu
BIN=$(realpath "$1"); P=${2:-29600}; N=${3:-10000}
D=$(mktemp -d /tmp/gh-cg-XXXXXX)
python3 "$(dirname "$0")/gen_lmdb_config.py" "$N" > "$D/config.json"
cat > "$D/gh.conf" <<EOC
prefix = $D/gh
database = off
proxy_listen = 127.0.0.1:$P
admin_listen = 127.0.0.1:$((P+1))
status_listen = 127.0.0.1:$((P+2))
nginx_worker_processes = 1
lmdb_map_size = 2048m
EOC
valgrind --tool=callgrind --callgrind-out-file="$D/cg.%p" "$BIN" start -c "$D/gh.conf" > "$D/log" 2>&1 &
VPID=$!
for _ in $(seq 120); do curl -s -o /dev/null "localhost:$((P+1))/status" && break; sleep 1; done
post() { curl -s -o /dev/null -w "$1 %{http_code}\n" -X POST "localhost:$((P+1))/config" \
  -H 'content-type: application/json' --data-binary "@$D/config.json"; }
post warm-up; sleep 10
callgrind_control -z "$VPID" > /dev/null
post measured; sleep 10   # the replaced snapshot is freed on a side thread after the answer
callgrind_control -d "$VPID" > /dev/null; sleep 2
kill "$VPID"; wait "$VPID" || true
F=$(ls -S "$D"/cg.* | head -1)
callgrind_annotate --inclusive=yes "$F" 2>/dev/null | grep -E "PROGRAM TOTALS|gatehouse_[a-z_]+::" | head -25
echo "profile: $F"
