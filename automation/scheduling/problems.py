"""The organisation's factory data as an engine `Problem`, in integer minutes over a horizon.

Only what the chosen orders need goes in: their products, the machines of those routings (with shifts,
downtime and changeovers) and the materials the operations wait for. Reads only.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Prefetch, Q

from .engine import Machine as EngineMachine
from .engine import Operation as EngineOperation
from .engine import Option, Problem, ProblemError
from .engine import Order as EngineOrder
from .engine import Product as EngineProduct
from .engine import SetupTime as EngineSetupTime
from .models import Downtime, Machine, Operation, Order, SetupTime
from .timegrid import Horizon, shift_windows


@dataclass(frozen=True)
class BuiltProblem:
    problem: Problem
    operation_names: dict[str, list[str]]  # product code -> names of its operations, in routing order


def problem_build(*, orders: Sequence[Order], horizon: Horizon) -> BuiltProblem:
    """Raises the engine's ProblemError when the data cannot make a problem (say, a product without steps)."""
    product_ids = {order.product_id for order in orders}
    operations = list(
        Operation.objects.filter(product_id__in=product_ids)
        .select_related("product")
        .prefetch_related("options__machine", "materials")
        .order_by("product_id", "position")
    )
    routings: dict[str, list[Operation]] = {}
    for operation in operations:
        routings.setdefault(operation.product.code, []).append(operation)
    machine_ids = {option.machine_id for operation in operations for option in operation.options.all()}
    machines = list(
        Machine.objects.filter(id__in=machine_ids)
        .prefetch_related(
            "shifts",
            Prefetch(
                "downtimes",
                queryset=Downtime.objects.filter(Q(ends_at__gt=horizon.start) & Q(starts_at__lt=horizon.end)),
            ),
        )
        .order_by("code")
    )
    setups = SetupTime.objects.filter(machine_id__in=machine_ids).select_related("machine")
    materials = {material for operation in operations for material in operation.materials.all()}
    products = {order.product.code: order.product for order in orders}
    problem = Problem(
        machines=tuple(_machine(machine, horizon) for machine in machines),
        products=tuple(
            EngineProduct(
                code,
                tuple(
                    EngineOperation(
                        tuple(Option(o.machine.code, float(o.minutes_per_unit)) for o in operation.options.all()),
                        tuple(sorted(m.code for m in operation.materials.all())),
                    )
                    for operation in routings.get(code, [])
                ),
                product.family,
            )
            for code, product in sorted(products.items())
        ),
        orders=tuple(_order(order, horizon) for order in orders),
        setups=tuple(EngineSetupTime(s.machine.code, s.from_family, s.to_family, s.minutes) for s in setups),
        # A material without a delivery date is left out: the engine's diagnosis reports it by name.
        material_arrivals={m.code: max(0, horizon.minute_up(m.arrives_at)) for m in materials if m.arrives_at},
        horizon=horizon.minutes,
    )
    names = {code: [operation.name for operation in routing] for code, routing in routings.items()}
    return BuiltProblem(problem, names)


def _machine(machine: Machine, horizon: Horizon) -> EngineMachine:
    shifts = list(machine.shifts.all())
    calendar = None
    if shifts:
        calendar = tuple(
            shift_windows([(s.days, s.start, s.end) for s in shifts], zone=machine.timezone, horizon=horizon)
        )
    downtime = tuple(
        window
        for d in machine.downtimes.all()
        if (window := horizon.window(d.starts_at, d.ends_at, available=False)) is not None
    )
    return EngineMachine(machine.code, calendar, downtime)


def _order(order: Order, horizon: Horizon) -> EngineOrder:
    return EngineOrder(
        order.code,
        order.product.code,
        quantity=float(order.quantity),
        # Released before the horizon: ready at its start. Released after its end: the diagnosis says so.
        release=max(0, horizon.minute_up(order.release_at)) if order.release_at else 0,
        # Already overdue orders keep a negative due minute, so their lateness is counted in full.
        due=horizon.minute_down(order.due_at) if order.due_at else None,
        weight=order.weight,
    )


def problem_merge(base: Problem, extra: Problem) -> Problem:
    """``base`` plus the orders of ``extra`` (rush orders), with whatever they need that ``base`` lacks.

    Where both know a machine, product, changeover or material, ``base``'s version wins: it is what the plan
    being repaired was made with, breakdowns included.
    """
    order_ids = {o.id for o in base.orders}
    clash = sorted(o.id for o in extra.orders if o.id in order_ids)
    if clash:
        raise ProblemError([f"order {o!r} is already in the plan" for o in clash])
    machines = {m.id for m in base.machines}
    products = {p.id for p in base.products}
    setups = {(s.machine, s.from_family, s.to_family) for s in base.setups}
    return Problem(
        machines=base.machines + tuple(m for m in extra.machines if m.id not in machines),
        products=base.products + tuple(p for p in extra.products if p.id not in products),
        orders=base.orders + extra.orders,
        setups=base.setups + tuple(s for s in extra.setups if (s.machine, s.from_family, s.to_family) not in setups),
        material_arrivals={**extra.material_arrivals, **base.material_arrivals},
        horizon=base.horizon,
        hard_due_dates=base.hard_due_dates,
    )
