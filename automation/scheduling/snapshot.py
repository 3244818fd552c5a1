"""The engine's problems and schedules as JSON, for a run's row and its job.

A run stores the exact problem it solved, so its schedule, CSV and Gantt chart stay right after the master
data changes, and a re-plan starts from the same minutes as the plan it replaces. Schedules are lists of
``[order, operation index, machine, start, end, setup]``: compact for plans of thousands of operations.
"""

import dataclasses
from collections.abc import Iterable, Mapping

from .engine import (
    Assignment,
    BomLine,
    CostBreakdown,
    CostData,
    FrozenOp,
    Machine,
    MachinePower,
    Material,
    Operation,
    Option,
    Order,
    OrderTerms,
    Overtime,
    PriceBreak,
    PricePoint,
    Problem,
    Product,
    SetupTime,
    Supplier,
)
from .engine.forecast import PriceForecast
from .engine.scenarios import Change, LeadTimeChange, MachineDown, PriceChange, SupplierPrices, TariffChange


def problem_to_json(problem: Problem) -> dict:
    return {
        "machines": [
            {
                "id": m.id,
                "calendar": None if m.calendar is None else [list(w) for w in m.calendar],
                "downtime": [list(w) for w in m.downtime],
            }
            for m in problem.machines
        ],
        "products": [
            {
                "id": p.id,
                "family": p.family,
                "routing": [
                    {"options": [[o.machine, o.minutes_per_unit] for o in op.options], "materials": list(op.materials)}
                    for op in p.routing
                ],
            }
            for p in problem.products
        ],
        "orders": [
            {
                "id": o.id,
                "product": o.product,
                "quantity": o.quantity,
                "release": o.release,
                "due": o.due,
                "weight": o.weight,
            }
            for o in problem.orders
        ],
        "setups": [[s.machine, s.from_family, s.to_family, s.minutes] for s in problem.setups],
        "material_arrivals": dict(problem.material_arrivals),
        "horizon": problem.horizon,
        "hard_due_dates": problem.hard_due_dates,
        "cost": None if problem.cost is None else dataclasses.asdict(problem.cost),
    }


def problem_from_json(data: dict) -> Problem:
    """Raises the engine's ProblemError if the data does not make a valid problem."""
    return Problem(
        machines=tuple(
            Machine(
                m["id"],
                None if m["calendar"] is None else tuple(tuple(w) for w in m["calendar"]),
                tuple(tuple(w) for w in m["downtime"]),
            )
            for m in data["machines"]
        ),
        products=tuple(
            Product(
                p["id"],
                tuple(
                    Operation(
                        tuple(Option(machine, minutes) for machine, minutes in op["options"]), tuple(op["materials"])
                    )
                    for op in p["routing"]
                ),
                p["family"],
            )
            for p in data["products"]
        ),
        orders=tuple(
            Order(o["id"], o["product"], o["quantity"], o["release"], o["due"], o["weight"]) for o in data["orders"]
        ),
        setups=tuple(SetupTime(*s) for s in data["setups"]),
        material_arrivals=dict(data["material_arrivals"]),
        horizon=data["horizon"],
        hard_due_dates=data["hard_due_dates"],
        cost=cost_from_json(data["cost"]) if data.get("cost") else None,
    )


def cost_from_json(data: dict) -> CostData:
    return CostData(
        materials=tuple(Material(**m) for m in data["materials"]),
        suppliers=tuple(
            Supplier(
                s["id"],
                s["material"],
                tuple(PricePoint(**p) for p in s["prices"]),
                s["lead_days"],
                s["moq"],
                tuple(PriceBreak(**b) for b in s["breaks"]),
            )
            for s in data["suppliers"]
        ),
        bom=tuple(BomLine(**b) for b in data["bom"]),
        power=tuple(MachinePower(**p) for p in data["power"]),
        tariff=tuple(data["tariff"]),
        overtime=tuple(Overtime(**o) for o in data["overtime"]),
        orders=tuple(OrderTerms(**t) for t in data["orders"]),
        slot=data["slot"],
        order_day_from=data["order_day_from"],
    )


def costs_to_json(costs: CostBreakdown, *, declined: Iterable[str] = ()) -> dict:
    """A plan's cost: totals by kind, per order and per material (money rounded to cents)."""

    def cents(values: Mapping[str, float]) -> dict[str, float]:
        return {k: round(v, 2) for k, v in values.items()}

    return {
        "by_kind": cents(costs.by_kind()),
        "by_order": {o: cents(v) for o, v in sorted(costs.by_order.items())},
        "by_material": {m: cents(v) for m, v in sorted(costs.by_material.items())},
        "declined_orders": sorted(declined),
    }


def forecasts_to_json(problem: Problem, forecasts: Iterable[PriceForecast]) -> list[dict]:
    """Per forecast supplier: its material, the method, and the expected price with its interval per day."""
    material = {s.id: s.material for s in problem.cost.suppliers} if problem.cost else {}
    return [{"material": material.get(f.supplier, ""), **dataclasses.asdict(f)} for f in forecasts]


def schedule_to_json(schedule: Iterable[Assignment]) -> list[list]:
    return [[a.order, a.op_index, a.machine, a.start, a.end, a.setup] for a in schedule]


def schedule_from_json(data: Iterable[list]) -> tuple[Assignment, ...]:
    return tuple(Assignment(*row) for row in data)


def frozen_to_json(frozen: Iterable[FrozenOp]) -> list[list]:
    return [[op.order, op.op_index, op.machine, op.start] for op in frozen]


def frozen_from_json(data: Iterable[list]) -> tuple[FrozenOp, ...]:
    return tuple(FrozenOp(*row) for row in data)


_CHANGE_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (PriceChange, TariffChange, LeadTimeChange, MachineDown, SupplierPrices)
}


def changes_to_json(changes: Iterable[Change]) -> list[dict]:
    """A scenario in engine units, each change tagged with its type."""
    return [{"type": type(c).__name__, **dataclasses.asdict(c)} for c in changes]


def changes_from_json(data: Iterable[dict]) -> list[Change]:
    changes: list[Change] = []
    for item in data:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in item.items() if k != "type"}
        changes.append(_CHANGE_TYPES[item["type"]](**fields))
    return changes
