"""Robust cost plans: the lowest expected cost over several price scenarios.

A plan is a schedule and its purchase orders (supplier, order day, quantity), committed now; a scenario changes
what they cost (``scenarios.py``). For a fixed plan every price, and every tariff hour, enters the cost
linearly, so the plan's expected cost over equally likely scenarios is its cost at the scenarios' mean prices
(``averaged``). The robust search therefore makes two candidate plans: the plan for the problem as given (the
expected prices, e.g. the forecast mean), and the plan for the scenario-mean prices, started from the first.
Each is priced on every scenario and the one with the lower expected cost is returned, so the robust plan is
never worse in expectation than the plan made for the mean prices, evaluated on the same scenarios. Where the
two sets of prices agree (to the thousandth) one plan is made, with all the time.

Only price and tariff changes make a robust scenario: a changed lead time or machine changes which plans are
feasible, which an expectation over fixed plans cannot weigh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from automation.scheduling.engine.costs import to_millis
from automation.scheduling.engine.problem import Assignment, FrozenOp, Problem
from automation.scheduling.engine.scenarios import averaged, plan_cost, repriced
from automation.scheduling.engine.solver import SolveResult, solve


@dataclass(frozen=True)
class Candidate:
    name: str  # "mean_prices" or "scenario_mean"
    expected: float
    per_scenario: tuple[float, ...]

    @property
    def worst(self) -> float:
        return max(self.per_scenario)


def solve_robust(
    problem: Problem,
    scenarios: Sequence[Problem],
    *,
    time_limit_s: float,
    workers: int,
    frozen: Sequence[FrozenOp] = (),
    now: int = 0,
    on_solution: Callable[[int, int, tuple[Assignment, ...], float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    hint: Sequence[Assignment] | None = None,
) -> tuple[SolveResult, dict[str, Any]]:
    """The chosen plan (purchases and costs at ``problem``'s prices) and the report: expected, worst and
    per-scenario cost of each candidate, and which was chosen."""
    if not scenarios:
        raise ValueError("a robust plan needs at least one scenario")
    mean = averaged(problem, scenarios)
    distinct = _prices_differ(problem, mean)
    first_share = 0.5 if distinct else 1.0

    def run(target: Problem, seconds: float, start: Sequence[Assignment] | None) -> SolveResult:
        return solve(
            target,
            objective="cost",
            time_limit_s=seconds,
            workers=workers,
            frozen=frozen,
            now=now,
            on_solution=on_solution,
            should_stop=should_stop,
            hint=start,
        )

    results = {"mean_prices": run(problem, time_limit_s * first_share, hint)}
    first = results["mean_prices"]
    stopped = should_stop is not None and should_stop()
    if distinct and first.schedule and not stopped and first.status != "infeasible":
        results["scenario_mean"] = run(mean, time_limit_s * (1 - first_share), first.schedule)
    candidates = []
    for name, result in results.items():
        if not result.schedule:
            continue
        totals = tuple(round(plan_cost(s, result.schedule, result.purchases).total, 2) for s in scenarios)
        candidates.append(Candidate(name, round(sum(totals) / len(totals), 2), totals))
    if not candidates:
        return first, {"scenarios": len(scenarios), "candidates": [], "chosen": None}
    best = min(candidates, key=lambda c: (c.expected, c.name != "mean_prices"))  # a tie keeps the mean plan
    chosen = results[best.name]
    purchases = repriced(problem, chosen.purchases)
    costs = plan_cost(problem, chosen.schedule, purchases)
    outcome = dataclasses.replace(
        chosen,
        purchases=purchases,
        costs=costs,
        objective=to_millis(costs.total),
        best_bound=None if chosen is not first else first.best_bound,
        wall_time=sum(r.wall_time for r in results.values()),
    )
    report = {
        "scenarios": len(scenarios),
        "chosen": best.name,
        "expected_cost": best.expected,
        "worst_cost": best.worst,
        "per_scenario": list(best.per_scenario),
        "candidates": [
            {"plan": c.name, "expected_cost": c.expected, "worst_cost": c.worst, "per_scenario": list(c.per_scenario)}
            for c in candidates
        ],
    }
    return outcome, report


def _prices_differ(problem: Problem, mean: Problem) -> bool:
    assert problem.cost is not None and mean.cost is not None and problem.horizon is not None
    days = -(-problem.horizon // 1440)
    given = {s.id: s for s in problem.cost.suppliers}
    for supplier in mean.cost.suppliers:
        if any(to_millis(supplier.price(d)) != to_millis(given[supplier.id].price(d)) for d in range(days)):
            return True
    hours = -(-problem.horizon // 60)
    return any(
        to_millis(problem.cost.tariff_at(h * 60)) != to_millis(mean.cost.tariff_at(h * 60)) for h in range(hours)
    )
