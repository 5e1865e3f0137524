#!/bin/bash
# Manual HTTPS / TLS-handshake / h2 comparison with nginx (same ECDSA P-256 certificate); see bench/RESULTS.md.
# Expects the configs under /tmp/tlsbench (nginx upstream on 18080, nginx TLS proxy on 18443,
# gatehouse with the certificate in kong.yml on 19443) as described there.
# usage: run.sh GATEHOUSE_BIN
set -u
GH=$1; D=/tmp/tlsbench
cleanup() { for p in $(cat $D/pids 2>/dev/null); do kill $p 2>/dev/null; done; rm -f $D/pids; }
cleanup
taskset -c 1 nginx -p $D/up -c $D/up/nginx.conf & echo $! >> $D/pids
sleep 0.5
bench() { # name port extra-args
  local name=$1 port=$2; shift 2
  taskset -c 1 wrk -t1 -c50 -d8s "$@" https://localhost:$port/bench 2>&1 | awk -v n="$name" '/Requests\/sec/{print n, $2}'
}
for round in 1 2; do
  taskset -c 0 nginx -p $D/ng -c $D/ng/nginx.conf & NG=$!
  sleep 0.5
  bench "nginx-keepalive" 18443
  bench "nginx-handshakes" 18443 -H "Connection: close"
  taskset -c 1 h2load -n 200000 -c 50 -m 10 https://localhost:18443/bench 2>&1 | awk '/finished in/{print "nginx-h2", $0}'
  kill $NG; wait $NG 2>/dev/null
  rm -rf $D/gh/prefix
  taskset -c 0 $GH start -c $D/gh/gatehouse.conf > $D/gh/out.log 2>&1 & G=$!
  sleep 1
  bench "gatehouse-keepalive" 19443
  bench "gatehouse-handshakes" 19443 -H "Connection: close"
  taskset -c 1 h2load -n 200000 -c 50 -m 10 https://localhost:19443/bench 2>&1 | awk '/finished in/{print "gatehouse-h2", $0}'
  kill $G; wait $G 2>/dev/null
done
cleanup
