"""What a factory asks the scheduler, and what it gets back.

Time is integer minutes from the horizon start; the caller converts datetimes.
Windows are half-open ``(start, end)`` pairs. Processing time of an operation
for an order is ``ceil(minutes_per_unit * quantity)`` on the chosen machine, so
one product routing serves orders of any size; a caller that knows a whole
order's duration passes quantity 1 and that duration as ``minutes_per_unit``.

Every dataclass is frozen and ``Problem`` validates itself on construction, so
the solver never sees a half-valid problem: all issues are raised together in
one ``ProblemError`` naming the offending machine, product, order or operation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from automation.scheduling.engine.costs import CostData, cost_issues

Window = tuple[int, int]
OpKey = tuple[str, int]  # (order id, index of the operation in the product routing)


class ProblemError(ValueError):
    """The input is malformed; ``issues`` lists every problem found, one sentence each."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("\n".join(issues))
        self.issues = issues


@dataclass(frozen=True)
class Machine:
    id: str
    calendar: tuple[Window, ...] | None = None  # working windows; None means always available
    downtime: tuple[Window, ...] = ()  # planned maintenance, breakdowns: subtracted from the calendar


@dataclass(frozen=True)
class Option:
    machine: str
    minutes_per_unit: float


@dataclass(frozen=True)
class Operation:
    options: tuple[Option, ...]  # the capable machines; an empty tuple is reported by diagnosis
    materials: tuple[str, ...] = ()  # the operation cannot start before each of these arrives


@dataclass(frozen=True)
class Product:
    id: str
    routing: tuple[Operation, ...]
    family: str = ""  # changeovers are looked up between families, not products


@dataclass(frozen=True)
class SetupTime:
    """Minutes needed on ``machine`` to change over from one family to another; 0 when absent."""

    machine: str
    from_family: str
    to_family: str
    minutes: int


@dataclass(frozen=True)
class Order:
    id: str
    product: str
    quantity: float = 1
    release: int = 0
    due: int | None = None
    weight: int = 1  # priority: multiplies this order's tardiness in the objective


@dataclass(frozen=True)
class FrozenOp:
    """An operation that must keep its machine and start, e.g. one already running when re-planning."""

    order: str
    op_index: int
    machine: str
    start: int


@dataclass(frozen=True)
class Assignment:
    order: str
    op_index: int
    machine: str
    start: int
    end: int
    setup: int = 0  # changeover minutes immediately before ``start`` on this machine

    @property
    def key(self) -> OpKey:
        return (self.order, self.op_index)


@dataclass(frozen=True)
class Problem:
    machines: tuple[Machine, ...]
    products: tuple[Product, ...]
    orders: tuple[Order, ...]
    setups: tuple[SetupTime, ...] = ()
    material_arrivals: Mapping[str, int] = field(default_factory=dict)
    horizon: int | None = None  # every operation must end by then; None lets the solver pick a safe bound
    hard_due_dates: bool = False  # True: due dates are constraints; False: lateness is only penalised
    cost: CostData | None = None  # prices, stock, energy and order terms, for ``objective="cost"``

    def __post_init__(self) -> None:
        issues = list(_problem_issues(self))
        if issues:
            raise ProblemError(issues)

    def order(self, order_id: str) -> Order:
        return self._orders[order_id]

    def routing(self, order_id: str) -> tuple[Operation, ...]:
        return self._products[self._orders[order_id].product].routing

    def family(self, order_id: str) -> str:
        return self._products[self._orders[order_id].product].family

    def operations(self) -> Iterator[tuple[OpKey, Operation]]:
        for order in self.orders:
            for index, operation in enumerate(self.routing(order.id)):
                yield (order.id, index), operation

    def durations(self, key: OpKey) -> dict[str, int]:
        """Processing minutes of one operation of one order on each capable machine."""
        order_id, index = key
        quantity = self._orders[order_id].quantity
        # round() first so that 0.1 * 30 counts as 3 minutes, not 4
        return {
            option.machine: math.ceil(round(option.minutes_per_unit * quantity, 6))
            for option in self.routing(order_id)[index].options
        }

    def setup_minutes(self, machine_id: str, from_family: str, to_family: str) -> int:
        return self._setups.get((machine_id, from_family, to_family), 0)

    def machines_with_setups(self) -> set[str]:
        return {machine for (machine, _, _), minutes in self._setups.items() if minutes > 0}

    @cached_property
    def _products(self) -> dict[str, Product]:
        return {product.id: product for product in self.products}

    @cached_property
    def _orders(self) -> dict[str, Order]:
        return {order.id: order for order in self.orders}

    @cached_property
    def _setups(self) -> dict[tuple[str, str, str], int]:
        return {(s.machine, s.from_family, s.to_family): s.minutes for s in self.setups}


def frozen_issues(problem: Problem, frozen: Iterable[FrozenOp]) -> list[str]:
    """Frozen operations that do not name a real operation on one of its capable machines."""
    issues = []
    seen: Counter[OpKey] = Counter()
    order_ids = {order.id for order in problem.orders}
    for op in frozen:
        where = f"frozen order {op.order!r} operation {op.op_index}"
        seen[(op.order, op.op_index)] += 1
        if op.order not in order_ids:
            issues.append(f"{where}: no such order")
        elif not 0 <= op.op_index < len(problem.routing(op.order)):
            issues.append(f"{where}: no such operation")
        elif op.machine not in problem.durations((op.order, op.op_index)):
            issues.append(f"{where}: machine {op.machine!r} cannot do this operation")
    issues += [f"frozen order {o!r} operation {i}: frozen twice" for (o, i), n in seen.items() if n > 1]
    return issues


def _problem_issues(problem: Problem) -> Iterator[str]:
    yield from _duplicates("machine", (m.id for m in problem.machines))
    yield from _duplicates("product", (p.id for p in problem.products))
    yield from _duplicates("order", (o.id for o in problem.orders))
    if problem.horizon is not None and problem.horizon <= 0:
        yield f"horizon must be positive, got {problem.horizon}"
    machine_ids = {m.id for m in problem.machines}
    for machine in problem.machines:
        for kind, windows in (("calendar", machine.calendar or ()), ("downtime", machine.downtime)):
            for start, end in windows:
                if not 0 <= start < end:
                    yield f"machine {machine.id!r}: {kind} window ({start}, {end}) needs 0 <= start < end"
    for product in problem.products:
        if not product.routing:
            yield f"product {product.id!r} has no operations"
        for index, operation in enumerate(product.routing):
            where = f"product {product.id!r} operation {index}"
            yield from _duplicates(f"{where}: machine", (o.machine for o in operation.options))
            for option in operation.options:
                if option.machine not in machine_ids:
                    yield f"{where}: unknown machine {option.machine!r}"
                if not option.minutes_per_unit > 0:
                    yield f"{where}: minutes per unit on {option.machine!r} must be positive"
    product_ids = {p.id for p in problem.products}
    for order in problem.orders:
        where = f"order {order.id!r}"
        if order.product not in product_ids:
            yield f"{where}: unknown product {order.product!r}"
        if not order.quantity > 0:
            yield f"{where}: quantity must be positive, got {order.quantity}"
        if order.release < 0:
            yield f"{where}: release must not be negative, got {order.release}"
        if order.weight < 0:
            yield f"{where}: weight must not be negative, got {order.weight}"
    yield from _duplicates("setup time", ((s.machine, s.from_family, s.to_family) for s in problem.setups))
    for setup in problem.setups:
        if setup.machine not in machine_ids:
            yield f"setup time {setup.from_family!r}->{setup.to_family!r}: unknown machine {setup.machine!r}"
        if setup.minutes < 0:
            yield f"setup time on {setup.machine!r} {setup.from_family!r}->{setup.to_family!r} is negative"
    for material, arrival in problem.material_arrivals.items():
        if arrival < 0:
            yield f"material {material!r}: arrival must not be negative, got {arrival}"
    if problem.cost is not None:
        yield from cost_issues(problem, problem.cost)


def _duplicates(what: str, ids: Iterable[object]) -> Iterator[str]:
    for value, count in Counter(ids).items():
        if count > 1:
            yield f"{what} {value!r} is listed {count} times"
