"""After a completion is answered: mark the adapter used (LRU), settle the quota and record the tokens.

Settling happens in batches: completions queue what they used, and one flush every 100 ms (or 500 entries)
commits every reservation and records every input-token event in one Redis transaction, off the event loop.
Per request this would cost a thread hop and two round trips, most of the gateway's CPU time. A crash loses at
most the last 100 ms of usage; the reservations it held expire on their own.

While Redis is away (a restart) a flush fails and its batch is kept and tried again at the next flush, so usage
answered in that time is recorded once Redis is back. Trying again is safe: every event carries an idempotency key
of its own (drawn when the completion was answered) that the ingest script drops when it has seen it, and a
reservation's release is a no-op the second time. What waits is bounded (`MAX_PENDING`, the oldest go first,
logged) so a long outage cannot exhaust the process's memory.
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from billing.quotas import Reservation
from billing.usage import Usage, usage_record_into
from foundation.redis import get_redis
from inference.placement import lru_key
from inference.selectors import KeyInfo, Route

logger = logging.getLogger(__name__)
FLUSH_SECONDS = 0.1
FLUSH_ENTRIES = 500
# Settlements kept while Redis is away (about 1 KB each): minutes of a busy gateway's traffic.
MAX_PENDING = 200_000


@dataclass(frozen=True, slots=True)
class _Settlement:
    reservation: Reservation
    output_tokens: int
    input_event: Usage | None
    request_id: str
    attributes: dict[str, Any]


def _settle(batch: list[_Settlement]) -> None:
    pipeline = get_redis().pipeline(transaction=True)
    for item in batch:
        item.reservation.commit_into(
            pipeline, item.output_tokens, idempotency_key=f"{item.request_id}:output", attributes=item.attributes
        )
    usage_record_into(pipeline, [item.input_event for item in batch if item.input_event is not None])
    pipeline.execute()


class UsageBatcher:
    def __init__(self) -> None:
        self._pending: list[_Settlement] = []
        self._wake = asyncio.Event()

    def add(
        self,
        *,
        info: KeyInfo,
        route: Route,
        reservation: Reservation,
        usage: dict[str, Any] | None,
        status: int,
        latency_ms: float,
        request_id: str,
    ) -> None:
        attributes = {
            "model": route.public_name,
            "base_model": route.base_model,
            "api_key": info.key_id,
            "latency_ms": round(latency_ms, 2),
            "status": status,
        }
        usage = usage if status == 200 and usage else {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        input_event = (
            Usage(
                info.organization_id,
                f"inference.input_tokens.{route.size_class}",
                prompt_tokens,
                f"{request_id}:input",
                attributes,
            )
            if prompt_tokens
            else None
        )
        self._pending.append(
            _Settlement(reservation, int(usage.get("completion_tokens") or 0), input_event, request_id, attributes)
        )
        if len(self._pending) >= FLUSH_ENTRIES:
            self._wake.set()

    async def run(self) -> None:
        """Flush for the life of the process (and once more when it is cancelled at shutdown)."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=FLUSH_SECONDS)
                await self.flush()
        finally:
            await self.flush()

    async def flush(self) -> None:
        self._wake.clear()
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await asyncio.to_thread(_settle, batch)
        except Exception:
            # Kept for the next flush, in front of what came since (their order does not matter to the ledger).
            self._pending = batch + self._pending
            dropped = len(self._pending) - MAX_PENDING
            if dropped > 0:
                del self._pending[:dropped]
                logger.error("Dropped the usage of %d completions: Redis has been away too long", dropped)
            logger.warning("Settling the usage of %d completions failed; will retry", len(batch), exc_info=True)


async def touch_adapter(*, redis: Redis, route: Route, server_id: int) -> None:
    if route.adapter_id:
        try:
            await redis.zadd(lru_key(server_id), {route.upstream_model: time.time()})
        except Exception:
            logger.exception("Could not mark %s used", route.upstream_model)
