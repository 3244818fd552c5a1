"""A quick dispatching-rule schedule: the solver's first solution and horizon.

Giffler-Thompson style: among the next operation of every order, find the
one that could finish first; of the operations competing for that machine
and able to start before that finish, dispatch the most urgent. Urgency is
least slack to the due date, then most work remaining (the MWKR rule, the
strongest simple rule for makespan), unless a plan is being repaired. Frozen operations are dispatched first,
at their fixed start. Operations are only appended after a machine's last
one, which keeps the rule short; it may get stuck on unusual frozen
operations, and then the solver simply starts without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from automation.scheduling.engine.availability import working_windows
from automation.scheduling.engine.problem import Assignment, FrozenOp, OpKey, Problem, Window


def dispatch(
    problem: Problem,
    *,
    horizon: int,
    frozen: Sequence[FrozenOp] = (),
    now: int = 0,
    follow: Sequence[Assignment] = (),
) -> tuple[Assignment, ...] | None:
    """A schedule built by the rule, or None when the rule gets stuck.

    With ``follow``, a plan that no longer fits (a breakdown, a new order), the
    most urgent operation is the one that started first in that plan: the
    plan is repaired rather than replaced, and new operations come last.
    """
    planned = {a.key: a.start for a in follow}
    windows = {m.id: working_windows(m, horizon=horizon) for m in problem.machines}
    fixed = {(op.order, op.op_index): op for op in frozen}
    durations = {key: problem.durations(key) for key, _ in problem.operations()}
    for key, op in fixed.items():
        durations[key] = {op.machine: durations[key][op.machine]}
    work_left: dict[OpKey, int] = {}  # from each operation to the order's end, on the quickest machines
    for order in problem.orders:
        total = 0
        for index in reversed(range(len(problem.routing(order.id)))):
            total += min(durations[order.id, index].values())
            work_left[order.id, index] = total
    free_at = dict.fromkeys(windows, 0)
    last_family: dict[str, str] = {}
    next_index = {order.id: 0 for order in problem.orders}
    ready = {order.id: order.release for order in problem.orders}
    schedule: list[Assignment] = []

    def place(order_id: str, machine: str, duration: int) -> Assignment | None:
        key = (order_id, next_index[order_id])
        previous = last_family.get(machine)
        setup = 0 if previous is None else problem.setup_minutes(machine, previous, problem.family(order_id))
        materials = problem.routing(order_id)[key[1]].materials
        earliest = max([ready[order_id], *(problem.material_arrivals.get(m, horizon) for m in materials)])
        start: int | None
        if key in fixed:
            start = fixed[key].start
            if start < earliest or start - setup < free_at[machine]:
                return None
        else:
            start = _fit(
                windows[machine],
                free_at=max(free_at[machine], now),
                earliest=earliest,
                setup=setup,
                duration=duration,
            )
        return None if start is None else Assignment(*key, machine, start, start + duration, setup)

    def urgency(a: Assignment) -> tuple[float, float, int]:
        due = problem.order(a.order).due
        work = work_left[a.key]
        return (planned.get(a.key, math.inf), math.inf if due is None else due - work, -work)

    while True:
        candidates = []
        for order_id, index in next_index.items():
            if index == len(problem.routing(order_id)):
                continue
            options = [a for m, d in durations[order_id, index].items() if (a := place(order_id, m, d))]
            if not options:
                return None
            candidates.append(min(options, key=lambda a: a.end))
        if not candidates:
            return tuple(schedule)
        if in_the_past := [a for a in candidates if a.key in fixed]:
            chosen = min(in_the_past, key=lambda a: a.start)
        else:
            first = min(candidates, key=lambda a: a.end)
            competing = [a for a in candidates if a.machine == first.machine and a.start < first.end]
            chosen = min(competing, key=urgency)
        schedule.append(chosen)
        free_at[chosen.machine] = chosen.end
        last_family[chosen.machine] = problem.family(chosen.order)
        ready[chosen.order] = chosen.end
        next_index[chosen.order] += 1


def _fit(windows: Sequence[Window], *, free_at: int, earliest: int, setup: int, duration: int) -> int | None:
    """Earliest start with its setup right before it, both inside one window and after ``free_at``."""
    for start, end in windows:
        begin = max(start + setup, free_at + setup, earliest)
        if begin + duration <= end:
            return begin
    return None
