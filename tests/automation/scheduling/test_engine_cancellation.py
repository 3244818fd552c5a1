"""Cancelling a long solve returns the best schedule so far, promptly, with status "cancelled"."""

from __future__ import annotations

import random
import time

from automation.scheduling.engine import check_schedule, problem_from_jobshop, solve
from automation.scheduling.engine.kpis import makespan


def hard_instance() -> list[list[tuple[int, int]]]:
    """15 jobs x 10 machines like la21: CP-SAT needs minutes to prove optimality, not seconds."""
    rng = random.Random(21)
    return [[(m, rng.randint(5, 99)) for m in rng.sample(range(10), 10)] for _ in range(15)]


def test_stop_requested_after_the_first_solution_returns_that_solution() -> None:
    """Catches should_stop being ignored by the solution callback, or the best-so-far schedule being dropped."""
    problem = problem_from_jobshop(hard_instance())
    reported: list[tuple[int, float]] = []
    result = solve(
        problem,
        time_limit_s=300,
        workers=2,
        on_solution=lambda objective, *_: reported.append((objective, time.monotonic())),
        should_stop=lambda: bool(reported),
    )
    assert result.status == "cancelled"
    # On a loaded machine the first solution itself can take half a minute; from it, the stop must end the search
    # far sooner than the 300 s limit that a lost stop would run to.
    assert time.monotonic() - reported[0][1] < 60
    assert result.objective == makespan(result.schedule) == reported[-1][0]
    assert result.gap is not None and result.gap > 0
    assert check_schedule(problem, result.schedule) == []


def test_stop_requested_at_an_arbitrary_moment_ends_the_search_promptly() -> None:
    """should_stop turns True half a second in, whether or not a new solution comes: catches a stop request
    that is lost or only honoured at the time limit."""
    problem = problem_from_jobshop(hard_instance())
    deadline = time.monotonic() + 0.5
    result = solve(problem, time_limit_s=300, workers=2, should_stop=lambda: time.monotonic() > deadline)
    assert result.status == "cancelled"
    assert time.monotonic() - deadline < 60  # the limit is 300 s: a lost stop would run to it
    assert check_schedule(problem, result.schedule) == []
