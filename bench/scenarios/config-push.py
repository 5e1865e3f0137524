"""POST /config (the whole kong.yml of 10k-routes, Kong's LMDB-benchmark shape) to the Admin API
every 2 s under load.
Gatehouse only. Placeholder until issue 4 (Admin API, hot reload) lands: the pushes must return 201."""
import json
import time
import urllib.request

from harness import scenario as _scenario

NEEDS_ISSUE = "4"
DESCRIPTION = "10k-routes config; POST /config of it every 2 s during the load"
GOAL = {"text": "≥ 0.95× steady-state (10k-routes) RPS, no non-2xx (issue 4)",
        "metric": "rps_x_scenario", "vs": "10k-routes", "min": 0.95}
PATH = "/svc-09990/bench"


def kong_config(upstream_url):
    return _scenario.load("10k-routes").kong_config(upstream_url)


def _push(ctx, body):
    req = urllib.request.Request(f"http://127.0.0.1:{ctx['admin_port']}/config", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return None if resp.status in (200, 201) else f"POST /config -> {resp.status}"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return f"POST /config failed: {e}"


def probe(ctx):
    """Checked once before the rounds: None, or why Gatehouse cannot run this scenario yet."""
    return _push(ctx, json.dumps(kong_config(ctx["upstream_url"])).encode())


def during_load(ctx, stop):
    """Runs in a thread while wrk runs. Return a list of error strings (empty = fine)."""
    if not ctx.get("admin_port"):  # nginx/haproxy: no hook, they are the load control
        return []
    body = json.dumps(kong_config(ctx["upstream_url"])).encode()
    errors, pushes = [], 0
    while not stop.wait(2.0):
        t0 = time.monotonic()
        err = _push(ctx, body)
        if err:
            errors.append(err)
        pushes += 1
        ctx.setdefault("notes", []).append(f"push {pushes}: {1000 * (time.monotonic() - t0):.0f} ms")
    return errors
