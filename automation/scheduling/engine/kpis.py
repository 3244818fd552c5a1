"""Figures a planner judges a schedule by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from automation.scheduling.engine.availability import working_windows
from automation.scheduling.engine.problem import Assignment, Problem


@dataclass(frozen=True)
class Kpis:
    makespan: int
    tardiness: dict[str, int]  # minutes late per order that has a due date
    weighted_tardiness: int
    on_time_rate: float | None  # share of orders with a due date that finish by it; None when none has one
    utilisation: dict[str, float]  # per machine: (setup + processing) / working minutes before the makespan


def makespan(schedule: Sequence[Assignment]) -> int:
    return max((a.end for a in schedule), default=0)


def tardiness(problem: Problem, schedule: Sequence[Assignment]) -> dict[str, int]:
    finish: dict[str, int] = {}
    for a in schedule:
        finish[a.order] = max(finish.get(a.order, 0), a.end)
    return {
        order.id: max(0, finish[order.id] - order.due)
        for order in problem.orders
        if order.due is not None and order.id in finish
    }


def compute_kpis(problem: Problem, schedule: Sequence[Assignment]) -> Kpis:
    end = makespan(schedule)
    late = tardiness(problem, schedule)
    busy = dict.fromkeys((m.id for m in problem.machines), 0)
    for a in schedule:
        busy[a.machine] += a.end - a.start + a.setup
    working = {m.id: sum(stop - start for start, stop in working_windows(m, horizon=end)) for m in problem.machines}
    return Kpis(
        makespan=end,
        tardiness=late,
        weighted_tardiness=sum(problem.order(order).weight * minutes for order, minutes in late.items()),
        on_time_rate=sum(minutes == 0 for minutes in late.values()) / len(late) if late else None,
        utilisation={m: busy[m] / working[m] if working[m] else 0.0 for m in busy},
    )
