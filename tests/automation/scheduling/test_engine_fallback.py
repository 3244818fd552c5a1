"""When CP-SAT finds nothing in time, the valid starting schedule is the answer, not "no solution"."""

from __future__ import annotations

from automation.scheduling.engine import MixWeights, check_schedule, compute_kpis, problem_from_jobshop, solve
from tests.automation.scheduling.test_engine_rescheduling import FT06, busy_factory


def test_no_time_to_search_still_returns_the_dispatching_rule_schedule() -> None:
    """Catches the regression where a loaded machine or a tiny limit left CP-SAT without a solution and solve()
    returned none, although the dispatching rule had a valid plan in hand."""
    problem = busy_factory()
    result = solve(problem, objective="weighted_tardiness", time_limit_s=0, workers=2)
    assert result.status == "feasible" and result.best_bound is None and result.gap is None
    assert check_schedule(problem, result.schedule) == []
    assert result.objective == compute_kpis(problem, result.schedule).weighted_tardiness


def test_the_fallback_is_valued_with_the_objective_asked_for() -> None:
    """Catches a fallback reported with another objective's value (makespan for a weighted mix)."""
    problem = problem_from_jobshop(FT06, due_dates=[20] * 6, weights=[1, 2, 3, 1, 2, 3])
    result = solve(problem, objective="weighted_mix", weights=MixWeights(makespan=3, tardiness=2), time_limit_s=0)
    kpis = compute_kpis(problem, result.schedule)
    assert result.best_bound is None  # the fallback, not a CP-SAT solution
    assert result.objective == 3 * kpis.makespan + 2 * kpis.weighted_tardiness


def test_a_stop_before_any_solution_keeps_the_starting_schedule() -> None:
    """Catches a cancel during preparation throwing away the only plan there is."""
    problem = busy_factory()
    result = solve(problem, objective="weighted_tardiness", time_limit_s=120, workers=2, should_stop=lambda: True)
    # Far below the limit however busy the machine: the stop ended it, not the limit.
    assert result.status == "cancelled" and result.wall_time < 60 and result.schedule
    assert check_schedule(problem, result.schedule) == []
