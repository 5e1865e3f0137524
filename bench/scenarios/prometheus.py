"""prometheus plugin on (global). Placeholder until issues 6 (plugins) and 7 (prometheus) land."""
NEEDS_ISSUE = "6, 7"
DESCRIPTION = "1 route, global prometheus plugin"
GOAL = {"text": "≥ 0.97× no-plugins RPS (issue 7)", "metric": "rps_x_scenario",
        "vs": "no-plugins-1-route", "min": 0.97}
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
        "plugins": [{"name": "prometheus", "config": {"status_code_metrics": True,
                                                      "latency_metrics": True}}],
    }
