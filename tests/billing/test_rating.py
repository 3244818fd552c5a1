"""rate() is a pure, deterministic function: properties over generated plans and usage, and one worked example."""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.meters import METERS
from billing.periods import Period
from billing.rating import minor_unit, rate, to_minor_units

PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))

prices = st.decimals(min_value=0, max_value=5, places=7, allow_nan=False, allow_infinity=False)


@st.composite
def tiers(draw) -> list[dict]:
    bounds = sorted(draw(st.sets(st.integers(1, 10**9), max_size=3)))
    return [{"up_to": bound, "unit_price": str(draw(prices))} for bound in bounds] + [
        {"up_to": None, "unit_price": str(draw(prices))}
    ]


@st.composite
def plan_snapshots(draw) -> dict:
    meters = draw(st.lists(st.sampled_from(sorted(METERS)), min_size=1, max_size=5, unique=True))
    return {
        "code": "gen",
        "name": "Generated",
        "currency": draw(st.sampled_from(["eur", "usd", "krw"])),
        "monthly_fee": str(draw(st.decimals(min_value=0, max_value=10_000, places=2))),
        "allowed_size_classes": [],
        "meters": {
            m: {"unit": "unit", "included": draw(st.integers(0, 10**8)), "hard_limit": None, "tiers": draw(tiers())}
            for m in meters
        },
    }


def usage_for(snapshot: dict):
    return st.fixed_dictionaries({m: st.integers(-(10**6), 10**10) for m in snapshot["meters"]})


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_rate_is_deterministic_and_independent_of_dict_order(data):
    """Catches rating that depends on the clock, on randomness or on the order meters arrive in."""
    snapshot = data.draw(plan_snapshots())
    usage = data.draw(usage_for(snapshot))
    first = rate(plan_snapshot=snapshot, usage_by_meter=usage, period=PERIOD)
    shuffled = {**snapshot, "meters": dict(reversed(list(snapshot["meters"].items())))}
    again = rate(plan_snapshot=shuffled, usage_by_meter=dict(reversed(list(usage.items()))), period=PERIOD)
    assert first == again


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_total_is_the_sum_of_lines_and_the_fee_plus_rated_overage(data):
    """Catches a total computed apart from its lines, or tiers that bill more or fewer units than the overage."""
    snapshot = data.draw(plan_snapshots())
    usage = data.draw(usage_for(snapshot))
    draft = rate(plan_snapshot=snapshot, usage_by_meter=usage, period=PERIOD)
    fee_lines = [line for line in draft.lines if line.kind == "fee"]
    usage_lines = [line for line in draft.lines if line.kind == "usage"]
    assert draft.total == sum(line.amount for line in draft.lines)
    fee = Decimal(snapshot["monthly_fee"]).quantize(minor_unit(draft.currency), rounding=ROUND_HALF_UP)
    assert len(fee_lines) == 1 and fee_lines[0].amount == fee
    assert draft.total == fee_lines[0].amount + sum(line.amount for line in usage_lines)
    for meter, terms in snapshot["meters"].items():
        billed = sum(line.quantity for line in usage_lines if line.meter == meter)
        assert billed == max(0, usage[meter] - terms["included"])
    assert all(line.amount >= 0 for line in draft.lines)
    assert to_minor_units(draft.total, draft.currency) >= 0


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_more_usage_never_costs_less(data):
    """Catches graduated tiers that are not monotonic (a cheaper total for more units, or a jump back at a bound)."""
    snapshot = data.draw(plan_snapshots())
    usage = data.draw(usage_for(snapshot))
    extra = data.draw(st.fixed_dictionaries({m: st.integers(0, 10**9) for m in snapshot["meters"]}))
    more = {m: usage[m] + extra[m] for m in usage}
    assert (
        rate(plan_snapshot=snapshot, usage_by_meter=more, period=PERIOD).total
        >= rate(plan_snapshot=snapshot, usage_by_meter=usage, period=PERIOD).total
    )


def test_a_worked_example_through_two_tiers():
    """Catches off-by-one tier bounds and rounding: 1,000 included, then 500 at 0.01 and the rest at 0.005."""
    snapshot = {
        "code": "pro",
        "name": "Pro",
        "currency": "eur",
        "monthly_fee": "49.00",
        "allowed_size_classes": [],
        "meters": {
            "maintenance.model_runs": {
                "unit": "run",
                "included": 1000,
                "hard_limit": None,
                "tiers": [{"up_to": 500, "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.005"}],
            }
        },
    }
    draft = rate(
        plan_snapshot=snapshot, usage_by_meter={"maintenance.model_runs": 1_701, "unknown.meter": 9}, period=PERIOD
    )
    assert [(line.kind, line.quantity, line.amount) for line in draft.lines] == [
        ("fee", 1, Decimal("49.00")),
        ("usage", 500, Decimal("5.00")),
        ("usage", 201, Decimal("1.01")),
    ]
    assert draft.total == Decimal("55.01")
    assert "overage 501-701 runs (tier 2)" in draft.lines[2].description
