"""An independent check and costing of a plan: a schedule plus its purchase orders.

Written from the rules in ``costs.py``, not from the CP-SAT model (``costmodel.py``): stock is simulated event
by event, energy summed hour by hour, holding counted day by day. An order without any scheduled operation is
declined; only optional orders may be.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence

from automation.scheduling.engine.availability import working_windows
from automation.scheduling.engine.costs import MINUTES_PER_DAY, CostBreakdown, CostData, Purchase, days
from automation.scheduling.engine.feasibility import check_schedule
from automation.scheduling.engine.problem import Assignment, FrozenOp, Problem


def declined_orders(problem: Problem, schedule: Sequence[Assignment]) -> list[str]:
    scheduled = {a.order for a in schedule}
    return [o.id for o in problem.orders if o.id not in scheduled]


def check_plan(
    problem: Problem,
    schedule: Sequence[Assignment],
    purchases: Sequence[Purchase],
    *,
    frozen: Sequence[FrozenOp] = (),
    now: int = 0,
) -> list[str]:
    """Every rule the plan breaks, one sentence each; empty when it is feasible."""
    cost = _cost(problem)
    violations: list[str] = []
    declined = declined_orders(problem, schedule)
    for order_id in declined:
        terms = cost.terms.get(order_id)
        if terms is None or not terms.optional:
            violations.append(f"order {order_id!r} is declined but not optional")
    accepted = _accepted_problem(problem, declined)
    violations += check_schedule(accepted, schedule, frozen=[f for f in frozen if f.order not in declined], now=now)
    horizon_days = days(problem)
    suppliers = {s.id: s for s in cost.suppliers}
    for p in purchases:
        what = f"purchase of {p.quantity} {p.material!r} from {p.supplier!r} ordered on day {p.order_day}"
        supplier = suppliers.get(p.supplier)
        if supplier is None:
            violations.append(f"{what}: no such supplier")
            continue
        if supplier.material != p.material:
            violations.append(f"{what}: the supplier sells {supplier.material!r}")
        if p.order_day < cost.order_day_from:
            violations.append(f"{what}: ordered before day {cost.order_day_from}")
        if p.arrival_day != p.order_day + supplier.lead_days:
            violations.append(
                f"{what}: arrives on day {p.arrival_day}, lead time says {p.order_day + supplier.lead_days}"
            )
        if p.quantity < supplier.moq:
            violations.append(f"{what}: below the minimum order quantity {supplier.moq}")
        if abs(p.cost - p.quantity * supplier.unit_millis(p.order_day, p.quantity) / 1000) > 1e-6:
            violations.append(f"{what}: costs {p.cost}, the supplier's prices say otherwise")
    for material, levels in _stock_levels(problem, schedule, purchases).items():
        limit = cost.material_by_id[material].storage_limit
        for minute, level in levels:
            if level < 0:
                violations.append(
                    f"material {material!r}: stock {level} at minute {minute}, consumed before it arrived"
                )
            if limit is not None and level > limit:
                violations.append(f"material {material!r}: stock {level} at minute {minute} exceeds the limit {limit}")
    for a in schedule:
        if a.end > horizon_days * MINUTES_PER_DAY:
            violations.append(f"order {a.order!r} operation {a.op_index} ends after the horizon")
    return violations


def evaluate_plan(problem: Problem, schedule: Sequence[Assignment], purchases: Sequence[Purchase]) -> CostBreakdown:
    """What the plan costs, by kind, per order and per material."""
    cost = _cost(problem)
    suppliers = {s.id: s for s in cost.suppliers}
    by_order: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_material: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    material_total = 0.0
    for p in purchases:
        paid = p.quantity * suppliers[p.supplier].unit_millis(p.order_day, p.quantity) / 1000
        material_total += paid
        by_material[p.material]["purchased"] += p.quantity
        by_material[p.material]["purchase_cost"] += paid
    holding_total = 0.0
    horizon_days = days(problem)
    for material, levels in _stock_levels(problem, schedule, purchases).items():
        rate = cost.material_by_id[material].holding_per_day
        held = 0.0
        for day in range(horizon_days):
            end_of_day = (day + 1) * MINUTES_PER_DAY
            level = [lv for minute, lv in levels if minute < end_of_day]
            held += rate * (level[-1] if level else 0)
        holding_total += held
        by_material[material]["holding_cost"] += held
    consumed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in schedule:
        for material, units in cost.consumption(problem, a.order, a.op_index).items():
            consumed[a.order][material] += units
            by_material[material]["consumed"] += units
    for order_id, materials in consumed.items():
        for material, units in materials.items():
            bought = by_material[material].get("purchased", 0.0)
            average = by_material[material].get("purchase_cost", 0.0) / bought if bought else 0.0
            by_order[order_id]["material"] += units * average
    energy_total = _idle_energy(problem, cost, schedule)
    overtime_total = 0.0
    for a in schedule:
        power = cost.power_by_machine.get(a.machine)
        if power is not None and power.running_kw > power.idle_kw:
            energy = (power.running_kw - power.idle_kw) * _kwh_price_minutes(cost, a.start, a.end) / 60
            energy_total += energy
            by_order[a.order]["energy"] += energy
        for ot in cost.overtime:
            if ot.machine == a.machine:
                overlap = max(0, min(a.end, ot.end) - max(a.start, ot.start))
                overtime_total += overlap * ot.cost_per_hour / 60
                by_order[a.order]["overtime"] += overlap * ot.cost_per_hour / 60
    late_total = 0.0
    finish: dict[str, int] = {}
    for a in schedule:
        finish[a.order] = max(finish.get(a.order, 0), a.end)
    declined_total = 0.0
    for order in problem.orders:
        terms = cost.terms.get(order.id)
        if order.id not in finish:
            forgone = terms.margin if terms is not None else 0.0
            declined_total += forgone
            by_order[order.id]["declined"] += forgone
            continue
        if terms is None or order.due is None or finish[order.id] <= order.due:
            continue
        penalty = terms.late_penalty_per_day * math.ceil((finish[order.id] - order.due) / MINUTES_PER_DAY)
        late_total += penalty
        by_order[order.id]["late"] += penalty
    return CostBreakdown(
        material=material_total,
        holding=holding_total,
        energy=energy_total,
        overtime=overtime_total,
        late=late_total,
        declined=declined_total,
        by_order={o: dict(v) for o, v in by_order.items()},
        by_material={m: dict(v) for m, v in by_material.items()},
    )


def _cost(problem: Problem) -> CostData:
    if problem.cost is None:
        raise ValueError("the problem has no cost data")
    return problem.cost


def _accepted_problem(problem: Problem, declined: Sequence[str]) -> Problem:
    if not declined:
        return problem
    cost = _cost(problem)
    return dataclasses.replace(
        problem,
        orders=tuple(o for o in problem.orders if o.id not in declined),
        cost=dataclasses.replace(cost, orders=tuple(t for t in cost.orders if t.order not in declined)),
    )


def _stock_levels(
    problem: Problem, schedule: Sequence[Assignment], purchases: Sequence[Purchase]
) -> dict[str, list[tuple[int, int]]]:
    """Per material, the stock after all events at each minute something happens, in time order."""
    cost = _cost(problem)
    events: dict[str, dict[int, int]] = {m.id: {0: m.stock} for m in cost.materials}
    for p in purchases:
        if p.material in events:
            at = p.arrival_day * MINUTES_PER_DAY
            events[p.material][at] = events[p.material].get(at, 0) + p.quantity
    for a in schedule:
        for material, units in cost.consumption(problem, a.order, a.op_index).items():
            events[material][a.start] = events[material].get(a.start, 0) - units
    levels: dict[str, list[tuple[int, int]]] = {}
    for material, changes in events.items():
        level = 0
        levels[material] = []
        for minute in sorted(changes):
            level += changes[minute]
            levels[material].append((minute, level))
    return levels


def _kwh_price_minutes(cost: CostData, start: int, end: int) -> float:
    """Sum over the minutes of ``[start, end)`` of the price per kWh: hour by hour."""
    total = 0.0
    hour_start = (start // 60) * 60
    while hour_start < end:
        overlap = min(end, hour_start + 60) - max(start, hour_start)
        total += overlap * cost.tariff_at(hour_start)
        hour_start += 60
    return total


def _idle_energy(problem: Problem, cost: CostData, schedule: Sequence[Assignment]) -> float:
    """Idle draw over every machine's working time; the running surcharge is added per operation."""
    assert problem.horizon is not None
    total = 0.0
    for machine in problem.machines:
        power = cost.power_by_machine.get(machine.id)
        if power is None or power.idle_kw == 0:
            continue
        for start, end in working_windows(machine, horizon=problem.horizon):
            total += power.idle_kw * _kwh_price_minutes(cost, start, end) / 60
    return total
