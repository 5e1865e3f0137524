"""GET /metrics on the status listener every 1 s under load, with ~100k series (prometheus on,
10,000 routes each producing status/latency series)."""
import http.client
import time
import urllib.request

DESCRIPTION = "10,000 routes + prometheus (~100k series); /metrics scraped every 1 s"
GOAL = {"text": "p99 < 1.2× without scraping (issue 7; metrics-noscrape)",
        "metric": "p99_x_scenario", "vs": "metrics-noscrape", "max": 1.2}
N = 10_000
# Routes given traffic before the first scrape: a route's series exist once it served a request
# (as in Kong), so 2,000 routes x (1 status code + 3 latency histograms) = ~100k series.
WARM = 2_000
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


def before_load(ctx):
    """Series appear once a route served a request (as in Kong): give WARM routes one request
    each (25 keep-alive connections in parallel) before the warm-up, so this burst is not part
    of the measured window (10k-routes has no such burst)."""
    if not ctx.get("status_port") or not ctx.get("target", "").startswith("gatehouse"):
        return []
    errors = []
    import threading

    def warm(part):
        conn = http.client.HTTPConnection("127.0.0.1", ctx["proxy_port"], timeout=10)
        for i in range(part, WARM, 25):
            try:
                conn.request("GET", f"/svc-{i:05d}/bench")
                conn.getresponse().read()
            except Exception as e:  # noqa: BLE001
                errors.append(f"warming route {i}: {e}")
                break
        conn.close()

    t0 = time.monotonic()
    workers = [threading.Thread(target=warm, args=(p,)) for p in range(25)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    ctx.setdefault("notes", []).append(
        f"warmed {WARM} routes in {1000 * (time.monotonic() - t0):.0f} ms")
    return errors


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
