"""GET /metrics on the status listener every 1 s under load, with ~100k series (prometheus on,
10,000 routes each producing status/latency series)."""
import time
import urllib.request

DESCRIPTION = "10,000 routes + prometheus (~100k series); /metrics scraped every 1 s"
GOAL = {"text": "p99 < 1.2× without scraping (issue 7; approximated by 10k-routes)",
        "metric": "p99_x_scenario", "vs": "10k-routes", "max": 1.2}
N = 10_000
PATH = "/svc-09990/bench"


def kong_config(upstream_url):
    return {
        "_format_version": "3.0",
        "services": [{"name": f"svc-{i:05d}", "url": upstream_url,
                      "routes": [{"name": f"r-{i:05d}", "paths": [f"/svc-{i:05d}"]}]}
                     for i in range(N)],
        "plugins": [{"name": "prometheus", "config": {"status_code_metrics": True,
                                                      "latency_metrics": True,
                                                      "per_consumer": False}}],
    }


def probe(ctx):
    """Checked once before the rounds: None, or why Gatehouse cannot run this scenario yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ctx['status_port']}/metrics",
                                    timeout=10) as resp:
            return None if resp.status == 200 else f"GET /metrics -> {resp.status}"
    except Exception as e:  # noqa: BLE001
        return f"GET /metrics failed: {e}"


def during_load(ctx, stop):
    if not ctx.get("status_port") or not ctx.get("target", "").startswith("gatehouse"):
        return []
    errors = []
    while not stop.wait(1.0):
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ctx['status_port']}/metrics",
                                        timeout=10) as resp:
                size = len(resp.read())
                if resp.status != 200:
                    errors.append(f"GET /metrics -> {resp.status}")
        except Exception as e:  # noqa: BLE001
            errors.append(f"GET /metrics failed: {e}")
            continue
        ctx.setdefault("notes", []).append(
            f"scrape {size} B in {1000 * (time.monotonic() - t0):.0f} ms")
    return errors
