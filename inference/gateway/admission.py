"""Admission of a completion: the key's rate limit and the organisation's quota, in one Redis round trip.

The rate limit counts a key's completion requests per minute. The quota holds the completion's output-token budget
against the plan's hard limit with billing's own script and keys (billing.quotas.RESERVE_SCRIPT), so jobs, billing
and every gateway process hold against the same counters; here the count runs in front of it in the same script,
on the async client. The organisation's entitlement (plan, limits, standing) is cached in process like keys and
routes, and dropped on the same invalidation channel when billing changes it.

A request refused before the script (bad body, unknown model, a plan that excludes the model, unpaid invoice) is
still counted, by a script that only counts, so a key over its rate limit hears 429 first, as it always has.
"""

import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from billing.errors import BillingRefusal
from billing.periods import period_containing
from billing.quotas import (
    RESERVE_SCRIPT,
    Reservation,
    entitlement_for,
    quota_counter_seed,
    quota_exceeded,
    reservation_open,
)

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
_COUNT_AND_RESERVE = _COUNT + RESERVE_SCRIPT


def _rate_limited(window: int) -> errors.GatewayError:
    retry = max(1, int((window + 1) * RATE_WINDOW_S - time.time()))
    limit = settings.GATEWAY_RATE_LIMIT_PER_MINUTE
    return errors.GatewayError(
        429,
        f"Rate limit of {limit} requests per minute reached for this key; retry in {retry} s.",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry)},
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
        code=refusal.detail.code,
        headers={"Retry-After": str(wait)} if wait else None,
    )


class Admission:
    def __init__(self):
        self.entitlements: TtlCache = TtlCache(
            ttl_s=settings.BILLING_ENTITLEMENT_CACHE_SECONDS, max_entries=settings.GATEWAY_CACHE_MAX_ENTRIES
        )
        self._count = self._count_and_reserve = self._reserve = None

    def connect(self, redis) -> None:
        """Scripts on the gateway's async client (by digest, loaded on first use)."""
        self._count = redis.register_script(_COUNT_ONLY)
        self._count_and_reserve = redis.register_script(_COUNT_AND_RESERVE)
        self._reserve = redis.register_script(RESERVE_SCRIPT)

    def _rate_args(self, key_id: str) -> tuple[int, str, list]:
        window = int(time.time() // RATE_WINDOW_S)
        return window, f"rl:gw:{key_id}:{window}", [settings.GATEWAY_RATE_LIMIT_PER_MINUTE, RATE_WINDOW_S + 1]

    async def count_key_lookup(self, address: str | None) -> None:
        """Count one database lookup of a key this process does not hold, per client address; 429 past the limit.

        A flood of random keys then costs at most GATEWAY_KEY_LOOKUPS_PER_MINUTE queries per address a minute."""
        window = int(time.time() // RATE_WINDOW_S)
        key = f"rl:gw:lookup:{address or 'unknown'}:{window}"
        refused, _ = await self._count(keys=[key], args=[settings.GATEWAY_KEY_LOOKUPS_PER_MINUTE, RATE_WINDOW_S + 1])
        if refused == -2:
            raise _lookups_limited(window)

    async def count(self, info) -> None:
        """Count one request against its key's rate limit; 429 past it."""
        window, key, args = self._rate_args(info.key_id)
        refused, _ = await self._count(keys=[key], args=args)
        if refused == -2:
            raise _rate_limited(window)

    async def admit(self, info, route, budget: int, *, counted: bool) -> Reservation:
        """Count the request (unless `counted` already) and hold its output-token budget; 429, 402 or 403 if not.

        The caller commits the reservation once it knows the usage, or releases it if the completion fails.
        """
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
            if not counted:
                await self.count(info)
            raise _refused(refusal) from None
        if not reservation.limited:
            if not counted:
                await self.count(info)
            return reservation
        keys, args = reservation.hold_keys(), reservation.script_args()
        if counted:
            granted, taken = await self._reserve(keys=keys, args=args)
        else:
            window, rate_key, rate_args = self._rate_args(info.key_id)
            granted, taken = await self._count_and_reserve(keys=[*keys, rate_key], args=[*args, *rate_args])
            if granted == -2:
                raise _rate_limited(window)
        if granted == -1:  # a new period, or a Redis that lost its data: seed the counter from the ledger, once
            await sync_to_async(quota_counter_seed)(
                organization_id=info.organization_id, meter=reservation.meter, period=period_containing(now)
            )
            granted, taken = await self._reserve(keys=keys, args=reservation.script_args())
        if granted == 1:
            return reservation
        if granted == 0:
            raise _refused(
                quota_exceeded(reservation=reservation, taken=taken, plan_name=entitlement.plan_name, now=now)
            )
        raise RuntimeError("The quota counter could not be seeded.")
