"""Rating: a pure function from a plan snapshot and usage totals to invoice lines. No database, no clock.

The same snapshot and usage always give the same lines, so any stored invoice can be recomputed and compared.
Money is Decimal, each line rounded half-up to the currency's minor unit; the total is the sum of the lines.

Per meter: usage up to the included quantity is free; the overage goes through graduated tiers, whose `up_to`
bounds count overage units (tier 1 covers overage units 1..up_to, tier 2 up_to+1..its up_to, and so on).
Negative net usage (credits larger than use) rates as zero: a credit lowers usage, it never pays out money.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .periods import Period

# Stripe's zero-decimal currencies that Lightsout may bill in; every other currency has two decimals.
ZERO_DECIMAL_CURRENCIES = frozenset({"jpy", "krw", "vnd", "clp", "pyg", "xof", "xaf"})


@dataclass(frozen=True)
class LineDraft:
    kind: str  # "fee" or "usage"
    meter: str
    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class InvoiceDraft:
    currency: str
    period: Period
    lines: tuple[LineDraft, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), self.zero)

    @property
    def zero(self) -> Decimal:
        return Decimal(0).quantize(minor_unit(self.currency))


def minor_unit(currency: str) -> Decimal:
    return Decimal(1) if currency.lower() in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")


def to_minor_units(amount: Decimal, currency: str) -> int:
    """What Stripe calls an amount: cents for EUR, whole won for KRW."""
    return int(amount / minor_unit(currency))


def _tier_lines(*, meter: str, unit: str, overage: int, tiers: list[dict[str, Any]], currency: str) -> list[LineDraft]:
    lines, lower, remaining = [], 0, overage
    for number, tier in enumerate(tiers, start=1):
        if remaining <= 0:
            break
        upper = tier["up_to"]
        quantity = remaining if upper is None else min(remaining, upper - lower)
        price = Decimal(str(tier["unit_price"]))
        amount = (price * quantity).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
        first = lower + 1
        last = lower + quantity
        lines.append(
            LineDraft(
                "usage",
                meter,
                f"{meter}: overage {first:,}-{last:,} {unit}s (tier {number}) "
                f"at {price.normalize():f} {currency.upper()}",
                quantity,
                price,
                amount,
            )
        )
        remaining -= quantity
        lower += quantity
    return lines


def rate(*, plan_snapshot: dict[str, Any], usage_by_meter: dict[str, int], period: Period) -> InvoiceDraft:
    currency = plan_snapshot["currency"]
    fee = Decimal(str(plan_snapshot["monthly_fee"])).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
    lines = [LineDraft("fee", "", f"{plan_snapshot['name']} plan, {period.start:%B %Y}", 1, fee, fee)]
    for meter, terms in sorted(plan_snapshot["meters"].items()):
        used = max(0, int(usage_by_meter.get(meter, 0)))
        overage = max(0, used - int(terms["included"]))
        lines += _tier_lines(
            meter=meter, unit=terms.get("unit", "unit"), overage=overage, tiers=terms["tiers"], currency=currency
        )
    return InvoiceDraft(currency=currency, period=period, lines=tuple(lines))
