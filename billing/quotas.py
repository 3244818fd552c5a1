"""Quotas enforced where work is accepted, with atomic Redis counters.

`quota_reserve` holds the quantity a piece of work may use (a completion's max tokens, a job's budget) if the
organisation's used + held + requested stays within its hard limit for the period, in one Lua script, so
concurrent reservations cannot overshoot. `Reservation.commit(actual)` records the actual usage through the
ledger's one entry point and drops the hold, atomically; `release()` drops the hold when the work did not happen.
A hold whose holder dies is forgotten after its time to live.

The limit is read on every reservation from a cached entitlement (at most BILLING_ENTITLEMENT_CACHE_SECONDS
old; services drop the cache when a subscription or an override changes, so an operator's raise applies at
once). A quota counter that is missing (a new period, a Redis restart) is seeded from the ledger.

The gateway reserves without this module's synchronous client: it runs RESERVE_SCRIPT itself, behind its rate-limit
count in one async script call (inference/gateway/admission.py), with `reservation_open` for the checks and the same
keys, so jobs, billing and every gateway process hold against the same counters.
"""

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.conf import settings
from django.utils import timezone
from redis.commands.core import Script

from foundation.redis import get_redis
from tenants.models import Organization

from . import keys
from .errors import PaymentRequired, PlanRestriction, QuotaExceeded
from .meters import meter_get
from .models import QuotaOverride, Subscription
from .periods import period_containing
from .selectors import ledger_total
from .services import subscription_for
from .usage import Usage, script_into, usage_record_into

# A hold's quantity lives in `held:<meter>` of the counters hash; the hold itself in a hash (id -> meter|qty)
# and a sorted set of expiries, so the holds of a dead process are found and given back.
_FORGET_EXPIRED = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  local hold = redis.call('HGET', KEYS[2], id)
  if hold then
    local sep = string.find(hold, '|', 1, true)
    redis.call('HINCRBY', KEYS[1], 'held:' .. string.sub(hold, 1, sep - 1), -tonumber(string.sub(hold, sep + 1)))
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[3], id)
end
"""

# KEYS: Reservation.hold_keys(); ARGV: Reservation.script_args(). Returns {1, taken} when held, {0, taken} when the
# limit refuses it, {-1, 0} when the counter is not seeded yet. Callers may append keys and arguments of their own.
RESERVE_SCRIPT = (
    _FORGET_EXPIRED
    + """
local meter, quantity, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local used = redis.call('HGET', KEYS[1], 'used:' .. meter)
if not used then return {-1, 0} end
local taken = tonumber(used) + tonumber(redis.call('HGET', KEYS[1], 'held:' .. meter) or '0')
if taken + quantity > limit then return {0, taken} end
redis.call('HINCRBY', KEYS[1], 'held:' .. meter, quantity)
redis.call('HSET', KEYS[2], ARGV[5], meter .. '|' .. ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
return {1, taken}
"""
)

_RELEASE = """
local hold = redis.call('HGET', KEYS[2], ARGV[1])
if not hold then return 0 end
local sep = string.find(hold, '|', 1, true)
redis.call('HINCRBY', KEYS[1], 'held:' .. string.sub(hold, 1, sep - 1), -tonumber(string.sub(hold, sep + 1)))
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""


@cache
def _scripts() -> tuple[Script, Script]:
    redis = get_redis()
    return redis.register_script(RESERVE_SCRIPT), redis.register_script(_RELEASE)


@dataclass(frozen=True)
class Entitlement:
    """What an organisation may use now: cached briefly in Redis, so the hot path does not query the database."""

    plan_name: str
    status: str
    grace_period_ends_at: datetime | None
    limits: dict[str, int | None]  # the plan's meters, overrides applied; None means no limit
    allowed_size_classes: frozenset[str]

    def to_json(self) -> str:
        grace = self.grace_period_ends_at.isoformat() if self.grace_period_ends_at else None
        return json.dumps(
            {
                "plan_name": self.plan_name,
                "status": self.status,
                "grace": grace,
                "limits": self.limits,
                "sizes": sorted(self.allowed_size_classes),
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Entitlement":
        data = json.loads(raw)
        grace = datetime.fromisoformat(data["grace"]) if data["grace"] else None
        return cls(data["plan_name"], data["status"], grace, data["limits"], frozenset(data["sizes"]))


def entitlement_for(*, organization: Organization) -> Entitlement:
    redis = get_redis()
    cached = redis.get(keys.entitlement(str(organization.pk)))
    if cached:
        return Entitlement.from_json(cached)
    subscription = subscription_for(organization=organization)
    plan = subscription.plan
    limits = {price.meter: price.hard_limit for price in plan.meter_prices.all()}
    for override in QuotaOverride.objects.filter(organization=organization):
        limits[override.meter] = override.hard_limit
    entitlement = Entitlement(
        plan.name, subscription.status, subscription.grace_period_ends_at, limits, frozenset(plan.allowed_size_classes)
    )
    redis.set(
        keys.entitlement(str(organization.pk)), entitlement.to_json(), ex=settings.BILLING_ENTITLEMENT_CACHE_SECONDS
    )
    return entitlement


def _standing_warning(entitlement: Entitlement, now: datetime) -> str:
    """Past due within the grace period: allowed, with a warning. After it, or canceled: payment required."""
    if entitlement.status == Subscription.Status.CANCELED:
        raise PaymentRequired("The subscription is canceled. Choose a plan to continue.")
    if entitlement.status != Subscription.Status.PAST_DUE:
        return ""
    grace = entitlement.grace_period_ends_at
    if grace is None or grace <= now:
        raise PaymentRequired("An invoice is unpaid and its grace period has ended. Pay the open invoice to continue.")
    return f"An invoice is unpaid. Work stops at {grace:%Y-%m-%d %H:%M} UTC unless it is paid."


@dataclass
class Reservation:
    organization_id: str
    meter: str
    quantity: int
    period_key: str
    id: str
    limit: int | None  # the hard limit it is held against; None: the plan sets none, and nothing is held
    warning: str = ""

    @property
    def limited(self) -> bool:
        return self.limit is not None

    def hold_keys(self) -> list[str]:
        org, period = self.organization_id, self.period_key
        return [keys.counters(org, period), keys.holds(org, period), keys.hold_expiries(org, period)]

    def script_args(self, ttl_seconds: int | None = None) -> list:
        """RESERVE_SCRIPT's arguments; the hold is forgotten after `ttl_seconds` if nobody commits or releases it."""
        now = time.time()
        expires = now + (ttl_seconds or settings.BILLING_RESERVATION_TTL_SECONDS)
        return [now, self.meter, self.quantity, self.limit, self.id, expires, settings.BILLING_COUNTER_TTL_SECONDS]

    def commit(self, actual: int, *, idempotency_key: str | None = None, attributes: dict | None = None) -> None:
        """Record what the work actually used and drop the hold, in one Redis transaction.

        The default idempotency key is the reservation's, so committing twice records the usage once.
        """
        pipeline = get_redis().pipeline(transaction=True)
        self.commit_into(pipeline, actual, idempotency_key=idempotency_key, attributes=attributes)
        pipeline.execute()

    def commit_into(
        self, pipeline, actual: int, *, idempotency_key: str | None = None, attributes: dict | None = None
    ) -> None:
        """Queue the commit on a pipeline, for callers that settle many reservations at once (the gateway)."""
        if actual:
            usage_record_into(
                pipeline,
                [
                    Usage(
                        self.organization_id,
                        self.meter,
                        actual,
                        idempotency_key or f"reservation:{self.id}",
                        attributes,
                    )
                ],
            )
        if self.limited:
            script_into(pipeline, _scripts()[1], keys=self.hold_keys(), args=[self.id])

    def release(self) -> None:
        if self.limited:
            _scripts()[1](keys=self.hold_keys(), args=[self.id])


def quota_counter_seed(*, organization_id: str, meter: str, period) -> None:
    """Start the period's quota counter from the ledger; the first seeder wins if several race."""
    counters = keys.counters(organization_id, period.key)
    redis = get_redis()
    redis.hsetnx(counters, f"used:{meter}", ledger_total(organization_id=organization_id, meter=meter, period=period))
    redis.expire(counters, settings.BILLING_COUNTER_TTL_SECONDS)


def reservation_open(
    *, organization_id: str, entitlement: Entitlement, meter: str, quantity: int, now: datetime
) -> Reservation:
    """The checks that need no counter (standing, the plan's size classes and meters), and the reservation to hold.

    Raises PaymentRequired (402) or PlanRestriction (403); nothing is held yet.
    """
    spec = meter_get(meter)
    if not isinstance(quantity, int) or quantity <= 0:
        raise ValueError(f"Reserve a positive whole quantity, not {quantity!r}.")
    warning = _standing_warning(entitlement, now)
    if spec.size_class and spec.size_class not in entitlement.allowed_size_classes:
        raise PlanRestriction(
            f"The {entitlement.plan_name} plan does not include {spec.size_class} base models.", meter=meter
        )
    if meter not in entitlement.limits:
        raise PlanRestriction(f"The {entitlement.plan_name} plan does not include {meter}.", meter=meter)
    return Reservation(
        organization_id,
        meter,
        quantity,
        period_containing(now).key,
        uuid.uuid4().hex,
        limit=entitlement.limits[meter],
        warning=warning,
    )


def quota_exceeded(*, reservation: Reservation, taken: int, plan_name: str, now: datetime) -> QuotaExceeded:
    """The refusal of a reservation the limit does not leave room for (`taken`: used and held already)."""
    if reservation.limit is None:
        raise ValueError("a reservation without a limit is never refused")
    return QuotaExceeded(
        meter=reservation.meter,
        unit=meter_get(reservation.meter).unit,
        limit=reservation.limit,
        used=taken,
        requested=reservation.quantity,
        resets_at=period_containing(now).end,
        plan_name=plan_name,
    )


def quota_reserve(
    *,
    organization: Organization,
    meter: str,
    quantity: int,
    ttl_seconds: int | None = None,
    now: datetime | None = None,
) -> Reservation:
    """Hold `quantity` of `meter` for work about to start, or refuse it.

    Raises QuotaExceeded (429), PaymentRequired (402) or PlanRestriction (403).
    """
    now = now or timezone.now()
    entitlement = entitlement_for(organization=organization)
    reservation = reservation_open(
        organization_id=str(organization.pk), entitlement=entitlement, meter=meter, quantity=quantity, now=now
    )
    if not reservation.limited:
        return reservation
    reserve = _scripts()[0]
    for _ in range(2):
        granted, taken = reserve(keys=reservation.hold_keys(), args=reservation.script_args(ttl_seconds))
        if granted == 1:
            return reservation
        if granted == 0:
            raise quota_exceeded(reservation=reservation, taken=taken, plan_name=entitlement.plan_name, now=now)
        quota_counter_seed(organization_id=reservation.organization_id, meter=meter, period=period_containing(now))
    raise RuntimeError("The quota counter could not be seeded.")


def quota_check(*, organization: Organization, meter: str, quantity: int) -> str:
    """Refuse a job before it is queued if its budget would take the organisation past a hard limit.

    Jobs record what they actually used when they finish, so the hold is dropped at once: the check is against
    usage so far. Returns the past-due warning, if any. Raises like `quota_reserve`.
    """
    reservation = quota_reserve(organization=organization, meter=meter, quantity=max(1, quantity))
    reservation.release()
    return reservation.warning
