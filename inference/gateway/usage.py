"""After a completion is answered: mark the adapter used (LRU) and record the tokens as usage."""

import asyncio
import logging
import time

from billing.usage import Usage, usage_record_many
from inference.placement import lru_key

logger = logging.getLogger(__name__)


async def record_completion(*, redis, info, route, reservation, server_id: int, status: int, usage: dict | None,
                            latency_ms: float, request_id: str) -> None:
    """The output tokens settle the quota reservation (which records them); the input tokens are recorded."""
    try:
        if route.adapter_id:
            await redis.zadd(lru_key(server_id), {route.upstream_model: time.time()})
        if status != 200 or not usage:
            await asyncio.to_thread(reservation.release)
            return
        attributes = {"model": route.public_name, "base_model": route.base_model, "api_key": info.key_id,
                      "latency_ms": round(latency_ms, 2), "status": status}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        await asyncio.to_thread(reservation.commit, int(usage.get("completion_tokens") or 0),
                                idempotency_key=f"{request_id}:output", attributes=attributes)
        if prompt_tokens:
            await asyncio.to_thread(usage_record_many, [Usage(
                info.organization_id, f"inference.input_tokens.{route.size_class}", prompt_tokens,
                f"{request_id}:input", attributes)])
    except Exception:
        logger.exception("Recording usage of request %s failed", request_id)
