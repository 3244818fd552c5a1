"""The organisation's factory data as an engine `Problem`, in integer minutes over a horizon.

Only what the chosen orders need goes in: their products, the machines of those routings (with shifts,
downtime and changeovers) and the materials the operations wait for. Reads only.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.db.models import Prefetch, Q

from .engine import BomLine as EngineBomLine
from .engine import CostData, MachinePower, Option, OrderTerms, Overtime, PriceBreak, PricePoint, Problem, ProblemError
from .engine import Machine as EngineMachine
from .engine import Material as EngineMaterial
from .engine import Operation as EngineOperation
from .engine import Order as EngineOrder
from .engine import Product as EngineProduct
from .engine import SetupTime as EngineSetupTime
from .engine import Supplier as EngineSupplier
from .engine.costs import MINUTES_PER_DAY
from .engine.forecast import PriceForecast, forecast_prices, forecastable
from .models import BomLine, Downtime, Machine, Material, Operation, Order, SetupTime, Supplier, TariffRate
from .timegrid import Horizon, shift_windows


@dataclass(frozen=True)
class BuiltProblem:
    problem: Problem
    operation_names: dict[str, list[str]]  # product code -> names of its operations, in routing order
    forecasts: tuple[PriceForecast, ...] = ()  # prices forecast for suppliers with only history


def problem_build(*, orders: Sequence[Order], horizon: Horizon, with_cost: bool = False) -> BuiltProblem:
    """Raises the engine's ProblemError when the data cannot make a problem (say, a product without steps).

    ``with_cost``: add what the cost objective needs (``cost_data_build``)."""
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
    cost, forecasts = cost_data_build(orders=orders, machines=machines, horizon=horizon) if with_cost else (None, ())
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
        cost=cost,
    )
    names = {code: [operation.name for operation in routing] for code, routing in routings.items()}
    return BuiltProblem(problem, names, forecasts)


def cost_data_build(
    *, orders: Sequence[Order], machines: Sequence[Machine], horizon: Horizon
) -> tuple[CostData, tuple[PriceForecast, ...]]:
    """Prices, stock, bills of materials, power, tariff, overtime shifts and order terms, in engine units; and
    the price forecasts made for suppliers that have only price history.

    A supplier's price dated before the horizon applies from its start (day 0); days count from the horizon
    start. A supplier whose prices all lie before the horizon's first day, with enough of them
    (``engine.forecast``), gets the forecast's expected price for each day instead. The weekly tariff (UTC hours)
    becomes one price per hour of the horizon.
    """
    organization_id = orders[0].organization_id
    product_ids = {order.product_id for order in orders}
    bom = list(BomLine.objects.filter(product_id__in=product_ids).select_related("product", "material"))
    material_ids = {line.material_id for line in bom}
    materials = list(Material.objects.filter(id__in=material_ids).order_by("code"))
    suppliers = list(
        Supplier.objects.filter(material_id__in=material_ids).select_related("material").prefetch_related("prices")
    )
    rates = {
        (r.weekday, r.hour): float(r.price_per_kwh) for r in TariffRate.objects.filter(organization_id=organization_id)
    }
    hours = -(-horizon.minutes // 60)
    tariff: tuple[float, ...] = ()
    if rates:
        tariff = tuple(
            rates.get(((moment := horizon.start + timedelta(hours=h)).weekday(), moment.hour), 0.0)
            for h in range(hours)
        )
    overtime = []
    for machine in machines:
        for shift in machine.shifts.all():
            if shift.overtime_cost_per_hour is None:
                continue
            for start, end in shift_windows(
                [(shift.days, shift.start, shift.end)], zone=machine.timezone, horizon=horizon
            ):
                overtime.append(Overtime(machine.code, start, end, float(shift.overtime_cost_per_hour)))
    horizon_days = -(-horizon.minutes // MINUTES_PER_DAY)
    engine_suppliers, forecasts = [], []
    for s in suppliers:
        if s.prices.all():
            engine_supplier, forecast = _supplier(s, horizon, days=horizon_days)
            engine_suppliers.append(engine_supplier)
            if forecast is not None:
                forecasts.append(forecast)
    cost = CostData(
        materials=tuple(
            EngineMaterial(m.code, m.stock, float(m.holding_cost_per_day), m.storage_limit) for m in materials
        ),
        suppliers=tuple(engine_suppliers),
        bom=tuple(
            EngineBomLine(line.product.code, line.position, line.material.code, float(line.quantity_per_unit))
            for line in bom
        ),
        power=tuple(
            MachinePower(m.code, float(m.running_kw), float(m.idle_kw)) for m in machines if m.running_kw or m.idle_kw
        ),
        tariff=tariff,
        overtime=tuple(overtime),
        orders=tuple(
            OrderTerms(o.code, float(o.late_penalty_per_day), o.optional, float(o.margin))
            for o in orders
            if o.late_penalty_per_day or o.optional or o.margin
        ),
    )
    return cost, tuple(sorted(forecasts, key=lambda f: f.supplier))


def _supplier(supplier: Supplier, horizon: Horizon, *, days: int) -> tuple[EngineSupplier, PriceForecast | None]:
    history = [((p.day - horizon.start.date()).days, float(p.price)) for p in supplier.prices.all()]
    if forecastable(history):
        forecast = forecast_prices(supplier.code, history, days=days)
        prices = tuple(PricePoint(day, price) for day, price in enumerate(forecast.mean))
        return _engine_supplier(supplier, prices), forecast
    by_day: dict[int, float] = {}
    for point in sorted(supplier.prices.all(), key=lambda p: p.day):
        midnight = datetime.combine(point.day, time(), tzinfo=UTC)
        day = max(0, -(-horizon.minute_up(midnight) // MINUTES_PER_DAY))
        by_day[day] = float(point.price)  # later dates win a day they share
    return _engine_supplier(supplier, tuple(PricePoint(day, price) for day, price in sorted(by_day.items()))), None


def _engine_supplier(supplier: Supplier, prices: tuple[PricePoint, ...]) -> EngineSupplier:
    return EngineSupplier(
        supplier.code,
        supplier.material.code,
        prices,
        lead_days=supplier.lead_days,
        moq=supplier.moq,
        breaks=tuple(PriceBreak(int(q), float(f)) for q, f in supplier.price_breaks),
    )


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
        cost=_cost_merge(base.cost, extra.cost),
    )


def _cost_merge(base: CostData | None, extra: CostData | None) -> CostData | None:
    """Cost data for a plan with rush orders: ``base``'s, plus the new orders' terms and what they consume."""
    if base is None or extra is None:
        return base or extra
    known_materials = {m.id for m in base.materials}
    known_suppliers = {s.id for s in base.suppliers}
    known_bom = {(b.product, b.op_index, b.material) for b in base.bom}
    return dataclasses.replace(
        base,
        materials=base.materials + tuple(m for m in extra.materials if m.id not in known_materials),
        suppliers=base.suppliers + tuple(s for s in extra.suppliers if s.id not in known_suppliers),
        bom=base.bom + tuple(b for b in extra.bom if (b.product, b.op_index, b.material) not in known_bom),
        orders=base.orders + extra.orders,
    )
