"""lmdb-shape under load while the whole config (Kong's LMDB benchmark shape, ~3.5 MB JSON) is
POSTed to /config every 2 s. Gatehouse only; every push must answer 201."""
import json

from harness import scenario as _scenario

NEEDS_ISSUE = "4"
DESCRIPTION = "lmdb-shape config; POST /config of it every 2 s during the load"
GOAL = {"text": "≥ 0.95× steady-state (lmdb-shape) RPS, no non-2xx (issue 4)",
        "metric": "rps_x_scenario", "vs": "lmdb-shape", "min": 0.95}
PATH = "/bench"
TARGETS = ["gatehouse"]
_push_scenario = _scenario.load("config-push")


def kong_config(upstream_url):
    return _scenario.load("lmdb-shape").kong_config(upstream_url)


def probe(ctx):
    return _push_scenario.module._push(ctx, json.dumps(kong_config(ctx["upstream_url"])).encode())


def during_load(ctx, stop):
    if not ctx.get("admin_port"):
        return []
    body = json.dumps(kong_config(ctx["upstream_url"])).encode()
    errors, pushes = [], 0
    while not stop.wait(2.0):
        err = _push_scenario.module._push(ctx, body)
        if err:
            errors.append(err)
        pushes += 1
    ctx.setdefault("notes", []).append(f"{pushes} pushes")
    return errors
