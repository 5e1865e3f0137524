"""key-auth + rate-limiting (local policy, limit never reached) on the route. Placeholder until the
plugin issue lands: Gatehouse rejects unknown plugins and the harness then skips with 'needs issue'."""
NEEDS_ISSUE = "6"
KEY = "bench-key-0123456789"
DESCRIPTION = "1 route with key-auth + rate-limiting (local, 1e9/s), 1 consumer"
GOAL = {"text": "≥ 0.90× no-plugins RPS (issue 6; Kong loses 24 %)", "metric": "rps_x_scenario",
        "vs": "no-plugins-1-route", "min": 0.90}
PATH = "/bench"
HEADERS = {"apikey": KEY}
# nginx/haproxy have no equivalent; nginx does a cheap header check so it does comparable work.
NGINX_LOCATION_EXTRA = f'            if ($http_apikey != "{KEY}") {{ return 401; }}\n'


def probe(ctx):
    """The plugins must really run: without the key the proxy must answer 401."""
    from harness import procs
    status, body = procs.http_get(ctx["proxy_port"], PATH, timeout=2)
    if status != 401:
        return f"key-auth not enforced: GET {PATH} without apikey -> {status} (expected 401)"
    return None


def kong_config(upstream_url):
    return {
        "_format_version": "3.0",
        "services": [{
            "name": "bench", "url": upstream_url,
            "routes": [{"name": "bench", "paths": ["/bench"], "plugins": [
                {"name": "key-auth", "config": {"key_names": ["apikey"]}},
                {"name": "rate-limiting",
                 "config": {"second": 1000000000, "policy": "local"}},
            ]}],
        }],
        "consumers": [{"username": "bench", "keyauth_credentials": [{"key": KEY}]}],
    }
