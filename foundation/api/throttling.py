"""Rate limits per caller with Redis counters, shared by every web process.

A fixed one-minute window per API key, user token or signed-in user: one INCR and one EXPIRE in a pipeline. DRF
answers 429 with `Retry-After` set to the seconds left in the window.
"""

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from foundation.client_address import client_address
from foundation.redis import get_redis

WINDOW_SECONDS = 60


def caller_identity(request) -> str | None:
    """Who is calling: the API key if one authenticated the request, else the user; None for anonymous."""
    credential = getattr(request, "auth", None)
    credential_id = getattr(credential, "rate_limit_identity", None)
    if credential_id:
        return credential_id
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


class CallerRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        identity = caller_identity(request) or f"ip:{client_address(request)}"
        limit = getattr(request.auth, "rate_limit_per_minute", None) or settings.API_RATE_LIMIT_PER_MINUTE
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"rl:{identity}:{window}"
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS + 1)
        count, _ = pipe.execute()
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return count <= limit

    def wait(self) -> float:
        return max(1.0, self._wait)
