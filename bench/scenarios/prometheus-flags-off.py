"""prometheus plugin on (global) with every opt-in flag off: the baseline of `prometheus`."""
DESCRIPTION = "1 route, global prometheus plugin, all flags off"
GOAL = None
FLAGS = False
PATH = "/bench"


def probe(ctx):
    """The plugin must really run: /metrics on the status listener answers 200."""
    from harness import procs
    status, _ = procs.http_get(ctx["status_port"], "/metrics", timeout=5)
    return None if status == 200 else f"GET /metrics on the status listener -> {status}"


def kong_config(upstream_url):
    return {
        "_format_version": "3.0",
        "services": [{"name": "bench", "url": upstream_url,
                      "routes": [{"name": "bench", "paths": ["/bench"]}]}],
        "plugins": [{"name": "prometheus", "config": {
            "status_code_metrics": FLAGS, "latency_metrics": FLAGS, "bandwidth_metrics": FLAGS,
            "upstream_health_metrics": FLAGS, "per_consumer": FLAGS}}],
    }
