"""New TLS connections per second: `Connection: close` makes every request a full handshake."""
DESCRIPTION = "one request per TLS connection (full handshake each, ECDSA P-256), 1 route"
TLS = True
TARGETS = ["gatehouse", "gatehouse-ref", "nginx"]
PATH = "/bench"
HEADERS = {"Connection": "close"}


def kong_config(upstream_url):
    return {
        "_format_version": "3.0",
        "services": [{"name": "bench", "url": upstream_url,
                      "routes": [{"name": "bench", "paths": ["/bench"]}]}],
    }
