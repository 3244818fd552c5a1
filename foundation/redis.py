"""The one Redis connection pool of a process (rate limits, quotas, usage buffers, caches)."""

from functools import cache

import redis
from django.conf import settings

# Seconds to wait for a connection: a Redis that is away fails a request quickly (503) instead of hanging it. No
# read timeout here: some callers block on purpose (BLPOP with its own timeout).
CONNECT_TIMEOUT_S = 2


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, decode_responses=True, health_check_interval=30, socket_connect_timeout=CONNECT_TIMEOUT_S
    )
