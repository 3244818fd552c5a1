"""Re-planning mid-day: a breakdown and a rush order, with operations already under way kept as they are."""

from __future__ import annotations

import dataclasses
import random

from automation.scheduling.engine import (
    Assignment,
    FrozenOp,
    Machine,
    Operation,
    Option,
    Order,
    Problem,
    Product,
    SetupTime,
    add_downtime,
    check_schedule,
    compute_kpis,
    freeze_started,
    problem_from_jobshop,
    solve,
)

FT06 = [
    [(2, 1), (0, 3), (1, 6), (3, 7), (5, 3), (4, 6)],
    [(1, 8), (2, 5), (4, 10), (5, 10), (0, 10), (3, 4)],
    [(2, 5), (3, 4), (5, 8), (0, 9), (1, 1), (4, 7)],
    [(1, 5), (0, 5), (2, 5), (3, 3), (4, 8), (5, 9)],
    [(2, 9), (1, 3), (4, 5), (5, 4), (0, 3), (3, 1)],
    [(1, 3), (3, 3), (5, 9), (0, 10), (4, 4), (2, 1)],
]


def keys(frozen: tuple[FrozenOp, ...]) -> set[tuple[str, int]]:
    return {(op.order, op.op_index) for op in frozen}


def assert_frozen_kept(schedule: tuple[Assignment, ...], frozen: tuple[FrozenOp, ...]) -> None:
    by_key = {a.key: a for a in schedule}
    for op in frozen:
        assert (by_key[op.order, op.op_index].machine, by_key[op.order, op.op_index].start) == (op.machine, op.start)


def test_breakdown_keeps_started_work_and_moves_everything_else_off_the_broken_machine() -> None:
    """Machine X breaks at T for 15 min while an operation runs on it: that one restarts after the repair,
    operations started before T stay put, nothing (changeover included) touches X during the repair."""
    problem = problem_from_jobshop(FT06)
    base = solve(problem, time_limit_s=10, workers=2).schedule
    running = next(a for a in sorted(base, key=lambda a: a.start) if a.start > 0 and a.end - a.start >= 3)
    now, repaired, broken_machine = running.start + 1, running.start + 16, running.machine
    broken = add_downtime(problem, machine=broken_machine, start=now, end=repaired)
    frozen = freeze_started(broken, base, now=now)
    assert keys(frozen) == {a.key for a in base if a.start < now} - {running.key}
    assert check_schedule(broken, base, frozen=frozen, now=now) != []  # the old plan really is broken now

    result = solve(broken, frozen=frozen, now=now, hint=base, time_limit_s=10, workers=2)
    assert result.status in ("optimal", "feasible")
    assert_frozen_kept(result.schedule, frozen)
    for a in result.schedule:
        if a.machine == broken_machine:
            assert a.end <= now or a.start - a.setup >= repaired
        if a.key not in keys(frozen):
            assert a.start >= now
    assert next(a for a in result.schedule if a.key == running.key).start >= repaired
    assert check_schedule(broken, result.schedule, frozen=frozen, now=now) == []


def small_factory() -> Problem:
    """A press in two shifts with changeovers between families, and a packing station."""
    press = Machine("PRESS", calendar=((0, 240), (270, 600)))
    gear = Product("gear", (Operation((Option("PRESS", 3),)), Operation((Option("PACK", 1),))), family="steel")
    cap = Product("cap", (Operation((Option("PRESS", 2),)), Operation((Option("PACK", 1),))), family="plastic")
    return Problem(
        machines=(press, Machine("PACK")),
        products=(gear, cap),
        orders=tuple(Order(f"O{i}", ("gear", "cap")[i % 2], quantity=10 + 5 * i) for i in range(5)),
        setups=(SetupTime("PRESS", "steel", "plastic", 20), SetupTime("PRESS", "plastic", "steel", 25)),
    )


def test_rush_order_is_inserted_on_time_around_work_in_progress() -> None:
    """A weight-10 rush order arrives at T with a due date it can just meet if it jumps the queue: the re-plan
    must meet it, keep started operations and their changeovers consistent, and stay feasible."""
    problem = small_factory()
    base = solve(problem, time_limit_s=10, workers=2).schedule
    now = sorted(a.start for a in base)[len(base) // 2]
    frozen = freeze_started(problem, base, now=now)
    assert frozen and len(frozen) < len(base)
    busy_until = max(a.end for a in base if a.start < now)
    # pressing 20 caps (40 min), after a possible changeover (25 min), then packing (20 min)
    rush = Order("RUSH", "cap", quantity=20, release=now, due=busy_until + 25 + 40 + 20, weight=10)
    with_rush = dataclasses.replace(problem, orders=(*problem.orders, rush))

    result = solve(
        with_rush, objective="weighted_tardiness", frozen=frozen, now=now, hint=base, time_limit_s=10, workers=2
    )
    assert result.status in ("optimal", "feasible")
    assert result.objective == 0
    assert compute_kpis(with_rush, result.schedule).tardiness["RUSH"] == 0
    assert_frozen_kept(result.schedule, frozen)
    assert check_schedule(with_rush, result.schedule, frozen=frozen, now=now) == []


def busy_factory() -> Problem:
    """25 orders over two days: two machines on 8-hour shifts, changeovers between three families everywhere."""
    rng = random.Random(0)
    machines = tuple(
        Machine(f"M{i}", calendar=tuple((day, day + 480) for day in range(0, 20000, 720)) if i % 2 else None)
        for i in range(4)
    )
    products = tuple(
        Product(
            f"P{p}",
            tuple(
                Operation(
                    tuple(Option(m.id, rng.choice([0.5, 1, 2, 3])) for m in rng.sample(machines, rng.randint(1, 2)))
                )
                for _ in range(rng.randint(2, 4))
            ),
            family=rng.choice("xyz"),
        )
        for p in range(5)
    )
    setups = tuple(SetupTime(m.id, a, b, rng.randint(5, 40)) for m in machines for a in "xyz" for b in "xyz" if a != b)
    orders = tuple(
        Order(
            f"O{o}",
            rng.choice(products).id,
            quantity=rng.randint(5, 40),
            release=rng.randint(0, 500),
            due=rng.randint(300, 3000),
            weight=rng.randint(1, 5),
        )
        for o in range(25)
    )
    return Problem(machines, products, orders, setups, horizon=20000)


def test_plan_broken_by_a_breakdown_is_repaired_before_the_search() -> None:
    """Handed to CP-SAT as it is, the broken plan leaves it without any schedule for seconds on this factory;
    repaired by the dispatching rule first, a feasible re-plan exists at once."""
    problem = busy_factory()
    base = solve(problem, objective="weighted_tardiness", time_limit_s=3, workers=2).schedule
    now = sorted(a.start for a in base)[len(base) // 3]
    broken = add_downtime(problem, machine="M0", start=now, end=now + 300)
    frozen = freeze_started(broken, base, now=now)
    result = solve(broken, objective="weighted_tardiness", frozen=frozen, now=now, hint=base, time_limit_s=2, workers=2)
    assert result.status in ("optimal", "feasible")
    assert_frozen_kept(result.schedule, frozen)
    assert check_schedule(broken, result.schedule, frozen=frozen, now=now) == []
