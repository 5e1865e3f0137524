"""HTTP/2 over TLS (ALPN h2), 10 concurrent streams per connection, measured with h2load."""
DESCRIPTION = "h2 over TLS, h2load -m10, 1 route (upstream still HTTP/1.1 keep-alive)"
TLS = True
LOAD = "h2load"
TARGETS = ["gatehouse", "gatehouse-ref", "nginx"]
PATH = "/bench"
HEADERS = {}


def kong_config(upstream_url):
    return {
        "_format_version": "3.0",
        "services": [{"name": "bench", "url": upstream_url,
                      "routes": [{"name": "bench", "paths": ["/bench"]}]}],
    }
