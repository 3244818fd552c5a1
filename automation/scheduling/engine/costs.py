"""What money a plan costs: purchasing, stock, energy, overtime, lateness, declined orders.

``CostData`` rides on a ``Problem`` (``Problem.cost``) and is what ``objective="cost"`` reads. Time follows
the problem (integer minutes from the horizon start); purchasing follows days: a purchase is placed at the
start of an order day and arrives at the start of ``order_day + lead_days``, where it can be consumed at
once. Material quantities are whole units: an operation consumes ``ceil(per_unit * order quantity)`` of each
material of its bill of materials, when it starts. Stock is valued at the end of each day (holding cost per
unit-day), the electricity tariff is a price per kWh for each hour from the horizon start (repeated when
shorter than the horizon: 168 values make a weekly tariff), late penalties count per day or part of a day.

Money is a float in the data and in the results; the CP-SAT model counts it in whole thousandths
(``to_millis``), so its objective equals the sum of the rounded items below.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from automation.scheduling.engine.problem import Problem

MINUTES_PER_DAY = 1440


def to_millis(money: float) -> int:
    return round(money * 1000)


@dataclass(frozen=True)
class PricePoint:
    """From ``day`` on (until the next point), a unit costs ``price`` when ordered."""

    day: int
    price: float


@dataclass(frozen=True)
class PriceBreak:
    """All-units discount: an order of at least ``min_quantity`` pays ``factor`` times the dated price."""

    min_quantity: int
    factor: float


@dataclass(frozen=True)
class Supplier:
    id: str
    material: str
    prices: tuple[PricePoint, ...]  # a series is one point per day
    lead_days: int = 0
    moq: int = 1  # minimum order quantity
    breaks: tuple[PriceBreak, ...] = ()

    def price(self, day: int) -> float:
        """The dated unit price for an order placed on ``day``; before the first point, the first price."""
        points = sorted(self.prices, key=lambda p: p.day)
        current = points[0].price
        for point in points:
            if point.day > day:
                break
            current = point.price
        return current

    def tiers(self) -> list[tuple[int, float]]:
        """(minimum quantity, factor) from the smallest allowed order up, the MOQ folded in."""
        lowest = max(1, self.moq)
        tiers = {lowest: 1.0}
        for brk in sorted(self.breaks, key=lambda b: b.min_quantity):
            if brk.min_quantity <= lowest:
                tiers[lowest] = brk.factor
            else:
                tiers[brk.min_quantity] = brk.factor
        return sorted(tiers.items())

    def unit_millis(self, day: int, quantity: int) -> int:
        factor = 1.0
        for minimum, tier_factor in self.tiers():
            if quantity >= minimum:
                factor = tier_factor
        return to_millis(self.price(day) * factor)


@dataclass(frozen=True)
class Material:
    id: str
    stock: int = 0  # on hand at the horizon start
    holding_per_day: float = 0.0  # per unit held at the end of a day
    storage_limit: int | None = None  # most units in stock at any time


@dataclass(frozen=True)
class BomLine:
    """Operation ``op_index`` of ``product`` consumes ``per_unit`` of ``material`` per unit of the order."""

    product: str
    op_index: int
    material: str
    per_unit: float


@dataclass(frozen=True)
class MachinePower:
    machine: str
    running_kw: float
    idle_kw: float = 0.0  # drawn during the machine's working time whenever it is not running


@dataclass(frozen=True)
class Overtime:
    """A stretch of a machine's working time that costs ``cost_per_hour`` for every hour it is used."""

    machine: str
    start: int
    end: int
    cost_per_hour: float


@dataclass(frozen=True)
class OrderTerms:
    order: str
    late_penalty_per_day: float = 0.0
    optional: bool = False  # the plan may decline it, forgoing ``margin``
    margin: float = 0.0


@dataclass(frozen=True)
class CostData:
    materials: tuple[Material, ...] = ()
    suppliers: tuple[Supplier, ...] = ()
    bom: tuple[BomLine, ...] = ()
    power: tuple[MachinePower, ...] = ()
    tariff: tuple[float, ...] = ()  # price per kWh per hour from the horizon start, repeated; () is free
    overtime: tuple[Overtime, ...] = ()
    orders: tuple[OrderTerms, ...] = ()
    slot: int = 60  # the cost objective starts operations on multiples of this many minutes
    order_day_from: int = 0  # no purchase can be placed before this day (today, when re-planning)

    @cached_property
    def material_by_id(self) -> dict[str, Material]:
        return {m.id: m for m in self.materials}

    @cached_property
    def terms(self) -> dict[str, OrderTerms]:
        return {t.order: t for t in self.orders}

    @cached_property
    def power_by_machine(self) -> dict[str, MachinePower]:
        return {p.machine: p for p in self.power}

    def suppliers_of(self, material: str) -> list[Supplier]:
        return [s for s in self.suppliers if s.material == material]

    def tariff_at(self, minute: int) -> float:
        return self.tariff[(minute // 60) % len(self.tariff)] if self.tariff else 0.0

    @cached_property
    def _bom(self) -> dict[tuple[str, int], list[BomLine]]:
        lines: dict[tuple[str, int], list[BomLine]] = {}
        for line in self.bom:
            lines.setdefault((line.product, line.op_index), []).append(line)
        return lines

    def consumption(self, problem: Problem, order_id: str, op_index: int) -> dict[str, int]:
        """Units of each material the operation consumes when it starts."""
        order = problem.order(order_id)
        used: dict[str, int] = {}
        for line in self._bom.get((order.product, op_index), []):
            used[line.material] = used.get(line.material, 0) + math.ceil(round(line.per_unit * order.quantity, 6))
        return used


def days(problem: Problem) -> int:
    """Days the cost horizon spans: every operation ends within them, stock is valued at each one's end."""
    assert problem.horizon is not None
    return math.ceil(problem.horizon / MINUTES_PER_DAY)


def cost_issues(problem: Problem, cost: CostData) -> Iterator[str]:
    """Everything wrong with the cost data of ``problem``, one sentence each."""
    if problem.horizon is None:
        yield "cost data needs a horizon"
    yield from _duplicates("material", (m.id for m in cost.materials))
    yield from _duplicates("supplier", (s.id for s in cost.suppliers))
    yield from _duplicates("power of machine", (p.machine for p in cost.power))
    yield from _duplicates("terms of order", (t.order for t in cost.orders))
    if cost.slot <= 0:
        yield f"slot must be positive, got {cost.slot}"
    if cost.order_day_from < 0:
        yield f"order_day_from must not be negative, got {cost.order_day_from}"
    materials = {m.id for m in cost.materials}
    for material in cost.materials:
        where = f"material {material.id!r}"
        if material.stock < 0:
            yield f"{where}: stock must not be negative, got {material.stock}"
        if material.holding_per_day < 0:
            yield f"{where}: holding cost must not be negative"
        if material.storage_limit is not None and material.storage_limit < material.stock:
            yield f"{where}: storage limit {material.storage_limit} is below the stock on hand {material.stock}"
    for supplier in cost.suppliers:
        where = f"supplier {supplier.id!r}"
        if supplier.material not in materials:
            yield f"{where}: unknown material {supplier.material!r}"
        if not supplier.prices:
            yield f"{where}: needs at least one price"
        yield from _duplicates(f"{where}: price on day", (p.day for p in supplier.prices))
        if any(p.price < 0 for p in supplier.prices):
            yield f"{where}: prices must not be negative"
        if supplier.lead_days < 0:
            yield f"{where}: lead time must not be negative"
        if supplier.moq < 1:
            yield f"{where}: minimum order quantity must be at least 1"
        if any(b.factor <= 0 or b.min_quantity < 1 for b in supplier.breaks):
            yield f"{where}: price breaks need a positive factor and a minimum quantity of at least 1"
    products = {p.id: p for p in problem.products}
    for line in cost.bom:
        where = f"bill of materials of product {line.product!r} operation {line.op_index}"
        if line.product not in products:
            yield f"{where}: unknown product"
        elif not 0 <= line.op_index < len(products[line.product].routing):
            yield f"{where}: no such operation"
        if line.material not in materials:
            yield f"{where}: unknown material {line.material!r}"
        if not line.per_unit > 0:
            yield f"{where}: quantity per unit must be positive"
    machines = {m.id for m in problem.machines}
    for power in cost.power:
        if power.machine not in machines:
            yield f"power: unknown machine {power.machine!r}"
        if power.idle_kw < 0 or power.running_kw < power.idle_kw:
            yield f"power of {power.machine!r}: needs 0 <= idle <= running"
    if any(price < 0 for price in cost.tariff):
        yield "tariff prices must not be negative"
    for overtime in cost.overtime:
        if overtime.machine not in machines:
            yield f"overtime: unknown machine {overtime.machine!r}"
        if not 0 <= overtime.start < overtime.end or overtime.cost_per_hour < 0:
            yield f"overtime on {overtime.machine!r}: needs 0 <= start < end and a cost that is not negative"
    orders = {o.id for o in problem.orders}
    for terms in cost.orders:
        if terms.order not in orders:
            yield f"terms: unknown order {terms.order!r}"
        if terms.late_penalty_per_day < 0 or terms.margin < 0:
            yield f"terms of order {terms.order!r}: penalty and margin must not be negative"
    used = {line.material for line in cost.bom}
    for name in sorted(used & materials):
        if not cost.suppliers_of(name):
            demand = sum(
                cost.consumption(problem, o.id, i).get(name, 0)
                for o in problem.orders
                if o.product in products
                for i in range(len(products[o.product].routing))
            )
            if demand > cost.material_by_id[name].stock:
                yield f"material {name!r}: no supplier, and {demand} units are needed but only stock is there"


@dataclass(frozen=True)
class Purchase:
    supplier: str
    material: str
    order_day: int
    arrival_day: int
    quantity: int
    unit_price: float
    cost: float


@dataclass(frozen=True)
class CostBreakdown:
    """Totals by kind, plus per order and per material; ``total`` is their sum."""

    material: float
    holding: float
    energy: float
    overtime: float
    late: float
    declined: float  # margin forgone on declined orders
    by_order: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    by_material: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.material + self.holding + self.energy + self.overtime + self.late + self.declined

    def by_kind(self) -> dict[str, float]:
        return {
            "material": self.material,
            "holding": self.holding,
            "energy": self.energy,
            "overtime": self.overtime,
            "late": self.late,
            "declined": self.declined,
            "total": self.total,
        }


def _duplicates(what: str, ids: Iterator[object]) -> Iterator[str]:
    for value, count in Counter(ids).items():
        if count > 1:
            yield f"{what} {value!r} is listed {count} times"
