"""The large neighbourhood search: it never loses the best schedule, every schedule it keeps is feasible, and the
solve it runs inside still streams strictly better schedules, stops when asked and keeps the best."""

from __future__ import annotations

import random
import threading
import time
from itertools import pairwise

import pytest
from ortools.sat.python import cp_model

from automation.scheduling.engine import check_schedule, compute_kpis, problem_from_jobshop, solve
from automation.scheduling.engine.availability import planning_horizon
from automation.scheduling.engine.heuristic import dispatch
from automation.scheduling.engine.incumbent import Incumbent
from automation.scheduling.engine.kpis import makespan
from automation.scheduling.engine.lns import NEIGHBOURHOODS, Lns, critical_path
from automation.scheduling.engine.model import ScheduleModel
from automation.scheduling.engine.problem import Assignment, Problem
from tests.automation.scheduling.test_engine_cancellation import hard_instance
from tests.automation.scheduling.test_engine_rescheduling import FT06, busy_factory


def started_model(problem: Problem, goal: str) -> tuple[ScheduleModel, object, tuple[Assignment, ...], int]:
    """The model as ``solve`` builds it, its objective, the dispatching rule's schedule and that one's value."""
    horizon = planning_horizon(problem)
    start = dispatch(problem, horizon=horizon)
    assert start is not None and check_schedule(problem, start) == []
    built = ScheduleModel(problem, horizon=horizon, frozen=(), now=0)
    if goal == "makespan":
        objective, value = built.makespan, makespan(start)
    else:
        objective, value = built.weighted_tardiness, compute_kpis(problem, start).weighted_tardiness
    built.model.minimize(objective)
    return built, objective, start, value


def run_lns_alone(problem: Problem, goal: str, seconds: float) -> tuple[int, Incumbent, list[tuple[int, tuple]]]:
    built, objective, start, value = started_model(problem, goal)
    reported: list[tuple[int, tuple]] = []
    incumbent = Incumbent(lambda v, _bound, schedule: reported.append((v, schedule)))
    incumbent.seed(value, start)
    Lns(built, objective, incumbent, seed=1).run(time.monotonic() + seconds)
    return value, incumbent, reported


def test_lns_alone_improves_the_dispatching_schedule_and_every_report_is_feasible() -> None:
    """Catches a neighbourhood whose kept constraints contradict the incumbent (nothing found), a sub-model
    whose solutions are read from the wrong variables, or reports that are not strictly better."""
    problem = problem_from_jobshop(hard_instance())
    seeded, incumbent, reported = run_lns_alone(problem, "makespan", seconds=3)
    assert reported, "the LNS found nothing better than the dispatching rule on a 15x10 job shop"
    values = [value for value, _ in reported]
    assert values == sorted(set(values), reverse=True) and values[0] <= seeded and values[-1] < seeded
    for value, schedule in reported:
        assert check_schedule(problem, schedule) == []
        assert makespan(schedule) == value
    assert incumbent.value == values[-1] and makespan(incumbent.schedule) == incumbent.value


def test_lns_keeps_every_rule_of_a_factory_with_shifts_and_changeovers() -> None:
    """The flexible model (alternative machines, calendars, sequence-dependent setups) under weighted
    tardiness: catches kept sequences that ignore changeovers or machine choices, which would let the sub-model
    return schedules that break the rules or lose the incumbent."""
    problem = busy_factory()
    seeded, incumbent, reported = run_lns_alone(problem, "weighted_tardiness", seconds=3)
    assert incumbent.value is not None and incumbent.value <= seeded
    for value, schedule in [*reported, (incumbent.value, incumbent.schedule)]:
        assert check_schedule(problem, schedule) == []
        assert compute_kpis(problem, schedule).weighted_tardiness == value


def test_lns_yields_the_cores_while_it_finds_nothing_and_wakes_for_a_better_schedule() -> None:
    """Seeded with a proven optimum (ft06, 55) every slice is fruitless: catches a thread that keeps taking its
    full share from the full search (it would be busy the whole run), and a pause that sleeps through a better
    schedule from another search or through a stop."""
    problem = problem_from_jobshop(FT06)
    optimum = solve(problem, time_limit_s=30, workers=1)
    assert optimum.status == "optimal" and optimum.objective == 55
    built = ScheduleModel(problem, horizon=planning_horizon(problem), frozen=(), now=0)
    built.model.minimize(built.makespan)
    incumbent = Incumbent()
    incumbent.seed(55, optimum.schedule)
    lns = Lns(built, built.makespan, incumbent, seed=1)
    started = time.monotonic()
    lns.run(started + 3)
    assert lns.slices > 5 and lns.improvements == 0
    assert lns.busy_s < 0.5 * (time.monotonic() - started), "the LNS did not yield while it found nothing"

    threading.Timer(0.2, lambda: incumbent.offer(54, optimum.schedule)).start()  # as if from the full search
    # Each pause is asked for 120 s and woken after 0.2 s: anything under a minute was woken, however busy the box.
    started = time.monotonic()
    lns._pause(55, seconds=120, deadline=started + 120)
    assert time.monotonic() - started < 60, "the pause slept through a better schedule"
    threading.Timer(0.2, lns.stop).start()
    started = time.monotonic()
    lns._pause(54, seconds=120, deadline=started + 120)
    assert time.monotonic() - started < 60, "the pause slept through a stop"


def test_kept_operations_keep_their_machine_and_their_order_on_it() -> None:
    """Keeping every operation of a factory schedule (alternatives, changeovers, shifts) may only shift them:
    catches a kept machine choice or sequence that the sub-model can still change."""
    problem = busy_factory()
    built, _, start, _ = started_model(problem, "weighted_tardiness")
    model = built.model.clone()
    built.keep(model, start, {a.key for a in start})
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 10
    assert solver.solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    kept = built.schedule(solver.value)
    assert check_schedule(problem, kept) == []

    def sequences(schedule: tuple[Assignment, ...]) -> dict[str, list[tuple[str, int]]]:
        return {
            m: [a.key for a in sorted(schedule, key=lambda a: a.start) if a.machine == m]
            for m in {a.machine for a in schedule}
        }

    assert sequences(kept) == sequences(start)


@pytest.mark.parametrize("neighbourhood", NEIGHBOURHOODS, ids=lambda n: n.__name__)
def test_each_neighbourhood_frees_existing_operations_and_at_least_the_size_asked(neighbourhood) -> None:
    """Catches a neighbourhood that frees nothing (a slice that cannot improve) or invents operations."""
    problem = problem_from_jobshop(hard_instance())
    schedule = dispatch(problem, horizon=planning_horizon(problem))
    assert schedule is not None
    keys = {a.key for a in schedule}
    for seed in range(20):
        freed = neighbourhood(schedule, 30, random.Random(seed))
        assert freed <= keys
        assert len(freed) >= 30


def test_critical_path_is_a_gapless_chain_to_the_end_of_the_schedule() -> None:
    """Each step of the path must start as its predecessor (on its machine or in its order) ends; its last
    operation ends at the makespan."""
    problem = problem_from_jobshop(hard_instance())
    schedule = dispatch(problem, horizon=planning_horizon(problem))
    assert schedule is not None
    path = critical_path(schedule, random.Random(0))
    assert path[-1].end == makespan(schedule)
    for before, after in pairwise(path):
        same_order = before.order == after.order and before.op_index == after.op_index - 1
        assert before.end == after.start - after.setup and (same_order or before.machine == after.machine)


def test_incumbent_reports_only_strict_improvements_and_keeps_the_best() -> None:
    """A seed is not reported until a search confirms it; an equal schedule replaces silently only when asked;
    a worse one never replaces the best."""
    reported: list[int] = []
    incumbent = Incumbent(lambda value, bound, schedule: reported.append(value))
    incumbent.seed(100, ())
    assert incumbent.offer(100, ()) and reported == [100]  # the search's first solution confirms the seed
    assert not incumbent.offer(100, ())
    marker = (Assignment("J0", 0, "M0", 0, 1),)
    assert incumbent.offer(100, marker, same_value_replaces=True) and incumbent.schedule == marker
    assert not incumbent.offer(120, (), same_value_replaces=True) and incumbent.schedule == marker
    assert incumbent.offer(90, ()) and reported == [100, 90]
    incumbent.raise_bound(90)
    assert incumbent.proven


@pytest.mark.parametrize("released", [False, True], ids=["classic-tabu", "released-lns"])
def test_cancel_during_the_search_stops_both_searches_and_keeps_the_best_reported_schedule(released: bool) -> None:
    """A stop one second in, while the local search is mid-slice (the tabu search on the classic job shop, the
    LNS once an order has a release date): catches a helper thread that outlives the solve or a result worse than
    the last schedule reported."""
    jobs = hard_instance()
    problem = problem_from_jobshop(jobs, release_dates=[0] * (len(jobs) - 1) + [1] if released else None)
    reported: list[tuple[int, tuple]] = []
    deadline = time.monotonic() + 1.0
    result = solve(
        problem,
        time_limit_s=300,
        workers=2,
        on_solution=lambda v, b, s, t: reported.append((v, s)),
        should_stop=lambda: time.monotonic() > deadline,
    )
    assert result.status == "cancelled"
    assert time.monotonic() - deadline < 60  # the limit is 300 s: a lost stop would run to it
    assert not [t for t in threading.enumerate() if t.name in ("local", "should-stop")]
    # the local search may since have moved to an equally good schedule: the value is the last one reported
    assert result.objective == reported[-1][0] == makespan(result.schedule)
    assert check_schedule(problem, result.schedule) == []
