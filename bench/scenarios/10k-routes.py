"""Kong's LMDB-benchmark shape: 10,000 services each with one route; the hit route is near the end.

Every route has a prefix path /svc-NNNNN; ~10 % use a regex path instead, ~10 % also need a host,
~5 % also need a header. wrk hits /svc-09990 (a plain prefix route), so the router has to get past
the regex routes and nearly all others.
"""
N = 10_000
HIT = 9990
DESCRIPTION = f"{N} services+routes (10% regex, 10% hosts, 5% headers), hit route {HIT}"
GOAL = {"text": "no target yet: RPS vs no-plugins-1-route (router cost)", "metric": "rps_x_scenario",
        "vs": "no-plugins-1-route"}
PATH = f"/svc-{HIT:05d}/bench"
HEADERS = {}


def kong_config(upstream_url):
    services = []
    for i in range(N):
        sid = f"svc-{i:05d}"
        route = {"name": f"r-{i:05d}", "paths": [f"/{sid}"]}
        if i % 10 == 1:
            route["paths"] = [rf"~/{sid}/re/\d+$"]
        elif i % 10 == 2:
            route["hosts"] = [f"{sid}.example.test"]
        if i % 20 == 3:
            route["headers"] = {"x-tenant": [sid]}
        services.append({"name": sid, "url": upstream_url, "routes": [route]})
    assert HIT % 10 == 0, "the hit route must be a plain prefix route"
    return {"_format_version": "3.0", "services": services}
