"""The gateway under a flood of random API keys: memory and database work stay bounded.

The gateway runs in process here (its real caches, real Redis, real database) so the test can read its cache sizes
and count its key lookups; requests are raw ASGI calls, each from the client address the test chooses.
"""

import asyncio
import json
import secrets
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from inference.gateway.app import GatewayApp
from tests import builders
from tests.workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _call(app, *, key: str, address: str, forwarded_for: str | None = None, model: str = "m") -> tuple:
    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")]
    if forwarded_for:
        headers.append((b"x-forwarded-for", forwarded_for.encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": headers,
        "client": (address, 40000),
    }
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), payload


def _random_key() -> str:
    return "lo_live_" + secrets.token_urlsafe(32)


async def _flood(app, count: int, addresses: list[str]) -> list[int]:
    statuses = []
    for i in range(count):
        status, _, _ = await _call(app, key=_random_key(), address=addresses[i % len(addresses)])
        statuses.append(status)
    return statuses


def test_a_flood_of_random_keys_leaves_the_key_cache_bounded(settings):
    """Catches an unbounded key cache: 600 random keys from 600 addresses once left 600 entries behind."""
    settings.GATEWAY_CACHE_MAX_ENTRIES = 50
    settings.GATEWAY_KEY_LOOKUPS_PER_MINUTE = 1000

    async def scenario():
        app = GatewayApp()
        try:
            statuses = await _flood(app, 600, [f"198.51.100.{i % 250}" for i in range(600)])
            return app, statuses
        finally:
            await app.shutdown()
            await sync_to_async(connections.close_all)()

    app, statuses = asyncio.run(scenario())
    assert set(statuses) == {401}
    assert app.key_lookups == 600  # each was a real lookup...
    assert len(app.keys) <= 50  # ...and yet the cache never held more than its bound


def test_failed_key_lookups_are_limited_per_client_address(settings, org):
    """Catches a flood that costs one database query per random key: past the limit an address hears 429 without a
    lookup, while another address, and a known key from the flooding address, still work."""
    settings.GATEWAY_KEY_LOOKUPS_PER_MINUTE = 20
    _, plaintext = builders.make_key(org, scopes=["inference"])
    # The limit counts per minute window: start early in one, so the whole flood falls in the same window.
    wait_until(lambda: time.time() % 60 < 40, timeout=30, what="the start of a rate-limit window")

    async def scenario():
        app = GatewayApp()
        try:
            # The known key is looked up (and cached) first, so it costs one of the address's lookups.
            known_first, _, _ = await _call(app, key=plaintext, address="203.0.113.9", model="no-such-model")
            flood = await _flood(app, 100, ["203.0.113.9"])
            lookups_after_flood = app.key_lookups
            # A forged X-Forwarded-For does not buy a fresh bucket: the header is not trusted here.
            forged, _, _ = await _call(app, key=_random_key(), address="203.0.113.9", forwarded_for="192.0.2.77")
            known_after, _, _ = await _call(app, key=plaintext, address="203.0.113.9", model="no-such-model")
            other, _, _ = await _call(app, key=_random_key(), address="192.0.2.1")
            return known_first, flood, lookups_after_flood, forged, known_after, other
        finally:
            await app.shutdown()
            await sync_to_async(connections.close_all)()

    known_first, flood, lookups, forged, known_after, other = asyncio.run(scenario())
    assert known_first == 404  # authenticated; the model does not exist
    assert flood.count(401) == 19 and flood.count(429) == 81
    assert lookups == 20  # at most the limit of database queries for the address in the window
    assert forged == 429
    assert known_after == 404  # a key the process already holds costs no lookup and is not refused
    assert other == 401
