"""Rate limits per caller with Redis counters, shared by every web process.

A fixed one-minute window per API key, user token or signed-in user (anonymous callers: per client address, see
foundation.client_address): one INCR and one EXPIRE in a pipeline. DRF answers 429 with `Retry-After` set to the
seconds left in the window. Every answer says where the caller stands (`RateLimitHeadersMiddleware`): the IETF
`RateLimit-Policy` / `RateLimit` fields on /api/v1 (draft-ietf-httpapi-ratelimit-headers), OpenAI's
`x-ratelimit-limit-requests` / `-remaining-requests` / `-reset-requests` on /v1, as the gateway sends them.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from foundation.client_address import client_address
from foundation.redis import get_redis

if TYPE_CHECKING:  # rest_framework.views imports this module while it loads
    from rest_framework.views import APIView

WINDOW_SECONDS = 60


def caller_identity(request: Request) -> str | None:
    """Who is calling: the API key if one authenticated the request, else the user; None for anonymous."""
    credential = getattr(request, "auth", None)
    credential_id: str | None = getattr(credential, "rate_limit_identity", None)
    if credential_id:
        return credential_id
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_s: float


def openai_duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`."""
    whole = max(1, math.ceil(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def openai_rate_headers(state: RateLimitState) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(state.limit),
        "x-ratelimit-remaining-requests": str(state.remaining),
        "x-ratelimit-reset-requests": openai_duration(state.reset_s),
    }


def ietf_rate_headers(state: RateLimitState) -> dict[str, str]:
    return {
        "RateLimit-Policy": f'"default";q={state.limit};w={WINDOW_SECONDS}',
        "RateLimit": f'"default";r={state.remaining};t={max(1, math.ceil(state.reset_s))}',
    }


class RateLimitHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        state = getattr(request, "rate_limit", None)
        if state is not None:
            headers = openai_rate_headers(state) if request.path.startswith("/v1/") else ietf_rate_headers(state)
            for name, value in headers.items():
                response[name] = value
        return response


def failed_credentials_wait(address: str | None) -> float | None:
    """Seconds until `address` may try credentials again, when it has sent too many unknown ones this minute."""
    window = int(time.time() // WINDOW_SECONDS)
    count = int(get_redis().get(f"rl:badcred:{address}:{window}") or 0)
    if count >= settings.API_FAILED_CREDENTIALS_PER_MINUTE:
        return max(1.0, (window + 1) * WINDOW_SECONDS - time.time())
    return None


def failed_credentials_record(address: str | None) -> None:
    """One more unknown key or token from `address`: each cost a database lookup."""
    window = int(time.time() // WINDOW_SECONDS)
    pipe = get_redis().pipeline()
    pipe.incr(f"rl:badcred:{address}:{window}")
    pipe.expire(f"rl:badcred:{address}:{window}", WINDOW_SECONDS + 1)
    pipe.execute()


class CallerRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: "APIView") -> bool:
        identity = caller_identity(request) or f"ip:{client_address(request)}"
        limit: int = getattr(request.auth, "rate_limit_per_minute", None) or settings.API_RATE_LIMIT_PER_MINUTE
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"rl:{identity}:{window}"
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS + 1)
        count: int
        count, _ = pipe.execute()
        self._wait = (window + 1) * WINDOW_SECONDS - now
        # For the answer's headers (the Django request outlives DRF's wrapper).
        django_request: HttpRequest = getattr(request, "_request", request)
        state = RateLimitState(limit=limit, remaining=max(0, limit - count), reset_s=self._wait)
        setattr(django_request, "rate_limit", state)  # noqa: B010  (HttpRequest declares no such attribute)
        return count <= limit

    def wait(self) -> float:
        return max(1.0, self._wait)
