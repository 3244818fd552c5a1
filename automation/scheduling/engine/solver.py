"""Solve a problem: diagnose, seed with a dispatching rule, search, report.

The starting schedule (the caller's hint if it still fits, else a dispatching
rule's) is CP-SAT's hint, a first solution at once, and, when minimising
makespan and ``check_schedule`` passes it, the horizon: no optimal schedule
ends later. The bound only shrinks domains and the model adds nothing to a
plain job shop, so the formulation is never weaker than the textbook one.
The search (``search.py``) is CP-SAT's on the full model, side by side with
a local search that starts from the same schedule.

``time_limit_s`` bounds the whole call, including the preparation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ortools.sat.python import cp_model

from automation.scheduling.engine.availability import planning_horizon
from automation.scheduling.engine.costs import CostBreakdown, Purchase
from automation.scheduling.engine.costsolve import Status as Status
from automation.scheduling.engine.costsolve import solve_cost
from automation.scheduling.engine.diagnosis import Finding, Reason, diagnose
from automation.scheduling.engine.feasibility import check_schedule
from automation.scheduling.engine.heuristic import dispatch
from automation.scheduling.engine.incumbent import Incumbent
from automation.scheduling.engine.kpis import makespan, tardiness
from automation.scheduling.engine.model import ScheduleModel
from automation.scheduling.engine.problem import Assignment, FrozenOp, Problem, ProblemError, frozen_issues
from automation.scheduling.engine.search import search
from automation.scheduling.engine.tabu import is_classic_job_shop

Objective = Literal["makespan", "weighted_tardiness", "weighted_mix", "cost"]
SolutionCallback = Callable[[int, int, tuple[Assignment, ...], float], None]


@dataclass(frozen=True)
class MixWeights:
    """``weighted_mix`` minimises makespan * ``makespan`` + weighted tardiness * ``tardiness``."""

    makespan: int = 1
    tardiness: int = 1


@dataclass(frozen=True)
class SolveResult:
    status: Status
    objective: int | None
    best_bound: int | None
    schedule: tuple[Assignment, ...]  # empty when no solution was found
    wall_time: float
    findings: tuple[Finding, ...] = ()  # why, when the status is infeasible
    purchases: tuple[Purchase, ...] = ()  # objective "cost": the purchase orders that go with the schedule
    costs: CostBreakdown | None = None  # objective "cost": what the plan costs (objective is in thousandths)

    @property
    def gap(self) -> float | None:
        """(objective - best bound) / objective: 0 once proven optimal."""
        if self.objective is None or self.best_bound is None:
            return None
        return (self.objective - self.best_bound) / self.objective if self.objective else 0.0


def solve(
    problem: Problem,
    *,
    objective: Objective = "makespan",
    weights: MixWeights = MixWeights(),  # frozen, so sharing one default is safe
    time_limit_s: float = 60.0,
    workers: int = 0,
    frozen: Sequence[FrozenOp] = (),
    now: int = 0,
    on_solution: SolutionCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    hint: Sequence[Assignment] | None = None,
) -> SolveResult:
    """Best schedule found within ``time_limit_s``.

    ``workers``: CP-SAT search threads, 0 for one per core; the neighbourhood
    search runs in one more thread. ``frozen``: operations that keep their
    machine and start. ``now``: nothing else, changeovers included, may start
    before it. ``on_solution(objective, best_bound, schedule, wall_time)`` is
    called on every strictly better solution, from a search thread.
    ``should_stop()`` is polled from a helper thread and after every
    solution; once it returns True the search ends with the best schedule so
    far and status "cancelled". ``hint``: a schedule to start from, e.g. the
    previous plan when re-planning; if it no longer fits, the dispatching rule
    repairs it first, keeping its sequence where it can. When the searches
    find no schedule in time but that starting schedule is valid, it is
    returned (status "feasible", or "cancelled", with no bound) rather than
    nothing. Raises ``ProblemError`` when a frozen operation names no real
    operation.
    """
    if objective == "cost":
        found = solve_cost(
            problem,
            time_limit_s=time_limit_s,
            workers=workers,
            frozen=frozen,
            now=now,
            on_solution=on_solution,
            should_stop=should_stop,
            hint=hint,
        )
        return SolveResult(
            found.status,
            found.objective,
            found.best_bound,
            found.schedule,
            found.wall_time,
            found.findings,
            found.purchases,
            found.costs,
        )
    started = time.monotonic()
    issues = frozen_issues(problem, frozen)
    if issues:
        raise ProblemError(issues)
    findings = diagnose(problem, frozen=frozen, now=now)
    if findings:
        return SolveResult("infeasible", None, None, (), time.monotonic() - started, tuple(findings))
    horizon = planning_horizon(problem, frozen=frozen, now=now)
    start = _starting_schedule(problem, hint=hint, horizon=horizon, frozen=frozen, now=now)
    valid = _valid_start(problem, start, objective=objective, weights=weights, frozen=frozen, now=now)
    if valid is not None and objective == "makespan":
        horizon = valid[0]  # no optimal schedule ends later than one we already have
    built = ScheduleModel(problem, horizon=horizon, frozen=frozen, now=now)
    goal = {
        "makespan": built.makespan,
        "weighted_tardiness": built.weighted_tardiness,
        "weighted_mix": weights.makespan * built.makespan + weights.tardiness * built.weighted_tardiness,
    }[objective]
    built.model.minimize(goal)
    if start is not None:
        # Also when it seeds the LNS: without the hint CP-SAT proves easy job shops faster (la32: 0.3 s, not
        # 1.6 s), but a full benchmark run without it lost la29 to plain CP-SAT, where the run with it won.
        built.hint(start)

    def report(value: int, bound: int, schedule: tuple[Assignment, ...]) -> None:
        if on_solution is not None:
            on_solution(value, bound, schedule, time.monotonic() - started)

    incumbent = Incumbent(report)
    if valid is not None:
        incumbent.seed(*valid)
    classic = objective == "makespan" and is_classic_job_shop(problem, frozen=frozen, now=now)
    outcome = search(
        built,
        goal,
        incumbent,
        time_limit_s=max(0.0, time_limit_s - (time.monotonic() - started)),
        workers=workers,
        should_stop=should_stop,
        classic_job_shop=problem if classic else None,
    )
    wall_time = time.monotonic() - started
    if outcome.status == cp_model.MODEL_INVALID:
        raise RuntimeError("CP-SAT rejected the model as invalid")
    if incumbent.reported and incumbent.value is not None:
        proven = outcome.status == cp_model.OPTIMAL or incumbent.proven
        final: Status = "optimal" if proven else "cancelled" if outcome.cancelled else "feasible"
        bound = incumbent.value if outcome.status == cp_model.OPTIMAL else incumbent.bound
        return SolveResult(final, incumbent.value, bound, incumbent.schedule, wall_time)
    if outcome.status == cp_model.INFEASIBLE:
        conflict = Finding(
            None,
            None,
            Reason.CONFLICTING_ORDERS,
            "every order can be scheduled on its own but not all together: machine capacity, "
            "hard due dates or frozen operations conflict",
        )
        return SolveResult("infeasible", None, None, (), wall_time, (conflict,))
    if valid is not None:
        # CP-SAT does not always take the hint in time (a short limit, a loaded machine); the starting
        # schedule is still a valid plan, and far better than none.
        return SolveResult("cancelled" if outcome.cancelled else "feasible", valid[0], None, valid[1], wall_time)
    return SolveResult("cancelled" if outcome.cancelled else "no_solution_in_time", None, None, (), wall_time)


def _starting_schedule(
    problem: Problem, *, hint: Sequence[Assignment] | None, horizon: int, frozen: Sequence[FrozenOp], now: int
) -> Sequence[Assignment] | None:
    """The caller's hint if it still fits, else the dispatching rule's schedule, repairing the hint if any.

    CP-SAT alone can take long to repair a plan that a breakdown broke, or to find any
    schedule at all with calendars and changeovers; the rule has one at once.
    """
    if hint is not None and not check_schedule(problem, hint, frozen=frozen, now=now):
        return hint
    repaired = dispatch(problem, horizon=horizon, frozen=frozen, now=now, follow=hint or ())
    return repaired if repaired is not None else hint


def _valid_start(
    problem: Problem,
    start: Sequence[Assignment] | None,
    *,
    objective: Objective,
    weights: MixWeights,
    frozen: Sequence[FrozenOp],
    now: int,
) -> tuple[int, tuple[Assignment, ...]] | None:
    """The starting schedule and its objective value, if it breaks no rule."""
    if start is None or check_schedule(problem, start, frozen=frozen, now=now):
        return None
    length = makespan(start)
    late = sum(problem.order(order).weight * minutes for order, minutes in tardiness(problem, start).items())
    value = {
        "makespan": length,
        "weighted_tardiness": late,
        "weighted_mix": weights.makespan * length + weights.tardiness * late,
    }[objective]
    return value, tuple(start)
