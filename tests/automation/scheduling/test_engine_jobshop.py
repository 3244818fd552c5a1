"""Scheduling engine on the classic job-shop form: known optimum, converter, callbacks, hints, validation."""

from __future__ import annotations

import random

import pytest
from ortools.sat.python import cp_model

from automation.scheduling.engine import (
    Machine,
    Operation,
    Option,
    Order,
    Problem,
    ProblemError,
    Product,
    SetupTime,
    check_schedule,
    problem_from_jobshop,
    solve,
)
from automation.scheduling.engine.kpis import makespan

# Fisher & Thompson's 6x6 instance, (machine, duration) per operation; optimum makespan 55.
FT06 = [
    [(2, 1), (0, 3), (1, 6), (3, 7), (5, 3), (4, 6)],
    [(1, 8), (2, 5), (4, 10), (5, 10), (0, 10), (3, 4)],
    [(2, 5), (3, 4), (5, 8), (0, 9), (1, 1), (4, 7)],
    [(1, 5), (0, 5), (2, 5), (3, 3), (4, 8), (5, 9)],
    [(2, 9), (1, 3), (4, 5), (5, 4), (0, 3), (3, 1)],
    [(1, 3), (3, 3), (5, 9), (0, 10), (4, 4), (2, 1)],
]


def test_ft06_is_solved_to_its_known_optimum_of_55() -> None:
    """A lost precedence or no-overlap would go below 55, a weak model would stop above it or not prove it."""
    problem = problem_from_jobshop(FT06)
    result = solve(problem, time_limit_s=30, workers=2)
    assert result.status == "optimal"
    assert result.objective == result.best_bound == makespan(result.schedule) == 55
    assert result.gap == 0
    assert check_schedule(problem, result.schedule) == []


def test_converter_maps_jobs_to_orders_and_machines_with_unchanged_durations() -> None:
    """Catches the converter dropping operations, swapping machine and duration, or scaling durations."""
    problem = problem_from_jobshop(FT06)
    assert [m.id for m in problem.machines] == [f"M{m}" for m in range(6)]
    assert [o.id for o in problem.orders] == [f"J{j}" for j in range(6)]
    assert problem.durations(("J1", 2)) == {"M4": 10}
    assert len(problem.routing("J5")) == 6


def test_flexible_operations_run_on_one_of_their_alternatives_and_use_both() -> None:
    """Two jobs, each 4 min on M0 or 6 min on M1, then 1 min on M2: optimum 7 needs the slower machine for one."""
    problem = problem_from_jobshop([[[(0, 4), (1, 6)], (2, 1)], [[(0, 4), (1, 6)], (2, 1)]])
    result = solve(problem, time_limit_s=10, workers=2)
    assert result.status == "optimal"
    assert result.objective == 7
    assert {a.machine for a in result.schedule if a.op_index == 0} == {"M0", "M1"}
    assert check_schedule(problem, result.schedule) == []


def test_on_solution_reports_strictly_improving_feasible_snapshots() -> None:
    """Catches snapshots read from the wrong variables, or progress that is not the objective of its snapshot."""
    problem = problem_from_jobshop(FT06)
    seen: list[tuple[int, int, int, float]] = []

    def on_solution(objective: int, bound: int, schedule: tuple, wall_time: float) -> None:
        assert check_schedule(problem, schedule) == []
        seen.append((objective, bound, makespan(schedule), wall_time))

    result = solve(problem, time_limit_s=30, workers=2, on_solution=on_solution)
    assert seen, "no solution was reported"
    assert all(objective == span and bound <= objective for objective, bound, span, _ in seen)
    objectives = [objective for objective, *_ in seen]
    assert objectives == sorted(set(objectives), reverse=True)
    assert objectives[-1] == result.objective == 55


def test_a_given_hint_is_followed_to_the_first_solution() -> None:
    """An optimal schedule as hint must come back as the first solution: catches hints that are ignored or rejected."""
    problem = problem_from_jobshop(FT06)
    optimal = solve(problem, time_limit_s=30, workers=2).schedule
    first: list[int] = []
    result = solve(problem, time_limit_s=30, workers=1, hint=optimal, on_solution=lambda o, *_: first.append(o))
    assert first[0] == 55
    assert result.objective == 55


def test_invalid_problem_lists_every_issue_naming_the_offender() -> None:
    """Catches validation that stops at the first issue or gives messages the planner cannot trace back."""
    with pytest.raises(ProblemError) as raised:
        Problem(
            machines=(Machine("M1"), Machine("M1", calendar=((50, 10),))),
            products=(Product("P1", (Operation((Option("M9", 2),)), Operation((Option("M1", 0),)))),),
            orders=(Order("O1", "P404"), Order("O2", "P1", quantity=0)),
            setups=(SetupTime("M1", "a", "b", -5),),
        )
    issues = raised.value.issues
    expected = [
        "machine 'M1' is listed 2 times",
        "machine 'M1': calendar window (50, 10)",
        "product 'P1' operation 0: unknown machine 'M9'",
        "product 'P1' operation 1: minutes per unit on 'M1' must be positive",
        "order 'O1': unknown product 'P404'",
        "order 'O2': quantity must be positive",
        "setup time on 'M1' 'a'->'b' is negative",
    ]
    for fragment in expected:
        assert any(fragment in issue for issue in issues), (fragment, issues)
    assert len(issues) == len(expected)


def textbook_optimum(jobs: list[list[tuple[int, int]]]) -> int:
    """The plain CP-SAT job-shop model, as in the OR-Tools documentation, solved to optimality."""
    model = cp_model.CpModel()
    horizon = sum(d for job in jobs for _, d in job)
    per_machine: dict[int, list[cp_model.IntervalVar]] = {}
    ends = []
    for job in jobs:
        previous = None
        for machine, duration in job:
            start = model.new_int_var(0, horizon, "")
            end = model.new_int_var(0, horizon, "")
            per_machine.setdefault(machine, []).append(model.new_interval_var(start, duration, end, ""))
            if previous is not None:
                model.add(start >= previous)
            previous = end
        ends.append(previous)
    for intervals in per_machine.values():
        model.add_no_overlap(intervals)
    makespan_var = model.new_int_var(0, horizon, "")
    model.add_max_equality(makespan_var, ends)
    model.minimize(makespan_var)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 2
    assert solver.solve(model) == cp_model.OPTIMAL
    return round(solver.objective_value)


@pytest.mark.parametrize("seed", range(8))
def test_engine_optimum_equals_the_textbook_model_optimum(seed: int) -> None:
    """Catches the engine's extras (heuristic horizon, hint, start domains) cutting off optimal schedules,
    or its formulation allowing schedules the textbook model forbids."""
    rng = random.Random(seed)
    jobs = [[(m, rng.randint(1, 20)) for m in rng.sample(range(4), 4)] for _ in range(6)]
    result = solve(problem_from_jobshop(jobs), time_limit_s=20, workers=2)
    assert result.status == "optimal"
    assert result.objective == textbook_optimum(jobs)
