"""Factory rules: calendars, downtime, changeovers, materials, releases, objectives, and the checker itself."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from automation.scheduling.engine import (
    Assignment,
    Machine,
    MixWeights,
    Operation,
    Option,
    Order,
    Problem,
    Product,
    SetupTime,
    check_schedule,
    compute_kpis,
    solve,
)
from automation.scheduling.engine.solver import Objective


def factory() -> Problem:
    """Cutting in two shifts with a break at 240-300, a paint line down 100-200, paint delivered at 150."""
    cut = Machine("CUT", calendar=((0, 240), (300, 1020)))
    paint = Machine("PAINT", downtime=((100, 200),))
    pack = Machine("PACK")
    bracket = Product(
        "bracket",
        (
            Operation((Option("CUT", 2),)),
            Operation((Option("PAINT", 1),), materials=("paint",)),
            Operation((Option("PACK", 0.5),)),
        ),
        family="steel",
    )
    panel = Product(
        "panel", (Operation((Option("CUT", 3),)), Operation((Option("PACK", 1), Option("PAINT", 1.5)))), "alu"
    )
    return Problem(
        machines=(cut, paint, pack),
        products=(bracket, panel),
        orders=(
            Order("B1", "bracket", quantity=40, release=5, due=300),
            Order("P1", "panel", quantity=50, release=60, due=400, weight=3),
            Order("B2", "bracket", quantity=90, release=10, due=500),
            Order("P2", "panel", quantity=30, release=100),
            Order("B3", "bracket", quantity=25, release=200, due=700, weight=2),
        ),
        setups=(SetupTime("CUT", "steel", "alu", 30), SetupTime("CUT", "alu", "steel", 45)),
        material_arrivals={"paint": 150},
        horizon=2000,
    )


@pytest.mark.parametrize("objective", ["makespan", "weighted_tardiness", "weighted_mix"])
def test_factory_schedule_respects_shifts_downtime_setups_materials_and_releases(objective: str) -> None:
    """Each rule is asserted directly, not only through check_schedule, so a checker bug cannot hide a model bug."""
    problem = factory()
    result = solve(problem, objective=objective, time_limit_s=5, workers=2)  # type: ignore[arg-type]
    assert result.status in ("optimal", "feasible")
    schedule = result.schedule
    assert check_schedule(problem, schedule) == []
    for a in schedule:
        assert a.end - a.start == problem.durations(a.key)[a.machine]
        assert a.start >= problem.order(a.order).release
        if a.machine == "CUT":  # setup and work inside one shift, never across the break
            assert a.end <= 240 or a.start - a.setup >= 300
        if a.machine == "PAINT":
            assert a.start >= 150  # paint arrives
            assert a.end <= 100 or a.start >= 200
    cut = sorted((a for a in schedule if a.machine == "CUT"), key=lambda a: a.start)
    for before, after in itertools.pairwise(cut):
        needed = {("steel", "alu"): 30, ("alu", "steel"): 45}.get(
            (problem.family(before.order), problem.family(after.order)), 0
        )
        assert after.setup == needed
        assert after.start - after.setup >= before.end
    assert cut[0].setup == 0
    assert any(a.start - a.setup < 240 for a in cut) and any(a.end > 300 for a in cut)  # the break matters
    kpis = compute_kpis(problem, schedule)
    reported = {
        "makespan": kpis.makespan,
        "weighted_tardiness": kpis.weighted_tardiness,
        "weighted_mix": kpis.makespan + kpis.weighted_tardiness,
    }[objective]
    assert result.objective == reported


def single_machine(
    setups: dict[tuple[str, str], int], families: list[str], minutes: list[int], dues: list[int]
) -> Problem:
    products = tuple(
        Product(f"P{i}", (Operation((Option("M", m),)),), family=f)
        for i, (f, m) in enumerate(zip(families, minutes, strict=True))
    )
    orders = tuple(Order(f"O{i}", f"P{i}", due=due, weight=i + 1) for i, due in enumerate(dues))
    setup_times = tuple(SetupTime("M", a, b, minutes) for (a, b), minutes in setups.items())
    return Problem((Machine("M"),), products, orders, setup_times)


def brute_force(problem: Problem, objective: str) -> int:
    """Best value over all sequences on the single machine, each operation as early as possible."""
    best = None
    for sequence in itertools.permutations(problem.orders):
        time, family, tardiness = 0, None, 0
        for order in sequence:
            if family is not None:
                time += problem.setup_minutes("M", family, problem.family(order.id))
            time += problem.durations((order.id, 0))["M"]
            family = problem.family(order.id)
            tardiness += order.weight * max(0, time - (order.due if order.due is not None else time))
        value = {"makespan": time, "weighted_tardiness": tardiness, "weighted_mix": 2 * time + tardiness}[objective]
        best = value if best is None else min(best, value)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("objective", ["makespan", "weighted_tardiness", "weighted_mix"])
def test_sequence_dependent_setups_reach_the_brute_force_optimum(seed: int, objective: Objective) -> None:
    """Asymmetric changeovers between 3 families on one machine: a setup model that is too loose or too strict,
    or an objective built wrongly, gives a different optimum than enumerating every sequence."""
    rng = random.Random(seed)
    families = ["a", "b", "c"]
    setups = {(x, y): rng.randint(1, 20) for x in families for y in families if x != y}
    problem = single_machine(
        setups,
        [rng.choice(families) for _ in range(5)],
        [rng.randint(3, 15) for _ in range(5)],
        [rng.randint(10, 60) for _ in range(5)],
    )
    result = solve(
        problem, objective=objective, weights=MixWeights(makespan=2, tardiness=1), time_limit_s=10, workers=2
    )
    assert result.status == "optimal"
    assert result.objective == brute_force(problem, objective)
    assert check_schedule(problem, result.schedule) == []


def random_problem(seed: int) -> Problem:
    """A small random factory: shifts, downtime, alternatives, families with changeovers, materials, releases."""
    rng = random.Random(seed)
    machines = tuple(
        Machine(
            f"M{i}",
            calendar=tuple((day, day + rng.choice([300, 480])) for day in range(0, 3000, 600))
            if rng.random() < 0.6
            else None,
            downtime=((start := rng.randrange(0, 1500), start + rng.randint(20, 120)),) if rng.random() < 0.5 else (),
        )
        for i in range(rng.randint(2, 4))
    )
    products = tuple(
        Product(
            f"P{p}",
            tuple(
                Operation(
                    tuple(Option(m.id, rng.choice([0.5, 1, 2, 3])) for m in rng.sample(machines, rng.randint(1, 2))),
                    materials=("steel",) if rng.random() < 0.3 else (),
                )
                for _ in range(rng.randint(1, 4))
            ),
            family=rng.choice("xyz"),
        )
        for p in range(3)
    )
    setups = tuple(
        SetupTime(m.id, a, b, rng.randint(5, 40))
        for m in machines
        for a in "xyz"
        for b in "xyz"
        if a != b and rng.random() < 0.7
    )
    orders = tuple(
        Order(
            f"O{o}",
            rng.choice(products).id,
            quantity=rng.randint(1, 12),
            release=rng.randint(0, 200),
            due=rng.randint(100, 900),
            weight=rng.randint(1, 3),
        )
        for o in range(rng.randint(3, 8))
    )
    return Problem(machines, products, orders, setups, {"steel": rng.randint(0, 400)}, horizon=3000)


@pytest.mark.parametrize("seed", range(30))
def test_random_factories_always_get_schedules_that_pass_the_checker(seed: int) -> None:
    """Whatever mix of rules a small factory has, what the solver returns must be feasible."""
    problem = random_problem(seed)
    objective = ["makespan", "weighted_tardiness", "weighted_mix"][seed % 3]
    result = solve(problem, objective=objective, time_limit_s=1.5, workers=2)  # type: ignore[arg-type]
    assert result.status in ("optimal", "feasible")
    assert check_schedule(problem, result.schedule) == []


def test_hard_due_dates_are_met_even_when_that_costs_makespan() -> None:
    """Due dates that the tardiness-optimal plan meets, made hard: minimising makespan must keep them all,
    although the makespan-optimal plan breaks some of them."""
    tardiness_plan = solve(factory(), objective="weighted_tardiness", time_limit_s=5, workers=2).schedule
    finish = {a.order: a.end for a in tardiness_plan if a.op_index == len(factory().routing(a.order)) - 1}
    orders = tuple(dataclasses.replace(order, due=finish[order.id]) for order in factory().orders)
    soft = dataclasses.replace(factory(), orders=orders)
    hard = dataclasses.replace(soft, hard_due_dates=True)
    soft_rate = compute_kpis(soft, solve(soft, time_limit_s=5, workers=2).schedule).on_time_rate
    assert soft_rate is not None and soft_rate < 1
    result = solve(hard, time_limit_s=5, workers=2)
    assert result.status in ("optimal", "feasible")
    assert compute_kpis(hard, result.schedule).on_time_rate == 1.0
    assert check_schedule(hard, result.schedule) == []


def valid_schedule() -> tuple[Problem, list[Assignment]]:
    problem = factory()
    return problem, list(solve(problem, time_limit_s=5, workers=2).schedule)


@pytest.mark.parametrize(
    ("name", "mutate", "fragment"),
    [
        ("missing", lambda s, i: s.pop(i), "is not scheduled"),
        ("wrong machine", lambda s, i: s.__setitem__(i, dataclasses.replace(s[i], machine="PACK")), "cannot do"),
        ("too short", lambda s, i: s.__setitem__(i, dataclasses.replace(s[i], end=s[i].end - 1)), "processing time"),
        ("in the break", lambda s, i: s.__setitem__(i, shifted(s[i], 230)), "working time"),
        ("before release", lambda s, i: s.__setitem__(i, shifted(s[i], 0)), "release"),
        ("no setup", lambda s, i: s.__setitem__(i, dataclasses.replace(s[i], setup=0)), "setup"),
    ],
)
def test_checker_catches_each_kind_of_violation(name: str, mutate: object, fragment: str) -> None:
    """The checker is what every other test trusts; a checker that accepts broken schedules would hide bugs."""
    problem, schedule = valid_schedule()
    target = next(a for a in schedule if a.machine == "CUT" and a.setup > 0)  # every order has a release
    mutate(schedule, schedule.index(target))  # type: ignore[operator]
    violations = check_schedule(problem, schedule)
    assert any(fragment in v for v in violations), (name, violations)


def shifted(a: Assignment, start: int) -> Assignment:
    return dataclasses.replace(a, start=start, end=start + a.end - a.start)


def test_checker_catches_overlap_precedence_and_material_violations() -> None:
    """Two operations on one machine at once, an operation before its predecessor, painting before paint arrives."""
    problem, schedule = valid_schedule()
    first, second = sorted((a for a in schedule if a.machine == "PAINT"), key=lambda a: a.start)[:2]
    overlapping = [shifted(a, first.start) if a is second else a for a in schedule]
    assert any("machine 'PAINT'" in v and f"order {second.order!r}" in v for v in check_schedule(problem, overlapping))
    early = [shifted(a, 0) if a is first else a for a in schedule]
    violations = "\n".join(check_schedule(problem, early))
    assert f"order {first.order!r} operation 1 on 'PAINT' at 0-" in violations
    assert "starts before material 'paint' arrives" in violations
    assert "starts before the previous operation ends" in violations
