"""HTTPS keep-alive: TLS termination cost per request once the connection is up."""
DESCRIPTION = "HTTPS keep-alive (TLS 1.3, ECDSA P-256, same certificate), 1 route"
GOAL = {"text": "≥ 1.0× nginx per core (issue 9)", "metric": "rps_x_nginx", "min": 1.0}
TLS = True
TARGETS = ["gatehouse", "gatehouse-ref", "nginx"]  # haproxy is not set up for TLS here
PATH = "/bench"
HEADERS = {}


def kong_config(upstream_url):
    return {
        "_format_version": "3.0",
        "services": [{"name": "bench", "url": upstream_url,
                      "routes": [{"name": "bench", "paths": ["/bench"]}]}],
    }
