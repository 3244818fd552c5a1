"""Writes of the factory's master data: machines and their shifts, downtime, materials, products and their
routings, changeovers, orders.

Callers (the API, the import) resolve references to objects of the same organisation; these services check
that again, so no code path can link one tenant's order to another tenant's product. Failures are Django
`ValidationError`s keyed by field, which the API answers as 400 in the one error shape.
"""

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypedDict, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError

from tenants.models import Organization

from .models import (
    BomLine,
    Downtime,
    Machine,
    Material,
    Operation,
    OperationMaterial,
    OperationOption,
    Order,
    Product,
    SetupTime,
    Shift,
    Supplier,
    SupplierPrice,
    TariffRate,
)
from .timegrid import WEEKDAYS


class ShiftData(TypedDict, total=False):
    days: list[str]
    start: time
    end: time
    overtime_cost_per_hour: Decimal | None


class OptionData(TypedDict):
    machine: Machine
    minutes_per_unit: Decimal


class OperationData(TypedDict, total=False):
    name: str
    options: list[OptionData]
    materials: list[Material]


_M = TypeVar("_M", bound=models.Model)


# --- helpers ------------------------------------------------------------------------------------------------------


def _same_organization(organization_id, field: str, *objects: Machine | Material | Product | Supplier) -> None:
    if any(obj.organization_id != organization_id for obj in objects):
        raise ValidationError({field: ["No such object in this organisation."]})


def _code_free(
    model: type[Machine | Material | Product | Order | Supplier], *, organization_id, code: str, instance=None
) -> None:
    taken = model.objects.filter(organization_id=organization_id, code=code)
    if instance is not None:
        taken = taken.exclude(pk=instance.pk)
    if taken.exists():
        raise ValidationError({"code": [f"A {model._meta.verbose_name} with the code {code!r} already exists."]})


def _save(instance: _M) -> _M:
    """Field validation, then save; a constraint lost to a concurrent write reads as a validation error."""
    instance.full_clean(
        exclude=[f.name for f in instance._meta.fields if f.is_relation],
        validate_unique=False,
        validate_constraints=False,
    )
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise ValidationError(
            {NON_FIELD_ERRORS: [f"Conflicts with an existing record ({exc.__cause__ or exc})."]}
        ) from exc
    return instance


def _assign(instance: models.Model, data: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise TypeError(f"cannot update {sorted(unknown)} of a {type(instance).__name__}")
    for field, value in data.items():
        setattr(instance, field, value)


def _delete(instance: models.Model, *, used_by: str) -> None:
    try:
        instance.delete()
    except ProtectedError as exc:
        users = sorted({str(obj) for obj in exc.protected_objects})
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    f"{type(instance).__name__} {instance} is still used by {used_by} {shown}; change those first."
                ]
            }
        ) from exc


# --- machines, shifts, downtime -------------------------------------------------------------------------------------


def _shifts_replace(machine: Machine, shifts: Sequence[ShiftData]) -> None:
    for i, shift in enumerate(shifts):
        if not shift["days"] or set(shift["days"]) - set(WEEKDAYS):
            raise ValidationError({"shifts": [f"Shift {i + 1}: days must be some of {', '.join(WEEKDAYS)}."]})
        if shift["start"] == shift["end"]:
            raise ValidationError({"shifts": [f"Shift {i + 1}: a shift must not start and end at the same time."]})
    Shift.objects.filter(machine=machine).delete()
    Shift.objects.bulk_create(
        Shift(
            organization_id=machine.organization_id,
            machine=machine,
            days=sorted(set(s["days"]), key=WEEKDAYS.index),
            start=s["start"],
            end=s["end"],
            overtime_cost_per_hour=s.get("overtime_cost_per_hour"),
        )
        for s in shifts
    )
    if hasattr(machine, "_prefetched_objects_cache"):
        machine._prefetched_objects_cache.pop("shifts", None)


@transaction.atomic
def machine_create(
    *,
    organization: Organization,
    code: str,
    name: str = "",
    timezone: str = "UTC",
    shifts: Sequence[ShiftData] = (),
    running_kw: Decimal = Decimal(0),
    idle_kw: Decimal = Decimal(0),
) -> Machine:
    _code_free(Machine, organization_id=organization.id, code=code)
    machine = _save(
        Machine(
            organization=organization, code=code, name=name, timezone=timezone, running_kw=running_kw, idle_kw=idle_kw
        )
    )
    _shifts_replace(machine, shifts)
    return machine


@transaction.atomic
def machine_update(*, machine: Machine, data: dict[str, Any]) -> Machine:
    """`data`: any of code, name, timezone, shifts (a list replaces every shift)."""
    data = dict(data)
    shifts = data.pop("shifts", None)
    if "code" in data:
        _code_free(Machine, organization_id=machine.organization_id, code=data["code"], instance=machine)
    _assign(machine, data, ("code", "name", "timezone", "running_kw", "idle_kw"))
    _save(machine)
    if shifts is not None:
        _shifts_replace(machine, shifts)
    return machine


def machine_delete(*, machine: Machine) -> None:
    """Its shifts, downtime and changeovers go with it; a machine in a routing stays."""
    _delete(machine, used_by="the routings of")


def _downtime_check(downtime: Downtime) -> None:
    if downtime.ends_at <= downtime.starts_at:
        raise ValidationError({"ends_at": ["A downtime must end after it starts."]})


def downtime_create(
    *,
    organization: Organization,
    machine: Machine,
    starts_at: datetime,
    ends_at: datetime,
    kind: str = Downtime.Kind.PLANNED,
    reason: str = "",
) -> Downtime:
    _same_organization(organization.id, "machine", machine)
    downtime = Downtime(
        organization=organization, machine=machine, starts_at=starts_at, ends_at=ends_at, kind=kind, reason=reason
    )
    _downtime_check(downtime)
    return _save(downtime)


def downtime_update(*, downtime: Downtime, data: dict[str, Any]) -> Downtime:
    if "machine" in data:
        _same_organization(downtime.organization_id, "machine", data["machine"])
    _assign(downtime, data, ("machine", "starts_at", "ends_at", "kind", "reason"))
    _downtime_check(downtime)
    return _save(downtime)


def downtime_delete(*, downtime: Downtime) -> None:
    downtime.delete()


# --- materials ------------------------------------------------------------------------------------------------------


def material_create(
    *,
    organization: Organization,
    code: str,
    name: str = "",
    arrives_at: datetime | None = None,
    stock: int = 0,
    holding_cost_per_day: Decimal = Decimal(0),
    storage_limit: int | None = None,
) -> Material:
    _code_free(Material, organization_id=organization.id, code=code)
    material = Material(
        organization=organization,
        code=code,
        name=name,
        arrives_at=arrives_at,
        stock=stock,
        holding_cost_per_day=holding_cost_per_day,
        storage_limit=storage_limit,
    )
    _material_check(material)
    return _save(material)


def _material_check(material: Material) -> None:
    if material.storage_limit is not None and material.storage_limit < material.stock:
        raise ValidationError({"storage_limit": ["The storage limit is below the stock on hand."]})


def material_update(*, material: Material, data: dict[str, Any]) -> Material:
    """`data`: any of code, name, arrives_at, stock, holding_cost_per_day, storage_limit."""
    if "code" in data:
        _code_free(Material, organization_id=material.organization_id, code=data["code"], instance=material)
    _assign(material, data, ("code", "name", "arrives_at", "stock", "holding_cost_per_day", "storage_limit"))
    _material_check(material)
    return _save(material)


def material_delete(*, material: Material) -> None:
    _delete(material, used_by="the routings of")


# --- products and routings ------------------------------------------------------------------------------------------


def _routing_replace(product: Product, operations: Sequence[OperationData]) -> None:
    organization_id = product.organization_id
    for i, spec in enumerate(operations):
        options = spec.get("options") or []
        machines = [option["machine"] for option in options]
        _same_organization(organization_id, "operations", *machines, *spec.get("materials", []))
        if not options:
            raise ValidationError({"operations": [f"Operation {i + 1} needs at least one machine."]})
        if len({m.pk for m in machines}) < len(machines):
            raise ValidationError({"operations": [f"Operation {i + 1} lists a machine twice."]})
    Operation.objects.filter(product=product).delete()
    for position, data in enumerate(operations):
        operation = Operation.objects.create(
            organization_id=organization_id, product=product, position=position, name=data.get("name", "")
        )
        OperationOption.objects.bulk_create(
            OperationOption(
                organization_id=organization_id,
                operation=operation,
                machine=option["machine"],
                minutes_per_unit=option["minutes_per_unit"],
            )
            for option in data["options"]
        )
        OperationMaterial.objects.bulk_create(
            OperationMaterial(organization_id=organization_id, operation=operation, material=material)
            for material in {m.pk: m for m in data.get("materials", [])}.values()
        )
    if hasattr(product, "_prefetched_objects_cache"):
        product._prefetched_objects_cache.pop("operations", None)


@transaction.atomic
def product_create(
    *, organization: Organization, code: str, name: str = "", family: str = "", operations: Sequence[OperationData] = ()
) -> Product:
    _code_free(Product, organization_id=organization.id, code=code)
    product = _save(Product(organization=organization, code=code, name=name, family=family))
    _routing_replace(product, operations)
    return product


@transaction.atomic
def product_update(*, product: Product, data: dict[str, Any]) -> Product:
    """`data`: any of code, name, family, operations (a list replaces the whole routing)."""
    data = dict(data)
    operations = data.pop("operations", None)
    if "code" in data:
        _code_free(Product, organization_id=product.organization_id, code=data["code"], instance=product)
    _assign(product, data, ("code", "name", "family"))
    _save(product)
    if operations is not None:
        _routing_replace(product, operations)
    return product


def product_delete(*, product: Product) -> None:
    _delete(product, used_by="the orders")


# --- changeovers ----------------------------------------------------------------------------------------------------


def _setup_time_free(setup: SetupTime) -> None:
    taken = SetupTime.objects.filter(
        machine=setup.machine, from_family=setup.from_family, to_family=setup.to_family
    ).exclude(pk=setup.pk)
    if taken.exists():
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    f"Machine {setup.machine} already has a changeover "
                    f"from {setup.from_family!r} to {setup.to_family!r}."
                ]
            }
        )


def setup_time_create(
    *, organization: Organization, machine: Machine, from_family: str, to_family: str, minutes: int
) -> SetupTime:
    _same_organization(organization.id, "machine", machine)
    setup = SetupTime(
        organization=organization, machine=machine, from_family=from_family, to_family=to_family, minutes=minutes
    )
    _setup_time_free(setup)
    return _save(setup)


def setup_time_update(*, setup_time: SetupTime, data: dict[str, Any]) -> SetupTime:
    if "machine" in data:
        _same_organization(setup_time.organization_id, "machine", data["machine"])
    _assign(setup_time, data, ("machine", "from_family", "to_family", "minutes"))
    _setup_time_free(setup_time)
    return _save(setup_time)


def setup_time_delete(*, setup_time: SetupTime) -> None:
    setup_time.delete()


# --- orders ---------------------------------------------------------------------------------------------------------


def _order_check(order: Order) -> None:
    if order.release_at and order.due_at and order.due_at < order.release_at:
        raise ValidationError({"due_at": ["An order cannot be due before it is released."]})


def order_create(
    *,
    organization: Organization,
    code: str,
    product: Product,
    quantity: Decimal,
    release_at: datetime | None = None,
    due_at: datetime | None = None,
    weight: int = 1,
    late_penalty_per_day: Decimal = Decimal(0),
    optional: bool = False,
    margin: Decimal = Decimal(0),
) -> Order:
    _same_organization(organization.id, "product", product)
    _code_free(Order, organization_id=organization.id, code=code)
    order = Order(
        organization=organization,
        code=code,
        product=product,
        quantity=quantity,
        release_at=release_at,
        due_at=due_at,
        weight=weight,
        late_penalty_per_day=late_penalty_per_day,
        optional=optional,
        margin=margin,
    )
    _order_check(order)
    return _save(order)


def order_update(*, order: Order, data: dict[str, Any]) -> Order:
    """`data`: any of code, product, quantity, release_at, due_at, weight, late_penalty_per_day, optional,
    margin."""
    if "product" in data:
        _same_organization(order.organization_id, "product", data["product"])
    if "code" in data:
        _code_free(Order, organization_id=order.organization_id, code=data["code"], instance=order)
    _assign(
        order,
        data,
        ("code", "product", "quantity", "release_at", "due_at", "weight", "late_penalty_per_day", "optional", "margin"),
    )
    _order_check(order)
    return _save(order)


def order_delete(*, order: Order) -> None:
    order.delete()


# --- purchasing and energy ------------------------------------------------------------------------------------------


def supplier_create(
    *,
    organization: Organization,
    code: str,
    material: Material,
    name: str = "",
    lead_days: int = 0,
    moq: int = 1,
    price_breaks: list | None = None,
) -> Supplier:
    _same_organization(organization.id, "material", material)
    _code_free(Supplier, organization_id=organization.id, code=code)
    return _save(
        Supplier(
            organization=organization,
            code=code,
            material=material,
            name=name,
            lead_days=lead_days,
            moq=moq,
            price_breaks=price_breaks or [],
        )
    )


def supplier_update(*, supplier: Supplier, data: dict[str, Any]) -> Supplier:
    """`data`: any of code, material, name, lead_days, moq, price_breaks."""
    if "material" in data:
        _same_organization(supplier.organization_id, "material", data["material"])
    if "code" in data:
        _code_free(Supplier, organization_id=supplier.organization_id, code=data["code"], instance=supplier)
    _assign(supplier, data, ("code", "material", "name", "lead_days", "moq", "price_breaks"))
    return _save(supplier)


def supplier_price_set(*, organization: Organization, supplier: Supplier, day: date, price: Decimal) -> SupplierPrice:
    """The supplier's price from ``day`` on; replaces one already given for that day."""
    _same_organization(organization.id, "supplier", supplier)
    existing = SupplierPrice.objects.filter(supplier=supplier, day=day).first()
    if existing is not None:
        existing.price = price
        return _save(existing)
    return _save(SupplierPrice(organization=organization, supplier=supplier, day=day, price=price))


def bom_line_set(
    *, organization: Organization, product: Product, position: int, material: Material, quantity_per_unit: Decimal
) -> BomLine:
    """Step ``position`` (from 1) of ``product`` consumes ``quantity_per_unit`` of ``material`` per unit."""
    _same_organization(organization.id, "product", product, material)
    steps = product.operations.count()
    if not 1 <= position <= steps:
        raise ValidationError({"step": [f"Product {product.code} has {steps} steps; there is no step {position}."]})
    existing = BomLine.objects.filter(product=product, position=position - 1, material=material).first()
    if existing is not None:
        existing.quantity_per_unit = quantity_per_unit
        return _save(existing)
    return _save(
        BomLine(
            organization=organization,
            product=product,
            position=position - 1,
            material=material,
            quantity_per_unit=quantity_per_unit,
        )
    )


def tariff_rate_set(*, organization: Organization, weekday: int, hour: int, price_per_kwh: Decimal) -> TariffRate:
    existing = TariffRate.objects.filter(organization=organization, weekday=weekday, hour=hour).first()
    if existing is not None:
        existing.price_per_kwh = price_per_kwh
        return _save(existing)
    return _save(TariffRate(organization=organization, weekday=weekday, hour=hour, price_per_kwh=price_per_kwh))


def supplier_delete(*, supplier: Supplier) -> None:
    """The supplier and its prices; plans already made keep their own copy."""
    _delete(supplier, used_by="")


def supplier_price_update(*, supplier_price: SupplierPrice, data: dict[str, Any]) -> SupplierPrice:
    """`data`: any of supplier, day, price."""
    if "supplier" in data:
        _same_organization(supplier_price.organization_id, "supplier", data["supplier"])
    _assign(supplier_price, data, ("supplier", "day", "price"))
    clash = SupplierPrice.objects.filter(supplier=supplier_price.supplier, day=supplier_price.day).exclude(
        pk=supplier_price.pk
    )
    if clash.exists():
        raise ValidationError({"day": ["This supplier already has a price on that day."]})
    return _save(supplier_price)


def supplier_price_delete(*, supplier_price: SupplierPrice) -> None:
    _delete(supplier_price, used_by="")


def bom_line_update(*, bom_line: BomLine, data: dict[str, Any]) -> BomLine:
    """`data`: any of product, position (the step, from 1), material, quantity_per_unit."""
    for field in ("product", "material"):
        if field in data:
            _same_organization(bom_line.organization_id, field, data[field])
    if "position" in data:
        data = {**data, "position": data["position"] - 1}
    _assign(bom_line, data, ("product", "position", "material", "quantity_per_unit"))
    steps = bom_line.product.operations.count()
    if not 0 <= bom_line.position < steps:
        raise ValidationError(
            {"step": [f"Product {bom_line.product.code} has {steps} steps; there is no step {bom_line.position + 1}."]}
        )
    clash = BomLine.objects.filter(
        product=bom_line.product, position=bom_line.position, material=bom_line.material
    ).exclude(pk=bom_line.pk)
    if clash.exists():
        raise ValidationError({"material": ["This step already lists that material."]})
    return _save(bom_line)


def bom_line_delete(*, bom_line: BomLine) -> None:
    _delete(bom_line, used_by="")


def tariff_rate_update(*, tariff_rate: TariffRate, data: dict[str, Any]) -> TariffRate:
    """`data`: any of weekday, hour, price_per_kwh."""
    _assign(tariff_rate, data, ("weekday", "hour", "price_per_kwh"))
    clash = TariffRate.objects.filter(
        organization_id=tariff_rate.organization_id, weekday=tariff_rate.weekday, hour=tariff_rate.hour
    ).exclude(pk=tariff_rate.pk)
    if clash.exists():
        raise ValidationError({"hour": ["The tariff already has a price for that hour."]})
    return _save(tariff_rate)


def tariff_rate_delete(*, tariff_rate: TariffRate) -> None:
    _delete(tariff_rate, used_by="")
