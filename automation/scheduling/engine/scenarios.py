"""What-if scenarios on a cost problem, the side-by-side comparison of two plans, and price scenarios sampled
from forecasts.

A scenario is a list of changes to the data a plan was made with (``apply_scenario``): a material's price
up or down by a percentage from a day on, the tariff multiplied in some hours of the day, a supplier's lead
time longer or shorter, a machine down for a while. ``compare_plans`` sets the plan made for the scenario
beside the base plan: cost by kind, orders that moved, became late or were declined, purchases that changed,
and what the base plan would cost if it were kept under the scenario (or why it no longer works).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from automation.scheduling.engine.costcheck import check_plan, evaluate_plan
from automation.scheduling.engine.costs import MINUTES_PER_DAY, CostBreakdown, CostData, PricePoint, Purchase, Supplier
from automation.scheduling.engine.forecast import PriceForecast
from automation.scheduling.engine.problem import Assignment, Problem, ProblemError
from automation.scheduling.engine.rescheduling import add_downtime

Z90 = 1.6448536269514722  # the standard normal quantile of 0.95: a 90 % interval is mean +- Z90 sigma


@dataclass(frozen=True)
class PriceChange:
    """Every supplier of ``material`` charges ``1 + percent / 100`` times its price for orders from ``from_day``."""

    material: str
    percent: float
    from_day: int = 0


@dataclass(frozen=True)
class TariffChange:
    """The tariff is ``factor`` times itself in ``hours`` (hours of the day, UTC; empty: all) from ``from_day``.

    ``first_hour``: the hour of the day at minute 0 of the horizon."""

    factor: float
    hours: tuple[int, ...] = ()
    from_day: int = 0
    first_hour: int = 0


@dataclass(frozen=True)
class LeadTimeChange:
    supplier: str
    days: int  # added to the lead time (negative: shorter)


@dataclass(frozen=True)
class MachineDown:
    machine: str
    start: int
    end: int


@dataclass(frozen=True)
class SupplierPrices:
    """``supplier`` charges ``prices[d]`` for orders on day ``d`` (a sampled price path)."""

    supplier: str
    prices: tuple[float, ...]


Change = PriceChange | TariffChange | LeadTimeChange | MachineDown | SupplierPrices


def apply_scenario(problem: Problem, changes: Sequence[Change]) -> Problem:
    """``problem`` with ``changes`` applied in order; ProblemError naming every change that does not fit."""
    if problem.cost is None:
        raise ProblemError(["a scenario changes cost data, and the problem has none"])
    cost = problem.cost
    issues: list[str] = []
    for change in changes:
        if isinstance(change, PriceChange):
            if not cost.suppliers_of(change.material):
                issues.append(f"price change: no supplier sells material {change.material!r}")
            elif change.percent <= -100:
                issues.append(f"price change of {change.material!r}: a price cannot fall by 100 % or more")
            else:
                factor = 1 + change.percent / 100
                cost = _suppliers_replaced(
                    cost,
                    {
                        s.id: dataclasses.replace(s, prices=_scaled(s, factor, change.from_day))
                        for s in cost.suppliers_of(change.material)
                    },
                )
        elif isinstance(change, TariffChange):
            if not cost.tariff:
                issues.append("tariff change: the plan has no tariff")
            elif change.factor < 0 or any(not 0 <= h <= 23 for h in change.hours):
                issues.append("tariff change: needs a factor of at least 0 and hours from 0 to 23")
            else:
                cost = dataclasses.replace(cost, tariff=_tariff_scaled(problem, cost, change))
        elif isinstance(change, LeadTimeChange):
            supplier = next((s for s in cost.suppliers if s.id == change.supplier), None)
            if supplier is None:
                issues.append(f"lead time change: no supplier {change.supplier!r} in the plan")
            elif supplier.lead_days + change.days < 0:
                issues.append(f"lead time change of {change.supplier!r}: the lead time would be negative")
            else:
                longer = dataclasses.replace(supplier, lead_days=supplier.lead_days + change.days)
                cost = _suppliers_replaced(cost, {supplier.id: longer})
        elif isinstance(change, MachineDown):
            if change.machine not in {m.id for m in problem.machines}:
                issues.append(f"machine down: machine {change.machine!r} is not in the plan")
            elif not 0 <= change.start < change.end:
                issues.append(f"machine down on {change.machine!r}: needs 0 <= start < end")
            else:
                problem = add_downtime(problem, machine=change.machine, start=change.start, end=change.end)
        else:
            supplier = next((s for s in cost.suppliers if s.id == change.supplier), None)
            if supplier is None:
                issues.append(f"prices: no supplier {change.supplier!r} in the plan")
            else:
                path = tuple(PricePoint(day, max(0.0, price)) for day, price in enumerate(change.prices))
                cost = _suppliers_replaced(cost, {supplier.id: dataclasses.replace(supplier, prices=path)})
    if issues:
        raise ProblemError(issues)
    return dataclasses.replace(problem, cost=cost)


def sample_price_scenarios(
    forecasts: Sequence[PriceForecast], *, samples: int, seed: int = 0
) -> list[tuple[SupplierPrices, ...]]:
    """``samples`` price paths per forecast supplier: the forecast mean shifted by ``z`` of its standard
    deviations on every day (the 90 % interval read as +-1.645 sigma, each side its own), ``z`` drawn from a
    standard normal per supplier and sample; deterministic for a seed."""
    rng = random.Random(seed)
    drawn = []
    for _ in range(samples):
        paths = []
        for f in forecasts:
            z = rng.gauss(0.0, 1.0)
            side = f.upper if z >= 0 else f.lower
            paths.append(
                SupplierPrices(
                    f.supplier,
                    tuple(round(max(0.0, m + z * abs(b - m) / Z90), 4) for m, b in zip(f.mean, side, strict=True)),
                )
            )
        drawn.append(tuple(paths))
    return drawn


def averaged(problem: Problem, scenarios: Sequence[Problem]) -> Problem:
    """``problem`` with each supplier's daily price and each tariff hour the mean over ``scenarios``.

    A plan whose schedule and purchases are fixed costs, in expectation over the scenarios, what it costs at
    these mean prices: every price enters its cost linearly."""
    assert problem.cost is not None and problem.horizon is not None
    cost = problem.cost
    horizon_days = math.ceil(problem.horizon / MINUTES_PER_DAY)
    suppliers = {}
    for supplier in cost.suppliers:
        variants = [_supplier(s, supplier.id) for s in scenarios]
        prices = tuple(
            PricePoint(day, sum(v.price(day) for v in variants) / len(variants)) for day in range(horizon_days)
        )
        suppliers[supplier.id] = dataclasses.replace(supplier, prices=prices)
    tariff = cost.tariff
    if tariff:
        hours = max(len(s.cost.tariff) for s in scenarios if s.cost is not None)
        tariff = tuple(sum(_cost(s).tariff_at(h * 60) for s in scenarios) / len(scenarios) for h in range(hours))
    return dataclasses.replace(problem, cost=dataclasses.replace(_suppliers_replaced(cost, suppliers), tariff=tariff))


def repriced(problem: Problem, purchases: Sequence[Purchase]) -> tuple[Purchase, ...]:
    """The same purchase orders (supplier, order day, quantity) at ``problem``'s prices and lead times."""
    suppliers = {s.id: s for s in _cost(problem).suppliers}
    out = []
    for p in purchases:
        supplier = suppliers.get(p.supplier)
        if supplier is None:
            out.append(p)
            continue
        unit = supplier.unit_millis(p.order_day, p.quantity)
        out.append(
            dataclasses.replace(
                p,
                arrival_day=p.order_day + supplier.lead_days,
                unit_price=unit / 1000,
                cost=p.quantity * unit / 1000,
            )
        )
    return tuple(out)


def plan_cost(problem: Problem, schedule: Sequence[Assignment], purchases: Sequence[Purchase]) -> CostBreakdown:
    """What a fixed plan costs under ``problem``'s prices (its purchases repriced)."""
    return evaluate_plan(problem, schedule, repriced(problem, purchases))


@dataclass(frozen=True)
class Plan:
    problem: Problem
    schedule: tuple[Assignment, ...]
    purchases: tuple[Purchase, ...]


def compare_plans(base: Plan, scenario: Plan) -> dict[str, Any]:
    """The scenario's plan beside the base plan, as JSON-ready data (minutes and days from the horizon start)."""
    base_costs = evaluate_plan(base.problem, base.schedule, base.purchases)
    new_costs = evaluate_plan(scenario.problem, scenario.schedule, scenario.purchases)
    cost = {
        kind: {"base": round(b, 2), "scenario": round(new_costs.by_kind()[kind], 2)}
        for kind, b in base_costs.by_kind().items()
    }
    for figures in cost.values():
        figures["delta"] = round(figures["scenario"] - figures["base"], 2)
    kept = repriced(scenario.problem, base.purchases)
    violations = check_plan(scenario.problem, base.schedule, kept)
    if violations:
        base_kept: dict[str, Any] = {"feasible": False, "violations": violations[:10], "total": None}
    else:
        kept_total = evaluate_plan(scenario.problem, base.schedule, kept).total
        base_kept = {
            "feasible": True,
            "violations": [],
            "total": round(kept_total, 2),
            "saved_by_replanning": round(kept_total - new_costs.total, 2),
        }
    return {
        "cost": cost,
        "base_plan_kept": base_kept,
        "orders": _orders_compared(base, scenario),
        "purchases": _purchases_compared(base.purchases, scenario.purchases),
    }


def _orders_compared(base: Plan, scenario: Plan) -> list[dict[str, Any]]:
    before, after = _spans(base.schedule), _spans(scenario.schedule)
    rows = []
    for order in scenario.problem.orders:
        was, now = before.get(order.id), after.get(order.id)
        late_was = was is not None and order.due is not None and was[1] > order.due
        late_now = now is not None and order.due is not None and now[1] > order.due
        if was == now:
            continue
        if now is None:
            change = "declined"
        elif was is None:
            change = "added" if order.id not in {o.id for o in base.problem.orders} else "accepted"
        elif late_now and not late_was:
            change = "newly_late"
        elif late_was and not late_now:
            change = "now_on_time"
        else:
            change = "moved"
        rows.append(
            {
                "order": order.id,
                "change": change,
                "base_start": was[0] if was else None,
                "base_end": was[1] if was else None,
                "start": now[0] if now else None,
                "end": now[1] if now else None,
                "due": order.due,
                "late": late_now,
                "base_late": late_was,
            }
        )
    return rows


def _spans(schedule: Sequence[Assignment]) -> dict[str, tuple[int, int]]:
    spans: dict[str, tuple[int, int]] = {}
    for a in schedule:
        start, end = spans.get(a.order, (a.start, a.end))
        spans[a.order] = (min(start, a.start), max(end, a.end))
    return spans


def _purchases_compared(base: Sequence[Purchase], scenario: Sequence[Purchase]) -> list[dict[str, Any]]:
    """Per supplier: what is bought, at what cost and on which days, in each plan; unchanged ones left out."""
    totals: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"material": "", "base": [0, 0.0, []], "scenario": [0, 0.0, []]}
    )
    for side, purchases in (("base", base), ("scenario", scenario)):
        for p in purchases:
            row = totals[p.supplier]
            row["material"] = p.material
            row[side][0] += p.quantity
            row[side][1] += p.cost
            row[side][2].append([p.order_day, p.quantity])
    rows = []
    for supplier, row in sorted(totals.items()):
        (bq, bc, bdays), (sq, sc, sdays) = row["base"], row["scenario"]
        if sorted(bdays) == sorted(sdays) and abs(bc - sc) < 0.005:
            continue
        rows.append(
            {
                "supplier": supplier,
                "material": row["material"],
                "base_quantity": bq,
                "quantity": sq,
                "base_cost": round(bc, 2),
                "cost": round(sc, 2),
                "delta": round(sc - bc, 2),
                "base_orders": sorted(bdays),  # [order day, quantity]
                "orders": sorted(sdays),
            }
        )
    return rows


def _scaled(supplier: Supplier, factor: float, from_day: int) -> tuple[PricePoint, ...]:
    points = {p.day: p.price for p in supplier.prices}
    points.setdefault(from_day, supplier.price(from_day))
    return tuple(PricePoint(day, price * factor if day >= from_day else price) for day, price in sorted(points.items()))


def _tariff_scaled(problem: Problem, cost: CostData, change: TariffChange) -> tuple[float, ...]:
    assert problem.horizon is not None
    hours = max(len(cost.tariff), math.ceil(problem.horizon / 60))  # unrolled: the change may start mid-horizon
    chosen = set(change.hours) or set(range(24))
    return tuple(
        cost.tariff_at(h * 60) * change.factor
        if h >= change.from_day * 24 and (change.first_hour + h) % 24 in chosen
        else cost.tariff_at(h * 60)
        for h in range(hours)
    )


def _suppliers_replaced(cost: CostData, replaced: dict[str, Supplier]) -> CostData:
    return dataclasses.replace(cost, suppliers=tuple(replaced.get(s.id, s) for s in cost.suppliers))


def _supplier(problem: Problem, supplier_id: str) -> Supplier:
    return next(s for s in _cost(problem).suppliers if s.id == supplier_id)


def _cost(problem: Problem) -> CostData:
    if problem.cost is None:
        raise ValueError("the problem has no cost data")
    return problem.cost
