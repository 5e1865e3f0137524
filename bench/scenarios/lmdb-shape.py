"""Kong's LMDB benchmark config (bench/gen_lmdb_config.py: 10k services + routes, each route with
key-auth and request-termination; 10k consumers with key-auth credentials) plus one plain
`/bench` route to the upstream, which wrk hits. The steady state of config-push-lmdb."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gen_lmdb_config import config  # noqa: E402

N = 10_000
DESCRIPTION = f"Kong's LMDB benchmark config (N={N}, 20k plugins, 10k credentials) + a plain /bench route"
PATH = "/bench"
TARGETS = ["gatehouse"]


def kong_config(upstream_url):
    doc = config(N)
    doc["services"].append({"name": "bench", "url": upstream_url,
                            "routes": [{"name": "bench", "paths": ["/bench"]}]})
    return doc
