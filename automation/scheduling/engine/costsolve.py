"""``objective="cost"``: the schedule and the purchase plan decided together, at the lowest total cost.

The start is the plant's usual practice (``costplan.py``) moved onto the slot grid, with the cheapest purchases
for it. Up to ``FULL_MODEL_OPS`` operations, one CP-SAT model holds the whole plan (``costmodel.py``) and CP-SAT
and the large neighbourhood search improve it side by side (``search.py``), as for the other objectives; it
proves small plans optimal. Beyond, a fix-and-optimise search (``costlns.py``) re-plans a part of the plan at a
time, with all purchases. The incumbent is a schedule; the purchases that go with it are the cheapest for that
schedule (``costlns.price``, a small lot-sizing problem, solved at the end: unlike the other objectives, this
final step may run past ``time_limit_s``, by at most a tenth of it or 10 s). Objective values are thousandths
of the currency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ortools.sat.python import cp_model

from automation.scheduling.engine.costcheck import check_plan, evaluate_plan
from automation.scheduling.engine.costlns import CostLns, price
from automation.scheduling.engine.costmodel import CostModel, EnergyRates, cost_data
from automation.scheduling.engine.costplan import jit_purchases, retime
from automation.scheduling.engine.costs import CostBreakdown, Purchase
from automation.scheduling.engine.diagnosis import Finding, Reason, diagnose
from automation.scheduling.engine.heuristic import dispatch
from automation.scheduling.engine.incumbent import Incumbent
from automation.scheduling.engine.problem import Assignment, FrozenOp, Problem, ProblemError, frozen_issues
from automation.scheduling.engine.search import search

Status = Literal["optimal", "feasible", "infeasible", "cancelled", "no_solution_in_time"]
PRICING_S = 10.0  # at least this long to find the cheapest purchases for a fixed schedule
PRICING_SHARE = 0.1  # or this share of the time limit, when longer
FULL_MODEL_OPS = 150  # up to this many operations one CP-SAT model holds the whole plan; beyond, ``costlns``


@dataclass(frozen=True)
class CostOutcome:
    status: Status
    objective: int | None
    best_bound: int | None
    schedule: tuple[Assignment, ...]
    purchases: tuple[Purchase, ...]
    costs: CostBreakdown | None
    wall_time: float
    findings: tuple[Finding, ...] = ()


def solve_cost(
    problem: Problem,
    *,
    time_limit_s: float,
    workers: int,
    frozen: Sequence[FrozenOp],
    now: int,
    on_solution: Callable[[int, int, tuple[Assignment, ...], float], None] | None,
    should_stop: Callable[[], bool] | None,
    hint: Sequence[Assignment] | None,
) -> CostOutcome:
    started = time.monotonic()
    cost_data(problem)
    issues = frozen_issues(problem, frozen)
    if issues:
        raise ProblemError(issues)
    findings = diagnose(problem, frozen=frozen, now=now)
    if findings:
        return CostOutcome("infeasible", None, None, (), (), None, time.monotonic() - started, tuple(findings))
    rates = EnergyRates.of(problem)
    start = _start(problem, hint, frozen=frozen, now=now)
    # the first plan's purchases are most of what the search saves on a large plan: give them time
    pricing_s = max(PRICING_S, PRICING_SHARE * time_limit_s)
    priced = (
        price(problem, start, rates=rates, now=now, time_limit_s=pricing_s, workers=workers)
        if start is not None
        else None
    )

    def report(value: int, bound: int, schedule: tuple[Assignment, ...]) -> None:
        if on_solution is not None:
            on_solution(value, bound, schedule, time.monotonic() - started)

    incumbent = Incumbent(report)
    if start is not None and priced is not None:
        incumbent.offer(priced[0], start)
    left = max(0.0, time_limit_s - (time.monotonic() - started))
    operations = sum(len(problem.routing(o.id)) for o in problem.orders)
    cancelled, optimal, infeasible = False, False, False
    if operations <= FULL_MODEL_OPS or incumbent.value is None:
        built = CostModel(problem, frozen=frozen, now=now, rates=rates)
        built.model.minimize(built.total)
        if start is not None:
            built.hint(start)
        outcome = search(built, built.total, incumbent, time_limit_s=left, workers=workers, should_stop=should_stop)
        if outcome.status == cp_model.MODEL_INVALID:
            raise RuntimeError("CP-SAT rejected the cost model as invalid")
        cancelled = outcome.cancelled
        optimal = outcome.status == cp_model.OPTIMAL
        infeasible = outcome.status == cp_model.INFEASIBLE
    else:
        cancelled = CostLns(problem, incumbent, rates=rates, now=now).run(started + time_limit_s, should_stop)
    if incumbent.value is None:
        if infeasible:
            conflict = Finding(
                None,
                None,
                Reason.CONFLICTING_ORDERS,
                "no plan meets every rule: machine capacity, material supply, storage or due dates conflict",
            )
            return CostOutcome("infeasible", None, None, (), (), None, time.monotonic() - started, (conflict,))
        return CostOutcome(
            "cancelled" if cancelled else "no_solution_in_time", None, None, (), (), None, time.monotonic() - started
        )
    schedule = incumbent.schedule
    final = price(problem, schedule, rates=rates, now=now, time_limit_s=pricing_s, workers=workers)
    purchases = final[1] if final is not None else jit_purchases(problem, schedule) or ()
    proven = optimal or incumbent.proven
    result: Status = "optimal" if proven else "cancelled" if cancelled else "feasible"
    bound = incumbent.value if optimal else incumbent.bound
    return CostOutcome(
        result,
        incumbent.value,
        bound,
        schedule,
        purchases,
        evaluate_plan(problem, schedule, purchases),
        time.monotonic() - started,
    )


def _start(
    problem: Problem, hint: Sequence[Assignment] | None, *, frozen: Sequence[FrozenOp], now: int
) -> tuple[Assignment, ...] | None:
    """The caller's plan, or the dispatching rule's, on the slot grid, with material when it can come."""
    assert problem.horizon is not None and problem.cost is not None
    if hint is None or not hint:
        hint = dispatch(problem, horizon=problem.horizon, frozen=frozen, now=now)
    if hint is None:
        return None
    timed = retime(problem, hint, slot=problem.cost.slot)
    if timed is None:
        return None
    purchases = jit_purchases(problem, timed)
    if purchases is None or check_plan(problem, timed, purchases, frozen=frozen, now=now):
        return None
    return timed
