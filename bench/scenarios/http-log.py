"""http-log plugin on, logging to the upstream nginx (which answers 200 to the log POSTs)."""
DESCRIPTION = "1 route, global http-log to the upstream (batched)"
GOAL = {"text": "≥ 0.97× no-plugins RPS (issue 7)", "metric": "rps_x_scenario",
        "vs": "no-plugins-1-route", "min": 0.97}
PATH = "/bench"


def probe(ctx):
    """The plugin must really run: 20 proxied requests must make the upstream see log POSTs too."""
    import time
    from harness import procs, targets
    before = targets.upstream_requests(ctx["upstream_port"])
    for _ in range(20):
        procs.http_get(ctx["proxy_port"], PATH, timeout=2)
    time.sleep(2.5)  # > max_coalescing_delay
    after = targets.upstream_requests(ctx["upstream_port"])
    if None in (before, after):
        return "could not read the upstream request counter"
    if after - before <= 20:
        return f"http-log sent nothing: the upstream saw {after - before} requests for 20 proxied"
    return None


def kong_config(upstream_url):
    return {
        "_format_version": "3.0",
        "services": [{"name": "bench", "url": upstream_url,
                      "routes": [{"name": "bench", "paths": ["/bench"]}]}],
        "plugins": [{"name": "http-log", "config": {"http_endpoint": upstream_url + "/log",
                                                    "queue": {"max_batch_size": 100,
                                                              "max_coalescing_delay": 1}}}],
    }
