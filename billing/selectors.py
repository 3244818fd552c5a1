"""Reads: ledger totals, the current period's usage against the quota, the running invoice estimate."""

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Sum
from django.db.models.functions import TruncDate

from .catalogue import plan_snapshot
from .meters import meter_get
from .models import QuotaOverride, Subscription, UsageEvent
from .periods import Period, period_containing
from .rating import InvoiceDraft, rate


def ledger_totals(*, organization_id, period: Period) -> dict[str, int]:
    rows = (
        UsageEvent.objects.filter(
            organization_id=organization_id, occurred_at__gte=period.start, occurred_at__lt=period.end
        )
        .values("meter")
        .annotate(total=Sum("quantity"))
        .order_by("meter")
    )
    return {row["meter"]: row["total"] for row in rows}


def ledger_total(*, organization_id, meter: str, period: Period) -> int:
    return (
        UsageEvent.objects.filter(
            organization_id=organization_id, meter=meter, occurred_at__gte=period.start, occurred_at__lt=period.end
        ).aggregate(total=Sum("quantity"))["total"]
        or 0
    )


@dataclass(frozen=True)
class MeterUsage:
    meter: str
    unit: str
    used: int
    included: int
    limit: int | None

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


@dataclass(frozen=True)
class UsageSummary:
    plan_name: str
    status: str
    period: Period
    grace_period_ends_at: datetime | None
    meters: list[MeterUsage]


def usage_summary(*, subscription: Subscription, now: datetime) -> UsageSummary:
    """The ledger so far this month against each meter of the plan (overrides applied)."""
    period = period_containing(now)
    used = ledger_totals(organization_id=subscription.organization_id, period=period)
    overrides = {
        o.meter: o.hard_limit for o in QuotaOverride.objects.filter(organization_id=subscription.organization_id)
    }
    meters = [
        MeterUsage(
            price.meter,
            meter_get(price.meter).unit,
            used.get(price.meter, 0),
            price.included_quantity,
            overrides.get(price.meter, price.hard_limit),
        )
        for price in subscription.plan.meter_prices.all()
    ]
    return UsageSummary(subscription.plan.name, subscription.status, period, subscription.grace_period_ends_at, meters)


def invoice_estimate(*, subscription: Subscription, now: datetime) -> InvoiceDraft:
    """What the current month's invoice would be if it closed now: rate() on the ledger so far."""
    period = period_containing(now)
    return rate(
        plan_snapshot=plan_snapshot(subscription.plan),
        usage_by_meter=ledger_totals(organization_id=subscription.organization_id, period=period),
        period=period,
    )


def ledger_daily(*, organization_id, period: Period) -> dict[str, list[tuple[date, int]]]:
    """Each meter's use per day of the period, for the portal's usage charts."""
    rows = (
        UsageEvent.objects.filter(
            organization_id=organization_id, occurred_at__gte=period.start, occurred_at__lt=period.end
        )
        .annotate(day=TruncDate("occurred_at"))
        .values("meter", "day")
        .annotate(total=Sum("quantity"))
        .order_by("meter", "day")
    )
    daily: dict[str, list[tuple[date, int]]] = {}
    for row in rows:
        daily.setdefault(row["meter"], []).append((row["day"], row["total"]))
    return daily
