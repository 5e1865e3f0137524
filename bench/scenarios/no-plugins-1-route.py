"""One service, one prefix route, no plugins: the raw proxy path."""
DESCRIPTION = "1 service, 1 route (prefix /bench), no plugins"
GOAL = {"text": "≥ 1.0× nginx per core (issue 3)", "metric": "rps_x_nginx", "min": 1.0}
PATH = "/bench"          # what wrk requests
HEADERS = {}             # extra request headers for wrk and the readiness probe


def kong_config(upstream_url):
    """The kong.yml (as a dict; the harness writes it as YAML) that Gatehouse loads."""
    return {
        "_format_version": "3.0",
        "services": [{
            "name": "bench",
            "url": upstream_url,
            "routes": [{"name": "bench", "paths": ["/bench"]}],
        }],
    }
