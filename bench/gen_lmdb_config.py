#!/usr/bin/env python3
"""Kong's LMDB benchmark shape: N services + routes, N consumers with key-auth credentials,
key-auth and request-termination on every route. Deterministic (no randomness).
`python3 bench/gen_lmdb_config.py N > config.json`; scenarios import `config(n)`."""
import json
import sys


def config(n, url_of=lambda i: f"http://127.0.0.1:9/{i}"):
    services, consumers = [], []
    for i in range(n):
        route = {"name": f"route-{i:05d}", "paths": [f"/svc-{i:05d}"],
                 "plugins": [{"name": "key-auth", "config": {"key_names": ["apikey"]}},
                             {"name": "request-termination", "config": {"status_code": 200, "message": "ok"}}]}
        if i % 10 == 1:
            route["paths"] = [f"~/svc-{i:05d}/item/[0-9]+$"]
        if i % 10 == 2:
            route["hosts"] = [f"svc-{i:05d}.example.test"]
        if i % 20 == 3:
            route["headers"] = {"x-tenant": [f"t{i}"]}
        services.append({"name": f"svc-{i:05d}", "url": url_of(i), "routes": [route]})
        consumers.append({"username": f"user-{i:05d}", "keyauth_credentials": [{"key": f"key-{i:05d}"}]})
    return {"_format_version": "3.0", "services": services, "consumers": consumers}


if __name__ == "__main__":
    json.dump(config(int(sys.argv[1]) if len(sys.argv) > 1 else 10000), sys.stdout)
