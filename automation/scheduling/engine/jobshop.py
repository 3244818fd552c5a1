"""The classic job-shop notation, as used by benchmark instances."""

from __future__ import annotations

from collections.abc import Sequence

from automation.scheduling.engine.problem import Machine, Operation, Option, Order, Problem, Product

JobShopOperation = Sequence[int] | Sequence[Sequence[int]]


def problem_from_jobshop(
    jobs: Sequence[Sequence[JobShopOperation]],
    *,
    release_dates: Sequence[int] | None = None,
    due_dates: Sequence[int | None] | None = None,
    weights: Sequence[int] | None = None,
    hard_due_dates: bool = False,
) -> Problem:
    """A problem from jobs given as lists of operations.

    An operation is ``[machine, duration]``, or a list of alternatives
    ``[[m1, d1], [m2, d2]]`` in the flexible form. Machine ``m`` becomes machine
    ``"M<m>"``, job ``j`` becomes order ``"J<j>"`` of quantity 1 with a product of
    its own, so durations are taken as they are.
    """
    machines = sorted({m for job in jobs for op in job for m, _ in _alternatives(op)})
    products = tuple(
        Product(f"P{j}", tuple(Operation(tuple(Option(f"M{m}", d) for m, d in _alternatives(op))) for op in job))
        for j, job in enumerate(jobs)
    )
    orders = tuple(
        Order(
            f"J{j}",
            f"P{j}",
            release=release_dates[j] if release_dates else 0,
            due=due_dates[j] if due_dates else None,
            weight=weights[j] if weights else 1,
        )
        for j in range(len(jobs))
    )
    return Problem(tuple(Machine(f"M{m}") for m in machines), products, orders, hard_due_dates=hard_due_dates)


def _alternatives(op: JobShopOperation) -> list[tuple[int, int]]:
    if isinstance(op[0], Sequence):
        return [(int(m), int(d)) for m, d in op]  # type: ignore[misc]
    machine, duration = op
    return [(int(machine), int(duration))]  # type: ignore[arg-type]
