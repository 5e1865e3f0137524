"""Reads a Gatehouse node through aio-kong, an existing Kong Admin API client.

Given GATEHOUSE_ADMIN_URL, loads a declarative config with a plain POST /config, then reads
services, routes and consumers with aio-kong and checks names, ids and relationships, the way
a Kong user's tooling would. Runs as a plain script (no pytest needed); prints one line per
check and exits non-zero when any failed.
"""

import asyncio
import json
import os
import sys
import traceback
import urllib.error
import urllib.request

from kong.client import Kong, KongResponseError

SVC_A = "00000000-0000-4000-8000-00000000000a"
SVC_B = "00000000-0000-4000-8000-00000000000b"
CONSUMER = "00000000-0000-4000-8000-0000000000c1"

CONFIG = {
    "_format_version": "3.0",
    "services": [
        {
            "id": SVC_A,
            "name": "orders",
            "url": "http://orders.internal:8080/v1",
            "tags": ["shop"],
            "routes": [
                {"name": "orders-api", "paths": ["/orders"], "methods": ["GET", "POST"]},
                {"name": "orders-admin", "paths": ["/orders-admin"], "tags": ["internal"]},
            ],
        },
        {
            "id": SVC_B,
            "name": "billing",
            "url": "http://billing.internal",
            "routes": [{"name": "billing-api", "hosts": ["billing.example.test"]}],
        },
    ]
    + [{"name": f"filler-{i:02d}", "url": f"http://filler-{i}.internal"} for i in range(12)],
    "consumers": [
        {"id": CONSUMER, "username": "alice", "custom_id": "a-1",
         "keyauth_credentials": [{"key": "alice-key"}]},
        {"username": "bob"},
    ],
}


def post_config(url: str) -> dict:
    req = urllib.request.Request(
        url + "/config",
        data=json.dumps({"config": json.dumps(CONFIG)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201, resp.status
        return json.loads(resp.read())


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


@check
async def services_by_list_and_key(cli: Kong) -> None:
    services = await cli.services.get_full_list()
    names = sorted(s.name for s in services)
    assert len(names) == 14, names
    assert "orders" in names and "billing" in names, names
    orders = await cli.services.get("orders")
    assert orders.id == SVC_A, orders.data
    assert orders["host"] == "orders.internal" and orders["port"] == 8080, orders.data
    assert orders["path"] == "/v1", orders.data
    by_id = await cli.services.get(SVC_B)
    assert by_id.name == "billing", by_id.data
    assert await cli.services.has("orders")
    assert not await cli.services.has("nope")


@check
async def pagination_through_next(cli: Kong) -> None:
    # aio-kong follows `next` links; a small page size makes it walk several pages.
    seen = [s.id async for s in cli.services.paginate(size=5)]
    assert len(seen) == 14 and len(set(seen)) == 14, seen
    assert seen == sorted(seen), "pages come in id order"


@check
async def routes_and_their_services(cli: Kong) -> None:
    routes = await cli.routes.get_full_list()
    by_name = {r.name: r for r in routes}
    assert set(by_name) == {"orders-api", "orders-admin", "billing-api"}, by_name
    assert by_name["orders-api"]["service"]["id"] == SVC_A
    assert by_name["billing-api"]["service"]["id"] == SVC_B
    assert by_name["orders-api"]["paths"] == ["/orders"]
    orders = await cli.services.get("orders")
    nested = await orders.routes.get_list()
    assert sorted(r.name for r in nested) == ["orders-admin", "orders-api"], nested
    svc = await cli.execute(f"{cli.url}/routes/billing-api/service")
    assert svc["id"] == SVC_B, svc


@check
async def tag_filters(cli: Kong) -> None:
    shop = await cli.services.get_list(tags="shop")
    assert [s.name for s in shop] == ["orders"], shop
    internal = await cli.routes.get_list(tags="internal")
    assert [r.name for r in internal] == ["orders-admin"], internal


@check
async def consumers_and_credentials(cli: Kong) -> None:
    consumers = await cli.consumers.get_full_list()
    assert sorted(c.username for c in consumers) == ["alice", "bob"], consumers
    alice = await cli.consumers.get("alice")
    assert alice.id == CONSUMER and alice["custom_id"] == "a-1", alice.data
    keys = await cli.execute(f"{cli.url}/consumers/alice/key-auth")
    assert [k["key"] for k in keys["data"]] == ["alice-key"], keys
    assert keys["data"][0]["consumer"]["id"] == CONSUMER


@check
async def writes_are_refused_like_kong(cli: Kong) -> None:
    try:
        await cli.services.create(name="new", url="http://new.internal")
    except KongResponseError as e:
        assert e.status == 405, e
        assert "when not using a database" in str(e), e
    else:
        raise AssertionError("POST /services succeeded on a DB-less node")


async def main() -> int:
    url = os.environ.get("GATEHOUSE_ADMIN_URL", "http://127.0.0.1:8001").rstrip("/")
    passed = failed = 0
    try:
        loaded = post_config(url)
        assert len(loaded["services"]) == 14, loaded.keys()
        print("ok   post_config")
        passed += 1
    except (AssertionError, urllib.error.URLError, KeyError) as e:
        print(f"FAIL post_config: {e!r}")
        print(f"{passed} passed, {failed + 1} failed")
        return 1
    async with Kong(url=url) as cli:
        for fn in CHECKS:
            try:
                await fn(cli)
                print(f"ok   {fn.__name__}")
                passed += 1
            except Exception:  # noqa: BLE001 - report every failure, keep going
                print(f"FAIL {fn.__name__}")
                traceback.print_exc()
                failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
