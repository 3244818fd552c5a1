"""In-process caches of API keys, routes and entitlements, so the hot path does no database read.

Entries live for a short TTL, and a cache holds at most `max_entries` of them: past that the least recently used
goes first, so a flood of requests that each add an entry (random API keys) costs
a bounded amount of memory. Entries are dropped at once when a writer publishes on `foundation.invalidation`
(key revoked, organisation suspended, adapter placed or moved, plan or quota changed).
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from django.conf import settings

from foundation.invalidation import ACK_TTL_S, CHANNEL, ack_key

logger = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")
# How long one pub/sub read waits before the listener checks whether it was asked to stop.
POLL_S = 1.0


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_s: float, max_entries: int = 10_000):
        self.ttl_s = ttl_s
        self.max_entries = max(1, max_entries)
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _store(self, key: K, expires: float, value: V) -> None:
        self._entries[key] = (expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)  # O(1): the least recently used, which is where the expired ones sit

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(key)
            return entry[1]
        # One load per key at a time: a burst of requests for a cold key makes one database query.
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
            if self._loading.get(key) is future:  # not dropped while loading: it may not hold what was dropped
                self._store(key, now + self.ttl_s, value)
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: the waiters re-raise it themselves
            raise
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]

    def holds(self, key: K) -> bool:
        """Whether `get` would answer from memory, without loading."""
        entry = self._entries.get(key)
        return entry is not None and entry[0] > time.monotonic()

    def drop(self, predicate: Callable[[K], bool] | None = None) -> None:
        """Forget the matching entries, and the loads under way for them: they may have read before the change."""
        for table in (self._entries, self._loading):
            for key in [k for k in table if predicate is None or predicate(k)]:
                del table[key]


async def listen_for_invalidations(on_message: Callable[[dict[str, Any]], None]) -> None:
    """Runs for the life of the process; reconnects if Redis goes away. Acknowledges each message once `on_message`
    has applied it, so the writer knows the change is in effect here (foundation.invalidation)."""
    while True:
        client = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_S)
                    _raise_if_cancelled()
                    if message is not None and message.get("type") == "message":
                        with contextlib.suppress(ValueError):
                            await _apply(client, on_message, json.loads(message["data"]))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Invalidation listener lost Redis; retrying")
            await asyncio.sleep(1)
        finally:
            await client.aclose()


def _raise_if_cancelled() -> None:
    """Stop even where the Redis client lost a cancellation: under load, a cancel was seen lost inside redis-py's
    pub/sub read (8.1, Python 3.11; about one stop in 44 beside two busy loops), leaving the listener running and its
    owner waiting forever. Between reads the task's own count of cancel requests still says it was asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _apply(
    client: "aioredis.Redis", on_message: Callable[[dict[str, Any]], None], message: dict[str, Any]
) -> None:
    on_message(message)
    if message.get("id"):
        async with client.pipeline(transaction=False) as pipe:
            pipe.rpush(ack_key(message["id"]), 1).expire(  # type: ignore[attr-defined]  # a pipeline's commands return it
                ack_key(message["id"]), ACK_TTL_S
            )
            await pipe.execute()
