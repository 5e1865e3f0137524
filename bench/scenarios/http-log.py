"""http-log plugin on, logging to the upstream nginx (which answers 200 to the log POSTs).
Placeholder until issue 6 (plugins) lands."""
NEEDS_ISSUE = "6, 7"
DESCRIPTION = "1 route, global http-log to the upstream (batched)"
GOAL = {"text": "≥ 0.97× no-plugins RPS (issue 7)", "metric": "rps_x_scenario",
        "vs": "no-plugins-1-route", "min": 0.97}
PATH = "/bench"


def kong_config(upstream_url):
    return {
        "_format_version": "3.0",
        "services": [{"name": "bench", "url": upstream_url,
                      "routes": [{"name": "bench", "paths": ["/bench"]}]}],
        "plugins": [{"name": "http-log", "config": {"http_endpoint": upstream_url + "/log",
                                                    "queue": {"max_batch_size": 100}}}],
    }
