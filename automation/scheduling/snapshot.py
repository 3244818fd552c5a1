"""The engine's problems and schedules as JSON, for a run's row and its job.

A run stores the exact problem it solved, so its schedule, CSV and Gantt chart stay right after the master
data changes, and a re-plan starts from the same minutes as the plan it replaces. Schedules are lists of
``[order, operation index, machine, start, end, setup]``: compact for plans of thousands of operations.
"""

from collections.abc import Iterable

from .engine import Assignment, FrozenOp, Machine, Operation, Option, Order, Problem, Product, SetupTime


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
    )


def schedule_to_json(schedule: Iterable[Assignment]) -> list[list]:
    return [[a.order, a.op_index, a.machine, a.start, a.end, a.setup] for a in schedule]


def schedule_from_json(data: Iterable[list]) -> tuple[Assignment, ...]:
    return tuple(Assignment(*row) for row in data)


def frozen_to_json(frozen: Iterable[FrozenOp]) -> list[list]:
    return [[op.order, op.op_index, op.machine, op.start] for op in frozen]


def frozen_from_json(data: Iterable[list]) -> tuple[FrozenOp, ...]:
    return tuple(FrozenOp(*row) for row in data)
