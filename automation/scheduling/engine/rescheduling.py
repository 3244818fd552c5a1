"""Re-planning when the day does not go to plan: breakdowns, rush orders."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from automation.scheduling.engine.availability import inside_one, planning_horizon, working_windows
from automation.scheduling.engine.problem import Assignment, FrozenOp, Problem


def add_downtime(problem: Problem, *, machine: str, start: int, end: int) -> Problem:
    """``problem`` with ``machine`` unavailable during ``[start, end)``, e.g. a breakdown."""
    machines = tuple(
        dataclasses.replace(m, downtime=(*m.downtime, (start, end))) if m.id == machine else m for m in problem.machines
    )
    return dataclasses.replace(problem, machines=machines)


def freeze_started(problem: Problem, schedule: Sequence[Assignment], *, now: int) -> tuple[FrozenOp, ...]:
    """The operations of ``schedule`` that started before ``now``, to keep as they are.

    An operation that unavailable time in ``problem`` now cuts through (the
    breakdown just added) is not frozen: it was interrupted and is planned
    again from scratch, as an interrupted operation restarts.
    """
    horizon = max(planning_horizon(problem), max((a.end for a in schedule), default=0))
    windows = {m.id: working_windows(m, horizon=horizon) for m in problem.machines}
    return tuple(
        FrozenOp(a.order, a.op_index, a.machine, a.start)
        for a in schedule
        if a.start < now and inside_one(windows[a.machine], a.start - a.setup, a.end)
    )
