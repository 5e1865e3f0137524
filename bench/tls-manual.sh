#!/bin/bash
# HTTPS keep-alive RPS, new TLS handshakes/s and h2 RPS: Gatehouse vs nginx with the same
# ECDSA P-256 certificate (see bench/RESULTS.md, "TLS, handshakes and HTTP/2").
# usage: bench/tls-manual.sh GATEHOUSE_BIN     (needs nginx, wrk, h2load, openssl, python3)
set -u
GH=$1; D=$(mktemp -d /tmp/tlsbench.XXXX)
mkdir -p $D/up $D/ng $D/gh
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $D/key.pem \
  -out $D/cert.pem -days 30 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" 2>/dev/null
cat > $D/up/nginx.conf <<EOF
worker_processes 1; daemon off; pid $D/up/nginx.pid; error_log $D/up/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000;
  server { listen 127.0.0.1:18080 reuseport backlog=4096;
    location / { return 200 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"; } } }
EOF
cat > $D/ng/nginx.conf <<EOF
worker_processes 1; daemon off; pid $D/ng/nginx.pid; error_log $D/ng/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000; ssl_session_cache shared:SSL:10m;
  upstream u { server 127.0.0.1:18080; keepalive 1024; keepalive_requests 10000; }
  server { listen 127.0.0.1:18443 ssl http2 reuseport backlog=4096;
    ssl_certificate $D/cert.pem; ssl_certificate_key $D/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
python3 - "$D" <<'EOF'
import json, sys
d = sys.argv[1]
doc = {"_format_version": "3.0",
       "certificates": [{"cert": open(f"{d}/cert.pem").read(), "key": open(f"{d}/key.pem").read(),
                         "snis": ["localhost"]}],
       "services": [{"name": "bench", "url": "http://127.0.0.1:18080",
                     "routes": [{"name": "bench", "paths": ["/bench"]}]}]}
open(f"{d}/gh/kong.yml", "w").write(json.dumps(doc))
open(f"{d}/gh/gatehouse.conf", "w").write(f"""prefix = {d}/gh/prefix
declarative_config = {d}/gh/kong.yml
proxy_listen = 127.0.0.1:19000 reuseport, 127.0.0.1:19443 ssl http2 reuseport
admin_listen = 127.0.0.1:19001
status_listen = 127.0.0.1:19100
nginx_worker_processes = 1
""")
EOF
taskset -c 1 nginx -p $D/up -c $D/up/nginx.conf & UP=$!
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
  taskset -c 0 $GH start -c $D/gh/gatehouse.conf > $D/gh/out.log 2>&1 & G=$!
  sleep 1
  bench "gatehouse-keepalive" 19443
  bench "gatehouse-handshakes" 19443 -H "Connection: close"
  taskset -c 1 h2load -n 200000 -c 50 -m 10 https://localhost:19443/bench 2>&1 | awk '/finished in/{print "gatehouse-h2", $0}'
  kill $G; wait $G 2>/dev/null
done
kill $UP; wait $UP 2>/dev/null
rm -rf $D
