#!/usr/bin/env bash
# Runs tests/admin_client/test_aio_kong.py against a real Gatehouse node.
#
# Uses $GATEHOUSE_BIN (default: debug/gatehouse under $CARGO_TARGET_DIR or target/, built when missing), starts it with a
# temp prefix on free loopback ports, runs the aio-kong test from a venv under target/ (created
# and filled when missing), stops the node by PID. Last line: "N passed, M failed".
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bin="${GATEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/debug/gatehouse}"
venv="${ADMIN_CLIENT_VENV:-$root/target/admin-client-venv}"

fail() {
  echo "admin_client: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

if [ ! -x "$bin" ]; then
  cargo build -p gatehouse >&2 || fail "cannot build gatehouse"
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import kong.client' 2>/dev/null; then
  python3 -m venv "$venv" >&2 || fail "cannot create a venv in $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check aio-kong >&2 ||
    fail "cannot install aio-kong"
fi

read -r proxy admin status < <("$venv/bin/python" - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
PY
)

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

KONG_PREFIX="$tmp/prefix" \
KONG_PROXY_LISTEN="127.0.0.1:$proxy" \
KONG_ADMIN_LISTEN="127.0.0.1:$admin" \
KONG_STATUS_LISTEN="127.0.0.1:$status" \
KONG_NGINX_WORKER_PROCESSES=1 \
  "$bin" start >"$tmp/gatehouse.log" 2>&1 &
pid=$!

url="http://127.0.0.1:$admin"
up=""
for _ in $(seq 100); do
  if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/status', timeout=1)" "$url" 2>/dev/null; then
    up=1
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  cat "$tmp/gatehouse.log" >&2
  fail "gatehouse did not come up on $url"
fi

GATEHOUSE_ADMIN_URL="$url" "$venv/bin/python" tests/admin_client/test_aio_kong.py | tee "$tmp/out"
rc=${PIPESTATUS[0]}
if ! tail -n 1 "$tmp/out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
  rc=1
  echo "0 passed, 1 failed"
fi
if [ "$rc" -ne 0 ]; then
  echo "--- gatehouse log ---" >&2
  tail -n 50 "$tmp/gatehouse.log" >&2
fi
exit "$rc"
