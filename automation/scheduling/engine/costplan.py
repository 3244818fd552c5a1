"""The plant's usual practice, and the cost search's first plan.

Usual practice: schedule for the due dates (the dispatching rule of ``heuristic.py``), then buy each material
from the supplier that is cheapest when it is needed, to arrive on the day it is needed (stock on hand first,
at least the minimum order quantity). Operations that would need material before any supplier can deliver it
wait until one can (``retime``), unless the stock on hand covers them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from automation.scheduling.engine.availability import working_windows
from automation.scheduling.engine.costs import MINUTES_PER_DAY, CostData, Purchase, Supplier
from automation.scheduling.engine.heuristic import dispatch
from automation.scheduling.engine.problem import Assignment, Problem


def earliest_delivery(cost: CostData, material: str) -> float:
    """The first minute a purchase of ``material`` can arrive; infinity without suppliers."""
    leads = [s.lead_days for s in cost.suppliers_of(material)]
    return (cost.order_day_from + min(leads)) * MINUTES_PER_DAY if leads else math.inf


def retime(problem: Problem, schedule: Sequence[Assignment], *, slot: int = 1) -> tuple[Assignment, ...] | None:
    """``schedule``'s machines and sequences, each operation as early as the rules, ``slot`` and material allow.

    None when something no longer fits before the horizon.
    """
    assert problem.cost is not None and problem.horizon is not None
    cost = problem.cost
    horizon = problem.horizon
    windows = {m.id: working_windows(m, horizon=horizon) for m in problem.machines}
    free_at: dict[str, int] = {}
    family_on: dict[str, str] = {}
    order_ready = {o.id: o.release for o in problem.orders}
    early_used: dict[str, int] = defaultdict(int)
    placed: list[Assignment] = []
    for a in sorted(schedule, key=lambda a: (a.start, a.op_index)):
        previous = family_on.get(a.machine)
        setup = 0 if previous is None else problem.setup_minutes(a.machine, previous, problem.family(a.order))
        duration = a.end - a.start
        used = cost.consumption(problem, a.order, a.op_index)
        earliest = max(
            [
                order_ready[a.order],
                free_at.get(a.machine, 0) + setup,
                *(problem.material_arrivals.get(m, horizon) for m in problem.routing(a.order)[a.op_index].materials),
            ]
        )
        for material, units in used.items():
            stock = cost.material_by_id[material].stock
            if early_used[material] + units > stock:
                earliest = max(earliest, int(min(earliest_delivery(cost, material), horizon + 1)))
        start = _fit(windows[a.machine], earliest=earliest, setup=setup, duration=duration, slot=slot)
        if start is None:
            return None
        for material, units in used.items():
            if start < earliest_delivery(cost, material):
                early_used[material] += units
        placed.append(Assignment(a.order, a.op_index, a.machine, start, start + duration, setup))
        free_at[a.machine] = start + duration
        family_on[a.machine] = problem.family(a.order)
        order_ready[a.order] = start + duration
    return tuple(placed)


def jit_purchases(problem: Problem, schedule: Sequence[Assignment]) -> tuple[Purchase, ...] | None:
    """Buy what the stock cannot cover, from the supplier cheapest for it, to arrive on the day it is needed.

    None when some material is needed before any supplier can deliver it.
    """
    assert problem.cost is not None
    cost = problem.cost
    needs: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for a in schedule:
        for material, units in cost.consumption(problem, a.order, a.op_index).items():
            needs[material][a.start // MINUTES_PER_DAY] += units
    purchases: list[Purchase] = []
    for material, by_day in sorted(needs.items()):
        level = cost.material_by_id[material].stock
        for day in sorted(by_day):
            need = by_day[day]
            if level < need:
                best = _cheapest(
                    cost.suppliers_of(material), day=day, shortfall=need - level, first=cost.order_day_from
                )
                if best is None:
                    return None
                purchases.append(best)
                level += best.quantity
            level -= need
    return tuple(purchases)


def usual_practice(problem: Problem) -> tuple[tuple[Assignment, ...], tuple[Purchase, ...]] | None:
    """The plant's plan without the optimiser; None when the rule finds none within the horizon."""
    assert problem.horizon is not None
    scheduled = dispatch(problem, horizon=problem.horizon)
    if scheduled is None:
        return None
    timed = retime(problem, scheduled)
    if timed is None:
        return None
    purchases = jit_purchases(problem, timed)
    return None if purchases is None else (timed, purchases)


def _cheapest(suppliers: Sequence[Supplier], *, day: int, shortfall: int, first: int) -> Purchase | None:
    offers = []
    for supplier in suppliers:
        order_day = day - supplier.lead_days
        if order_day < first:
            continue
        quantity = max(shortfall, supplier.moq)
        unit = supplier.unit_millis(order_day, quantity)
        offers.append((unit * quantity, supplier.id, supplier, order_day, quantity, unit))
    if not offers:
        return None
    paid, _, supplier, order_day, quantity, unit = min(offers, key=lambda o: (o[0], o[1]))
    return Purchase(supplier.id, supplier.material, order_day, day, quantity, unit / 1000, paid / 1000)


def _fit(windows: Sequence[tuple[int, int]], *, earliest: int, setup: int, duration: int, slot: int) -> int | None:
    """Earliest start on a multiple of ``slot``, its setup right before it, both inside one window."""
    for w_start, w_end in windows:
        begin = max(w_start + setup, earliest)
        begin = -(-begin // slot) * slot
        if begin + duration <= w_end:
            return begin
    return None
