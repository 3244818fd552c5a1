"""Bulk import of master data from CSV files or one JSON document, all or nothing.

Every row goes through the same serializer and service as the single-object API, inside one transaction;
each row has a savepoint of its own so that every bad row is reported (by file and line, or by list index),
and if any row is bad the whole import is rolled back. Rows that name an existing code update that object.

Entities are applied in dependency order, so an order may name a product created earlier in the same
import. CSV files are flat; the lines of `shifts` and `operations` files make up a machine's shifts and a
product's routing (replacing what was there). For the cost objective: `suppliers` (price breaks in a cell as
"100:0.95;500:0.9"), `supplier_prices` (a supplier's price from a day on), `bom` (a product step's material per
unit) and `tariff` (price per kWh by weekday 0-6 and UTC hour); a line naming a price, line or hour that exists
replaces it.
"""

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from rest_framework.settings import api_settings

from tenants.models import Organization

from . import serializers, services
from .conf import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS
from .models import Machine, Material, Order, Product, SetupTime, Supplier

# entity -> (required columns, optional columns) of its CSV file; the JSON document uses the same names.
CSV_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "machines": (("code",), ("name", "timezone", "running_kw", "idle_kw")),
    "shifts": (("machine", "days", "start", "end"), ("overtime_cost_per_hour",)),
    "materials": (("code",), ("name", "arrives_at", "stock", "holding_cost_per_day", "storage_limit")),
    "suppliers": (("code", "material"), ("name", "lead_days", "moq", "price_breaks")),
    "supplier_prices": (("supplier", "day", "price"), ()),
    "products": (("code",), ("name", "family")),
    "operations": (("product", "step", "machine", "minutes_per_unit"), ("name", "materials")),
    "bom": (("product", "step", "material", "quantity_per_unit"), ()),
    "setup_times": (("machine", "minutes"), ("from_family", "to_family")),
    "downtimes": (("machine", "starts_at", "ends_at"), ("kind", "reason")),
    "orders": (
        ("code", "product", "quantity"),
        ("release_at", "due_at", "weight", "late_penalty_per_day", "optional", "margin"),
    ),
    "tariff": (("weekday", "hour", "price_per_kwh"), ()),
}
ENTITIES = tuple(CSV_COLUMNS)  # also the order in which they are applied
LIST_COLUMNS = {("operations", "materials")}  # ';'-separated codes in a CSV cell
MAX_ERRORS = 200


@dataclass(frozen=True)
class Row:
    entity: str
    where: str  # "orders line 4" (CSV) or "orders[3]" (JSON)
    data: dict[str, Any]


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class ImportRejected(Exception):
    """Nothing was imported. `errors` maps each place ("orders line 4") to its field errors."""

    def __init__(self, errors: dict[str, dict[str, list[str]]]):
        self.errors = errors
        where, fields = next(iter(errors.items()))
        name, messages = next(iter(fields.items()))
        first = f"{where}: {'' if name == 'non_field_errors' else name + ': '}{messages[0]}"
        count = sum(len(m) for f in errors.values() for m in f.values())
        more = f" ({count} errors in all)" if count > 1 else ""
        super().__init__(f"{first}{more}. Nothing was imported.")


# --- parsing --------------------------------------------------------------------------------------------------------


def rows_from_csv(entity: str, content: bytes) -> list[Row]:
    """Rows of one CSV file with a header line; line numbers are the file's, header = line 1."""
    if entity not in CSV_COLUMNS:
        raise ImportRejected(
            {
                entity: {
                    "non_field_errors": [
                        f"Unknown file {entity!r}; name each file after what it holds: {', '.join(ENTITIES)}."
                    ]
                }
            }
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected({entity: {"non_field_errors": [f"Not UTF-8 text (byte {exc.start})."]}}) from exc
    reader = csv.reader(io.StringIO(text))
    header = [column.strip().lower() for column in next(reader, [])]
    required, optional = CSV_COLUMNS[entity]
    problems = [f"missing column {c!r}" for c in required if c not in header]
    problems += [f"unknown column {c!r}" for c in header if c not in required + optional]
    if problems:
        raise ImportRejected(
            {
                f"{entity} line 1": {
                    "non_field_errors": [
                        "; ".join(problems)
                        + f". Columns: {', '.join(required)} (required), {', '.join(optional) or 'none'}."
                    ]
                }
            }
        )
    rows, line, errors = [], reader.line_num, {}
    for record in reader:
        first_line, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        where = f"{entity} line {first_line}"
        if len(record) != len(header):
            errors[where] = {"non_field_errors": [f"{len(record)} fields, the header has {len(header)}."]}
            continue
        data: dict[str, str | list[str]] = {}
        for column, cell in zip(header, record, strict=True):
            cell = cell.strip()
            if (entity, column) in LIST_COLUMNS:
                data[column] = [code.strip() for code in cell.split(";") if code.strip()]
            else:
                data[column] = cell
        rows.append(Row(entity, where, data))
    if errors:
        raise ImportRejected(errors)
    return rows


def rows_from_csv_files(files: Iterable[tuple[str, UploadedFile]]) -> list[Row]:
    """Rows of several uploaded CSV files, each `(entity, file)`; every file's errors are collected before
    refusing, so one answer lists them all."""
    rows: list[Row] = []
    errors: dict = {}
    for entity, upload in files:
        if cast(int, upload.size) > MAX_IMPORT_BYTES:  # a request's uploads know their size
            errors[entity] = {"non_field_errors": [f"Larger than {MAX_IMPORT_BYTES // 2**20} MiB."]}
            continue
        try:
            rows += rows_from_csv(entity, upload.read())
        except ImportRejected as rejected:
            errors.update(rejected.errors)
    if errors:
        raise ImportRejected(errors)
    return rows


def rows_from_json(document) -> list[Row]:
    if not isinstance(document, dict) or not document:
        raise ImportRejected(
            {"body": {"non_field_errors": [f"Send an object with lists of any of: {', '.join(ENTITIES)}."]}}
        )
    unknown = sorted(set(document) - set(ENTITIES))
    if unknown:
        raise ImportRejected(
            {
                "body": {
                    "non_field_errors": [
                        f"Unknown key(s) {', '.join(unknown)}; expected any of: {', '.join(ENTITIES)}."
                    ]
                }
            }
        )
    rows, errors = [], {}
    for entity in ENTITIES:
        items = document.get(entity, [])
        if not isinstance(items, list):
            errors[entity] = {"non_field_errors": ["Expected a list of objects."]}
            continue
        for i, item in enumerate(items):
            if isinstance(item, dict):
                rows.append(Row(entity, f"{entity}[{i}]", item))
            else:
                errors[f"{entity}[{i}]"] = {"non_field_errors": ["Expected an object."]}
    if errors:
        raise ImportRejected(errors)
    return rows


# --- applying -------------------------------------------------------------------------------------------------------


class _Importer:
    def __init__(self, organization: Organization):
        self.organization = organization
        self.context = {"organization": organization}
        self.result = ImportResult()
        self.errors: dict[str, dict[str, list[str]]] = {}

    def fail(self, where: str, errors: dict[str, list[str]]) -> None:
        self.errors.setdefault(where, {}).update(errors)

    def validated(self, serializer_class, row: Row, instance=None) -> dict | None:
        data = _blanks_filled(serializer_class, row.data)
        serializer = serializer_class(instance, data=data, partial=instance is not None, context=self.context)
        if serializer.is_valid():
            return serializer.validated_data
        self.fail(row.where, _flatten(serializer.errors))
        return None

    def write(self, where: str, write: Callable[..., object]) -> bool:  # called without arguments
        try:
            with transaction.atomic():  # a savepoint: one bad row does not poison the transaction
                write()
        except DjangoValidationError as exc:
            self.fail(where, _django_errors(exc))
            return False
        return True

    def coded(self, rows: list[Row], model, serializer_class, create, update, entity: str) -> None:
        """Create or update by code: machines, materials, products, orders."""
        seen: dict[str, str] = {}
        for row in rows:
            code = str(row.data.get("code", "")).strip()
            if code in seen:
                self.fail(row.where, {"code": [f"Also on {seen[code]}: each code once per import."]})
                continue
            seen[code] = row.where
            instance = model.objects.filter(organization=self.organization, code=code).first() if code else None
            data = self.validated(serializer_class, row, instance)
            if data is None:
                continue
            if instance is None:
                if self.write(row.where, lambda d=data: create(organization=self.organization, **d)):
                    self.result.created[entity] += 1
            elif self.write(row.where, lambda d=data, i=instance: update(i, d)):
                self.result.updated[entity] += 1

    def shifts(self, rows: list[Row]) -> None:
        by_machine: dict[Machine, list[dict]] = {}
        first_line: dict[Machine, str] = {}
        for row in rows:
            data = self.validated(serializers.ShiftRowSerializer, row)
            if data is not None:
                machine = data.pop("machine")
                by_machine.setdefault(machine, []).append(data)
                first_line.setdefault(machine, row.where)
        for machine, shifts in by_machine.items():
            if self.write(
                first_line[machine], lambda m=machine, s=shifts: services.machine_update(machine=m, data={"shifts": s})
            ):
                self.result.created["shifts"] += len(shifts)

    def operations(self, rows: list[Row]) -> None:
        steps: dict[Product, dict[int, dict]] = {}
        first_line: dict[Product, str] = {}
        for row in rows:
            data = self.validated(serializers.OperationRowSerializer, row)
            if data is None:
                continue
            product = data["product"]
            first_line.setdefault(product, row.where)
            step = steps.setdefault(product, {}).setdefault(
                data["step"], {"name": "", "options": [], "materials": {}, "machines": {}}
            )
            if data["machine"].pk in step["machines"]:
                self.fail(row.where, {"machine": [f"Also on {step['machines'][data['machine'].pk]} for this step."]})
                continue
            step["machines"][data["machine"].pk] = row.where
            step["name"] = step["name"] or data.get("name", "")
            step["options"].append({"machine": data["machine"], "minutes_per_unit": data["minutes_per_unit"]})
            step["materials"].update({m.pk: m for m in data.get("materials", [])})
        for product, numbered in steps.items():
            routing = [
                {"name": s["name"], "options": s["options"], "materials": list(s["materials"].values())}
                for _, s in sorted(numbered.items())
            ]
            if self.write(
                first_line[product],
                lambda p=product, r=routing: services.product_update(product=p, data={"operations": r}),
            ):
                self.result.created["operations"] += sum(len(s["options"]) for s in routing)

    def setup_times(self, rows: list[Row]) -> None:
        for row in rows:
            data = self.validated(serializers.SetupTimeSerializer, row)
            if data is None:
                continue
            existing = SetupTime.objects.filter(
                machine=data["machine"], from_family=data.get("from_family", ""), to_family=data.get("to_family", "")
            ).first()
            if existing is None:
                if self.write(
                    row.where, lambda d=data: services.setup_time_create(organization=self.organization, **d)
                ):
                    self.result.created["setup_times"] += 1
            elif self.write(row.where, lambda d=data, s=existing: services.setup_time_update(setup_time=s, data=d)):
                self.result.updated["setup_times"] += 1

    def each(self, rows: list[Row], serializer_class, write: Callable[..., object], entity: str) -> None:
        """Rows that each set one thing (a price on a day, a bill-of-materials line, a tariff hour)."""
        for row in rows:
            data = self.validated(serializer_class, row)
            if data is not None and self.write(row.where, lambda d=data: write(organization=self.organization, **d)):
                self.result.created[entity] += 1

    def downtimes(self, rows: list[Row]) -> None:
        for row in rows:
            data = self.validated(serializers.DowntimeSerializer, row)
            if data is not None and self.write(
                row.where, lambda d=data: services.downtime_create(organization=self.organization, **d)
            ):
                self.result.created["downtimes"] += 1


def scheduling_import(*, organization: Organization, rows: Iterable[Row]) -> ImportResult:
    """Apply every row or none; raises ImportRejected with every bad row's errors."""
    rows = list(rows)
    if not rows:
        raise ImportRejected({"body": {"non_field_errors": ["Nothing to import."]}})
    if len(rows) > MAX_IMPORT_ROWS:
        raise ImportRejected(
            {
                "body": {
                    "non_field_errors": [f"{len(rows)} rows; at most {MAX_IMPORT_ROWS} per import, split the files."]
                }
            }
        )
    by_entity: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_entity[row.entity].append(row)
    importer = _Importer(organization)
    handlers = {
        "machines": lambda r: importer.coded(
            r,
            Machine,
            serializers.MachineSerializer,
            services.machine_create,
            lambda i, d: services.machine_update(machine=i, data=d),
            "machines",
        ),
        "shifts": importer.shifts,
        "materials": lambda r: importer.coded(
            r,
            Material,
            serializers.MaterialSerializer,
            services.material_create,
            lambda i, d: services.material_update(material=i, data=d),
            "materials",
        ),
        "suppliers": lambda r: importer.coded(
            r,
            Supplier,
            serializers.SupplierSerializer,
            services.supplier_create,
            lambda i, d: services.supplier_update(supplier=i, data=d),
            "suppliers",
        ),
        "supplier_prices": lambda r: importer.each(
            r, serializers.SupplierPriceSerializer, services.supplier_price_set, "supplier_prices"
        ),
        "bom": lambda r: importer.each(r, serializers.BomLineSerializer, services.bom_line_set, "bom"),
        "tariff": lambda r: importer.each(r, serializers.TariffRateSerializer, services.tariff_rate_set, "tariff"),
        "products": lambda r: importer.coded(
            r,
            Product,
            serializers.ProductSerializer,
            services.product_create,
            lambda i, d: services.product_update(product=i, data=d),
            "products",
        ),
        "operations": importer.operations,
        "setup_times": importer.setup_times,
        "downtimes": importer.downtimes,
        "orders": lambda r: importer.coded(
            r,
            Order,
            serializers.OrderSerializer,
            services.order_create,
            lambda i, d: services.order_update(order=i, data=d),
            "orders",
        ),
    }
    with transaction.atomic():
        for entity in ENTITIES:
            if by_entity.get(entity):
                handlers[entity](by_entity[entity])
            if len(importer.errors) >= MAX_ERRORS:
                break
        if importer.errors:
            raise ImportRejected(importer.errors)  # leaving the block rolls every row back
    return importer.result


# --- error shapes ---------------------------------------------------------------------------------------------------


@cache
def _blank_values(serializer_class) -> dict[str, object]:
    """What an empty cell means per field: None where null is allowed, "" for text; absent: the default."""
    blanks: dict[str, object] = {}
    for name, f in serializer_class().fields.items():
        if getattr(f, "allow_null", False):
            blanks[name] = None
        elif getattr(f, "allow_blank", False):
            blanks[name] = ""
    return blanks


def _blanks_filled(serializer_class, data: dict) -> dict:
    blanks = _blank_values(serializer_class)
    return {
        name: (blanks[name] if value == "" and name in blanks else value)
        for name, value in data.items()
        if value != "" or name in blanks
    }


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {"operations[0].machines[1].machine": [...]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key in (NON_FIELD_ERRORS, api_settings.NON_FIELD_ERRORS_KEY) else key
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(detail, list) and detail and all(isinstance(item, str) for item in detail):
        flat[prefix or "non_field_errors"] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for i, item in enumerate(detail):
            if item:
                flat.update(_flatten(item, f"{prefix}[{i}]"))
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def _django_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if key == NON_FIELD_ERRORS else key): [m for e in errors for m in e.messages]
            for key, errors in exc.error_dict.items()
        }
    return {"non_field_errors": exc.messages}
