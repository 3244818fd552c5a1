"""Admission of a completion: the key's rate limit and the organisation's quota, in one Redis round trip.

The rate limit counts a key's completion requests per minute. The quota holds the completion's output-token budget
against the plan's hard limit with billing's own script and keys (billing.quotas.RESERVE_SCRIPT), so jobs, billing
and every gateway process hold against the same counters; here the count runs in front of it in the same script,
on the async client. The organisation's entitlement (plan, limits, standing) is cached in process like keys and
routes, and dropped on the same invalidation channel when billing changes it.

A request refused before the script (bad body, unknown model, a plan that excludes the model, unpaid invoice) is
still counted, by a script that only counts, so a key over its rate limit hears 429 first, as it always has.
"""

import math
import time
from typing import cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from rest_framework.exceptions import ErrorDetail

from billing.errors import BillingRefusal
from billing.periods import period_containing
from billing.quotas import (
    RESERVE_SCRIPT,
    Entitlement,
    Reservation,
    entitlement_for,
    quota_counter_seed,
    quota_exceeded,
    reservation_open,
)
from inference.selectors import KeyInfo, Route

from . import errors
from .caches import TtlCache

RATE_WINDOW_S = 60

# The rate-limit count, on the last key with the last two arguments (its limit, the window key's time to live), so
# it can stand alone or go in front of RESERVE_SCRIPT, whose keys and arguments come first. {-2, count}: refused.
_COUNT = """
local rate_key = KEYS[#KEYS]
local rate_count = redis.call('INCR', rate_key)
if rate_count == 1 then redis.call('EXPIRE', rate_key, ARGV[#ARGV]) end
if rate_count > tonumber(ARGV[#ARGV - 1]) then return {-2, rate_count} end
"""
_COUNT_ONLY = _COUNT + "return {1, rate_count}"
# RESERVE_SCRIPT inside a function, so its answer comes back with the request count appended (for the headers).
_COUNT_AND_RESERVE = (
    _COUNT
    + "local function reserve()\n"
    + RESERVE_SCRIPT
    + "\nend\nlocal result = reserve()\ntable.insert(result, rate_count)\nreturn result\n"
)


def rate_headers(count: int, window: int | None = None) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for a key that has made `count` requests in the current window."""
    window = int(time.time() // RATE_WINDOW_S) if window is None else window
    limit = settings.GATEWAY_RATE_LIMIT_PER_MINUTE
    reset = max(1, math.ceil((window + 1) * RATE_WINDOW_S - time.time()))
    minutes, seconds = divmod(reset, 60)
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(max(0, limit - count)),
        "x-ratelimit-reset-requests": f"{minutes}m{seconds}s" if minutes else f"{seconds}s",
    }


def _rate_limited(window: int) -> errors.GatewayError:
    retry = max(1, int((window + 1) * RATE_WINDOW_S - time.time()))
    limit = settings.GATEWAY_RATE_LIMIT_PER_MINUTE
    return errors.GatewayError(
        429,
        f"Rate limit of {limit} requests per minute reached for this key; retry in {retry} s.",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry), **rate_headers(limit, window)},
    )


def _lookups_limited(window: int) -> errors.GatewayError:
    retry = max(1, int((window + 1) * RATE_WINDOW_S - time.time()))
    return errors.GatewayError(
        429,
        f"Too many unknown API keys from this address; retry in {retry} s.",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry)},
    )


def _refused(refusal: BillingRefusal) -> errors.GatewayError:
    kind = {429: "insufficient_quota", 402: "billing_error"}.get(refusal.status_code, "permission_error")
    wait = getattr(refusal, "wait", None)
    return errors.GatewayError(
        refusal.status_code,
        str(refusal.detail),
        type=kind,
        code=cast(ErrorDetail, refusal.detail).code,  # an ApiError carries one message, never a list or dict
        headers={"Retry-After": str(wait)} if wait else None,
    )


class Admission:
    def __init__(self) -> None:
        self.entitlements: TtlCache[str, Entitlement] = TtlCache(
            ttl_s=settings.BILLING_ENTITLEMENT_CACHE_SECONDS, max_entries=settings.GATEWAY_CACHE_MAX_ENTRIES
        )
        self._count: AsyncScript | None = None
        self._count_and_reserve: AsyncScript | None = None
        self._reserve: AsyncScript | None = None
        self._redis: Redis | None = None

    def connect(self, redis: Redis) -> None:
        """Scripts on the gateway's async client (by digest, loaded on first use)."""
        self._redis = redis
        self._count = redis.register_script(_COUNT_ONLY)
        self._count_and_reserve = redis.register_script(_COUNT_AND_RESERVE)
        self._reserve = redis.register_script(RESERVE_SCRIPT)

    @staticmethod
    def _script(script: AsyncScript | None) -> AsyncScript:
        if script is None:
            raise RuntimeError("Admission.connect() has not been called.")
        return script

    def _rate_args(self, key_id: str) -> tuple[int, str, list[int]]:
        window = int(time.time() // RATE_WINDOW_S)
        return window, f"rl:gw:{key_id}:{window}", [settings.GATEWAY_RATE_LIMIT_PER_MINUTE, RATE_WINDOW_S + 1]

    async def count_key_lookup(self, address: str | None) -> None:
        """Count one database lookup of a key this process does not hold, per client address; 429 past the limit.

        A flood of random keys then costs at most GATEWAY_KEY_LOOKUPS_PER_MINUTE queries per address a minute."""
        window = int(time.time() // RATE_WINDOW_S)
        key = f"rl:gw:lookup:{address or 'unknown'}:{window}"
        refused, _ = await self._script(self._count)(
            keys=[key], args=[settings.GATEWAY_KEY_LOOKUPS_PER_MINUTE, RATE_WINDOW_S + 1]
        )
        if refused == -2:
            raise _lookups_limited(window)

    async def count(self, info: KeyInfo) -> int:
        """Count one request against its key's rate limit; 429 past it. Returns the window's count."""
        window, key, args = self._rate_args(info.key_id)
        refused, count = await self._script(self._count)(keys=[key], args=args)
        if refused == -2:
            raise _rate_limited(window)
        return int(count)

    async def current(self, info: KeyInfo) -> int:
        """The window's count so far, without counting (for the headers of answers that are not counted)."""
        if self._redis is None:
            raise RuntimeError("Admission.connect() has not been called.")
        _, key, _ = self._rate_args(info.key_id)
        return int(await self._redis.get(key) or 0)

    async def admit(self, info: KeyInfo, route: Route, budget: int, *, counted: bool) -> Reservation:
        """Count the request (unless `counted` already) and hold its output-token budget; 429, 402 or 403 if not.

        The caller commits the reservation once it knows the usage, or releases it if the completion fails.
        """
        reservation, _ = await self.admit_counted(info, route, budget, counted=counted)
        return reservation

    async def admit_counted(
        self, info: KeyInfo, route: Route, budget: int, *, counted: bool
    ) -> tuple[Reservation, int | None]:
        """`admit`, also returning the window's request count when this call counted the request (for the
        x-ratelimit-* headers).

        The caller commits the reservation once it knows the usage, or releases it if the completion fails.
        """
        rate_count = None
        entitlement = await self.entitlements.get(
            info.organization_id, lambda: sync_to_async(entitlement_for)(organization=info.organization)
        )
        now = timezone.now()
        try:
            reservation = reservation_open(
                organization_id=info.organization_id,
                entitlement=entitlement,
                meter=f"inference.output_tokens.{route.size_class}",
                quantity=budget,
                now=now,
            )
        except BillingRefusal as refusal:
            refused = _refused(refusal)
            if not counted:
                refused.headers.update(rate_headers(await self.count(info)))
            raise refused from None
        if not reservation.limited:
            if not counted:
                rate_count = await self.count(info)
            return reservation, rate_count
        keys, args = reservation.hold_keys(), reservation.script_args()
        if counted:
            granted, taken = await self._script(self._reserve)(keys=keys, args=args)
        else:
            window, rate_key, rate_args = self._rate_args(info.key_id)
            answer = await self._script(self._count_and_reserve)(keys=[*keys, rate_key], args=[*args, *rate_args])
            granted, taken = answer[0], answer[1]
            if granted == -2:
                raise _rate_limited(window)
            rate_count = answer[-1]
        if granted == -1:  # a new period, or a Redis that lost its data: seed the counter from the ledger, once
            await sync_to_async(quota_counter_seed)(
                organization_id=info.organization_id, meter=reservation.meter, period=period_containing(now)
            )
            granted, taken = await self._script(self._reserve)(keys=keys, args=reservation.script_args())
        if granted == 1:
            return reservation, rate_count
        if granted == 0:
            refused = _refused(
                quota_exceeded(reservation=reservation, taken=taken, plan_name=entitlement.plan_name, now=now)
            )
            if rate_count is not None:
                refused.headers.update(rate_headers(rate_count))
            raise refused
        raise RuntimeError("The quota counter could not be seeded.")
