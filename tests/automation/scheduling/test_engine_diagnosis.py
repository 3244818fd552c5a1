"""Infeasibility is explained per order and operation, with a reason code, instead of a bare solver status."""

from __future__ import annotations

import dataclasses

import pytest

from automation.scheduling.engine import (
    FrozenOp,
    Machine,
    Operation,
    Option,
    Order,
    Problem,
    ProblemError,
    Product,
    Reason,
    diagnose,
    solve,
)


def line(*, orders: tuple[Order, ...], horizon: int | None = None, hard_due_dates: bool = False) -> Problem:
    """Two machines; 'part' is 10 min/unit on SAW, then 5 min/unit on DRILL needing 'bolts' (arriving at 30)."""
    part = Product(
        "part",
        (Operation((Option("SAW", 10),)), Operation((Option("DRILL", 5),), materials=("bolts",))),
    )
    return Problem(
        machines=(Machine("SAW"), Machine("DRILL", calendar=((0, 100), (200, 400)))),
        products=(part,),
        orders=orders,
        material_arrivals={"bolts": 30},
        horizon=horizon,
        hard_due_dates=hard_due_dates,
    )


def test_operation_without_any_capable_machine_is_named() -> None:
    """Catches an empty machine list reaching the solver as an anonymous infeasible model."""
    orphan = Product("orphan", (Operation((Option("SAW", 1),)), Operation(())))
    problem = dataclasses.replace(line(orders=(Order("O1", "part"),)), products=(*line(orders=()).products, orphan))
    problem = dataclasses.replace(problem, orders=(Order("O1", "part"), Order("O2", "orphan")))
    [finding] = diagnose(problem)
    assert (finding.order, finding.operation, finding.reason) == ("O2", 1, Reason.NO_CAPABLE_MACHINE)
    result = solve(problem, time_limit_s=5)
    assert result.status == "infeasible"
    assert result.findings == (finding,)
    assert result.schedule == ()


def test_capable_machines_whose_windows_are_all_too_short_count_as_no_capable_machine() -> None:
    """Drilling 20 units takes 100 min, DRILL's shifts are at most 200 min: fine; 50 units (250 min) never fit."""
    assert diagnose(line(orders=(Order("O1", "part", quantity=20),))) == []
    [finding] = diagnose(line(orders=(Order("O1", "part", quantity=50),)))
    assert (finding.order, finding.operation, finding.reason) == ("O1", 1, Reason.NO_CAPABLE_MACHINE)
    assert "'DRILL' (250 min)" in finding.message


def test_hard_due_date_before_earliest_finish_is_reported_soft_one_is_only_late() -> None:
    """Released at 100: sawing until 110, the 100-200 gap in DRILL's calendar pushes drilling to 205; due 150."""
    order = Order("O1", "part", release=100, due=150)
    [finding] = diagnose(line(orders=(order,), hard_due_dates=True))
    assert (finding.order, finding.operation, finding.reason) == ("O1", 1, Reason.DUE_BEFORE_EARLIEST_FINISH)
    assert "205" in finding.message
    assert diagnose(line(orders=(order,))) == []
    soft = solve(line(orders=(order,)), objective="weighted_tardiness", time_limit_s=5)
    assert (soft.status, soft.objective) == ("optimal", 55)


@pytest.mark.parametrize(("arrivals", "needle"), [({}, "has no arrival"), ({"bolts": 5000}, "after the horizon")])
def test_material_that_never_arrives_blocks_the_operation_that_needs_it(arrivals: dict, needle: str) -> None:
    """Catches a missing delivery being silently treated as 'available now' (or crashing the model builder)."""
    problem = dataclasses.replace(line(orders=(Order("O1", "part"),), horizon=1000), material_arrivals=arrivals)
    [finding] = diagnose(problem)
    assert (finding.order, finding.operation, finding.reason) == ("O1", 1, Reason.MATERIAL_NEVER_ARRIVES)
    assert needle in finding.message and "'bolts'" in finding.message


def test_order_that_cannot_finish_within_the_horizon() -> None:
    """Released at 390 with a horizon of 400: sawing ends at 400, drilling has no time left."""
    assert diagnose(line(orders=(Order("O1", "part", release=385),), horizon=400)) == []
    [finding] = diagnose(line(orders=(Order("O1", "part", release=390),), horizon=400))
    assert (finding.order, finding.operation, finding.reason) == ("O1", 1, Reason.BEYOND_HORIZON)


def test_orders_feasible_alone_but_not_together_get_a_general_finding() -> None:
    """Two orders each fit their hard due date alone; sharing the saw, one must be late: CP-SAT proves it."""
    orders = (Order("O1", "part", quantity=3, due=60), Order("O2", "part", quantity=3, due=60))
    problem = line(orders=orders, hard_due_dates=True)
    assert diagnose(problem) == []
    result = solve(problem, time_limit_s=10, workers=2)
    assert result.status == "infeasible"
    assert [f.reason for f in result.findings] == [Reason.CONFLICTING_ORDERS]


def test_frozen_operations_in_downtime_or_overlapping_are_conflicts() -> None:
    """A frozen operation placed in DRILL's off-shift gap, and two frozen operations on the saw at once."""
    problem = line(orders=(Order("O1", "part"), Order("O2", "part")))
    in_gap = [FrozenOp("O1", 0, "SAW", 0), FrozenOp("O1", 1, "DRILL", 150)]
    [finding] = diagnose(problem, frozen=in_gap)
    assert (finding.order, finding.operation, finding.reason) == ("O1", 1, Reason.FROZEN_CONFLICT)
    overlapping = [FrozenOp("O1", 0, "SAW", 0), FrozenOp("O2", 0, "SAW", 5)]
    [finding] = diagnose(problem, frozen=overlapping)
    assert (finding.order, finding.operation, finding.reason) == ("O2", 0, Reason.FROZEN_CONFLICT)
    assert solve(problem, frozen=overlapping, time_limit_s=5).status == "infeasible"


def test_frozen_operation_that_names_no_real_operation_is_rejected() -> None:
    """Catches a typo'd frozen operation being ignored, which would silently re-plan a running job."""
    problem = line(orders=(Order("O1", "part"),))
    with pytest.raises(ProblemError) as raised:
        solve(problem, frozen=[FrozenOp("O1", 5, "SAW", 0), FrozenOp("O1", 0, "DRILL", 0), FrozenOp("X", 0, "SAW", 0)])
    assert raised.value.issues == [
        "frozen order 'O1' operation 5: no such operation",
        "frozen order 'O1' operation 0: machine 'DRILL' cannot do this operation",
        "frozen order 'X' operation 0: no such order",
    ]
