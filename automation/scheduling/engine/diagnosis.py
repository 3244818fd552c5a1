"""Say which order cannot be scheduled and why, instead of a bare "infeasible".

Each order is checked on its own, as if it had the factory to itself: earliest
start from release, material arrivals and the predecessor's earliest finish,
earliest finish on the quickest capable machine that has a long enough working
window. Anything that fails even then is a fact about that order, which a
planner can act on; conflicts between orders are left to the solver.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from itertools import pairwise

from automation.scheduling.engine.availability import (
    earliest_fit,
    inside_one,
    planning_horizon,
    working_windows,
)
from automation.scheduling.engine.problem import FrozenOp, Order, Problem, Window


class Reason(StrEnum):
    NO_CAPABLE_MACHINE = "no_capable_machine"
    MATERIAL_NEVER_ARRIVES = "material_never_arrives"
    BEYOND_HORIZON = "beyond_horizon"
    DUE_BEFORE_EARLIEST_FINISH = "due_before_earliest_finish"
    FROZEN_CONFLICT = "frozen_conflict"
    CONFLICTING_ORDERS = "conflicting_orders"  # each order fits alone, not all together


@dataclass(frozen=True)
class Finding:
    order: str | None
    operation: int | None
    reason: Reason
    message: str


def diagnose(problem: Problem, *, frozen: Sequence[FrozenOp] = (), now: int = 0) -> list[Finding]:
    """Reasons the problem is infeasible that can be pinned on one order; empty when none is found."""
    horizon = planning_horizon(problem, frozen=frozen, now=now)
    windows = {m.id: working_windows(m, horizon=horizon) for m in problem.machines}
    findings = list(_frozen_overlaps(problem, frozen))
    for order in problem.orders:
        findings += _order_findings(problem, order, windows, frozen=frozen, now=now, horizon=horizon)
    return findings


def _order_findings(
    problem: Problem,
    order: Order,
    windows: dict[str, tuple[Window, ...]],
    *,
    frozen: Sequence[FrozenOp],
    now: int,
    horizon: int,
) -> Iterator[Finding]:
    fixed = {op.op_index: op for op in frozen if op.order == order.id}
    ready = order.release  # earliest the next operation may start, as far as this order alone knows
    for index, operation in enumerate(problem.routing(order.id)):
        durations = problem.durations((order.id, index))
        finding = partial(_finding, order.id, index)
        missing = [m for m in operation.materials if m not in problem.material_arrivals]
        late = [m for m in operation.materials if problem.material_arrivals.get(m, 0) >= horizon]
        if missing or late:
            yield finding(
                Reason.MATERIAL_NEVER_ARRIVES,
                "; ".join(
                    [f"material {m!r} has no arrival" for m in missing]
                    + [f"material {m!r} arrives at {problem.material_arrivals[m]}, after the horizon" for m in late]
                ),
            )
            return
        ready = max([ready, *(problem.material_arrivals[m] for m in operation.materials)])
        if index in fixed:
            op = fixed[index]
            end = op.start + durations[op.machine]
            if op.start < ready:
                yield finding(Reason.FROZEN_CONFLICT, f"frozen at {op.start}, but it cannot start before {ready}")
                return
            if not inside_one(windows[op.machine], op.start, end):
                yield finding(Reason.FROZEN_CONFLICT, f"frozen at {op.start}-{end}, when {op.machine!r} is unavailable")
                return
            ready = end
            continue
        usable = {m: d for m, d in durations.items() if any(e - s >= d for s, e in windows[m])}
        if not usable:
            yield finding(Reason.NO_CAPABLE_MACHINE, _no_machine_message(durations))
            return
        earliest = max(ready, now)
        finishes = [
            start + d
            for m, d in usable.items()
            if (start := earliest_fit(windows[m], earliest=earliest, duration=d)) is not None
        ]
        if not finishes:
            yield finding(
                Reason.BEYOND_HORIZON,
                f"cannot start before {earliest} and fit a working window before the horizon ({horizon})",
            )
            return
        ready = min(finishes)
    if problem.hard_due_dates and order.due is not None and ready > order.due:
        yield _finding(
            order.id,
            len(problem.routing(order.id)) - 1,
            Reason.DUE_BEFORE_EARLIEST_FINISH,
            f"the order cannot finish before {ready}, after its hard due date {order.due}",
        )


def _finding(order_id: str, index: int, reason: Reason, message: str) -> Finding:
    return Finding(order_id, index, reason, f"order {order_id!r} operation {index}: {message}")


def _no_machine_message(durations: dict[str, int]) -> str:
    if not durations:
        return "no machine is able to do it"
    listed = ", ".join(f"{m!r} ({d} min)" for m, d in durations.items())
    return f"none of its machines {listed} has a working window long enough"


def _frozen_overlaps(problem: Problem, frozen: Sequence[FrozenOp]) -> Iterator[Finding]:
    # if any two overlap, some two neighbours in start order overlap, so neighbours suffice
    ops = sorted(frozen, key=lambda op: (op.machine, op.start))
    for first, second in pairwise(ops):
        first_end = first.start + problem.durations((first.order, first.op_index))[first.machine]
        if first.machine == second.machine and second.start < first_end:
            yield _finding(
                second.order,
                second.op_index,
                Reason.FROZEN_CONFLICT,
                f"frozen on {second.machine!r} at {second.start}, overlapping order {first.order!r} "
                f"operation {first.op_index}",
            )
