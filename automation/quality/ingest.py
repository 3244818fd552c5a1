"""Ingestion, all or nothing: units with their lots, step records and inspection results, from the batch API
(JSON) or CSV (multipart upload or a text/csv body).

Every row is checked before anything is written; one bad row rejects the whole batch with every problem named
by its place (`steps.csv line 12`, `steps[3]`). Units and lots named for the first time are created with the
batch. Step records go in with COPY (millions of values per upload); units and inspections with bulk inserts.
"""

import csv
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from foundation.rejections import ProblemCollector, Rejected
from tenants.models import Organization

from . import alarms
from .conf import EARLIEST_TIMESTAMP_YEAR, MAX_ERRORS, MAX_FUTURE_SKEW_S, MAX_ROWS_PER_REQUEST
from .models import Characteristic, DefectCode, InspectionResult, Lot, Machine, ProcessVariable, Unit

EARLIEST = datetime(EARLIEST_TIMESTAMP_YEAR, 1, 1, tzinfo=UTC)

KINDS = {
    "units": ("unit", "lots", "status"),
    "steps": ("unit", "station", "machine", "ts", "variable", "value"),
    "inspections": ("unit", "characteristic", "ts", "value", "defect_code"),
}
REQUIRED = {
    "units": ("unit",),
    "steps": KINDS["steps"],
    "inspections": ("unit", "characteristic", "ts"),
}


class IngestRejected(Rejected):
    """A quality upload refused as a whole (see foundation.rejections)."""


def _problems() -> ProblemCollector:
    return ProblemCollector(IngestRejected, MAX_ERRORS)


@dataclass(frozen=True)
class IngestResult:
    kind: str
    received: int
    stored: int
    units_created: int
    lots_created: int
    alarms: int = 0  # SPC alarms raised by this batch

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "received": self.received,
            "stored": self.stored,
            "units_created": self.units_created,
            "lots_created": self.lots_created,
            "alarms": self.alarms,
        }


Row = tuple[str, dict[str, str]]  # (place, fields)


def rows_from_csv(*, kind: str, content: bytes, filename: str = "file") -> Iterator[Row]:
    """Rows of a CSV file with a header line; places are `<filename> line N` (the header is line 1)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestRejected({filename: [f"Not UTF-8 text (byte {exc.start})."]}) from exc
    reader = csv.reader(io.StringIO(text))
    header = [c.strip().lower() for c in next(reader, [])]
    allowed, required = KINDS[kind], REQUIRED[kind]
    unknown = [c for c in header if c not in allowed]
    missing = [c for c in required if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if len(set(header)) != len(header):
            problems.append("a column is named twice")
        raise IngestRejected(
            {f"{filename} line 1": [f"{'; '.join(problems)}. The header of {kind} is {','.join(allowed)}."]}
        )
    width = len(header)
    line = reader.line_num
    for record in reader:
        first, line = line + 1, reader.line_num
        where = f"{filename} line {first}"
        if len(record) != width:
            if not any(c.strip() for c in record):
                continue
            yield where, {"__problem__": f"{len(record)} fields, the header has {width}"}
            continue
        yield where, {k: v.strip() for k, v in zip(header, record, strict=True)}


def rows_from_json(*, kind: str, document) -> list[Row]:
    if not isinstance(document, dict) or not isinstance(document.get(kind), list):
        raise IngestRejected({"body": [f'Send {{"{kind}": [{{{", ".join(KINDS[kind])}}}, ...]}}.']})
    rows: list[Row] = []
    for i, item in enumerate(document[kind]):
        where = f"{kind}[{i}]"
        if not isinstance(item, dict):
            rows.append((where, {"__problem__": "expected an object"}))
            continue
        fields = {}
        for k, v in item.items():
            if k == "lots" and isinstance(v, list):
                v = ";".join(str(x) for x in v)
            fields[str(k)] = "" if v is None else str(v)
        unknown = sorted(set(fields) - set(KINDS[kind]))
        if unknown:
            rows.append((where, {"__problem__": f"unknown field(s) {', '.join(unknown)}"}))
            continue
        rows.append((where, fields))
    return rows


class _Timestamps:
    """Parses ISO 8601 with a time zone or Unix seconds; caches (step files repeat timestamps)."""

    def __init__(self) -> None:
        self.cache: dict[str, datetime | str] = {}
        self.latest = timezone.now() + timedelta(seconds=MAX_FUTURE_SKEW_S)

    def parse(self, text: str) -> datetime:
        hit = self.cache.get(text)
        if hit is None:
            hit = self._parse(text)
            if len(self.cache) < 2_000_000:
                self.cache[text] = hit
        if isinstance(hit, str):
            raise ValueError(hit)
        return hit

    def _parse(self, text: str) -> datetime | str:
        if not text:
            return "the timestamp is missing"
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return f"timestamp {text!r} is not ISO 8601 (e.g. 2024-05-01T12:00:00Z) or Unix seconds"
            if moment.tzinfo is None:
                return f"timestamp {text!r} has no time zone; add Z or an offset such as +02:00"
        else:
            if not math.isfinite(seconds):
                return f"timestamp {text!r} is not a finite number of seconds"
            try:
                moment = datetime.fromtimestamp(seconds, tz=UTC)
            except (OverflowError, OSError, ValueError):
                return f"timestamp {text!r} is out of range"
        if moment < EARLIEST:
            return f"timestamp {text!r} is before {EARLIEST.date().isoformat()}"
        if moment > self.latest:
            return f"timestamp {text!r} is in the future"
        return moment


def _number(text: str, what: str = "value") -> float:
    if text == "":
        raise ValueError(f"the {what} is missing")
    if text in ("True", "true", "TRUE"):
        return 1.0
    if text in ("False", "false", "FALSE"):
        return 0.0
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} {text!r} is not a finite number")
    return number


def _check_size(count: int) -> None:
    if count > MAX_ROWS_PER_REQUEST:
        raise IngestRejected({"body": [f"{count} rows; at most {MAX_ROWS_PER_REQUEST} per request, send several."]})


class _UnitsAndLots:
    """The organisation's units and lots by code, creating those named for the first time (inside the batch's
    transaction, so a rejected batch leaves none behind)."""

    def __init__(self, organization: Organization, serials: set[str], lots: set[str]):
        self.organization = organization
        self.units = dict(
            Unit.objects.filter(organization=organization, serial__in=serials).values_list("serial", "pk")
        )
        self.lots = dict(Lot.objects.filter(organization=organization, code__in=lots).values_list("code", "pk"))
        self.new_units = sorted(serials - set(self.units))
        self.new_lots = sorted(lots - set(self.lots))

    def create(self) -> None:
        now = timezone.now()
        created = Unit.objects.bulk_create(
            [Unit(organization=self.organization, serial=s, created_at=now) for s in self.new_units], batch_size=5000
        )
        self.units.update({u.serial: u.pk for u in created})
        lots = Lot.objects.bulk_create([Lot(organization=self.organization, code=c) for c in self.new_lots])
        self.lots.update({lot.code: lot.pk for lot in lots})


def _valid_code(text: str) -> bool:
    return bool(text) and len(text) <= 100 and (text[0].isalnum()) and all(c.isalnum() or c in "_.-/" for c in text)


def ingest(*, organization: Organization, kind: str, rows: Iterable[Row]) -> IngestResult:
    rows = list(rows)
    if not rows:
        raise IngestRejected({"body": ["No rows."]})
    _check_size(len(rows))
    return {"units": _ingest_units, "steps": _ingest_steps, "inspections": _ingest_inspections}[kind](
        organization, rows
    )


def _ingest_units(organization: Organization, rows: list[Row]) -> IngestResult:
    errors = _problems()
    statuses = set(Unit.Status.values)
    parsed: list[tuple[str, list[str], str]] = []
    seen: dict[str, str] = {}
    for where, f in rows:
        if "__problem__" in f:
            errors.add(where, f["__problem__"])
            continue
        serial, status = f.get("unit", ""), f.get("status", "")
        lots = [x.strip() for x in f.get("lots", "").split(";") if x.strip()]
        if not _valid_code(serial):
            errors.add(where, f"unit {serial!r} is not a valid serial" if serial else "the unit is missing")
            continue
        bad = [x for x in lots if not _valid_code(x)]
        if bad:
            errors.add(where, f"lot {bad[0]!r} is not a valid lot code")
            continue
        if status and status not in statuses:
            errors.add(where, f"status {status!r} is not one of {', '.join(sorted(statuses))}")
            continue
        if serial in seen:
            errors.add(where, f"unit {serial} is also on {seen[serial]}")
            continue
        seen[serial] = where
        parsed.append((serial, lots, status))
    errors.raise_if_any()
    with transaction.atomic():
        known = _UnitsAndLots(organization, {p[0] for p in parsed}, {x for p in parsed for x in p[1]})
        known.create()
        through = Unit.lots.through
        links = [
            through(unit_id=known.units[serial], lot_id=known.lots[lot]) for serial, lots, _ in parsed for lot in lots
        ]
        through.objects.bulk_create(links, ignore_conflicts=True, batch_size=5000)
        for status in statuses:
            serials = [s for s, _, st in parsed if st == status]
            if serials:
                Unit.objects.filter(organization=organization, serial__in=serials).update(status=status)
    return IngestResult("units", len(parsed), len(parsed), len(known.new_units), len(known.new_lots))


def _ingest_steps(organization: Organization, rows: list[Row]) -> IngestResult:
    machines = {m.code: m for m in Machine.objects.filter(organization=organization).select_related("station")}
    variables = {v.name: v for v in ProcessVariable.objects.filter(organization=organization)}
    errors, stamps = _problems(), _Timestamps()
    parsed: list[tuple[str, int, int, datetime, float, str]] = []
    serials: set[str] = set()
    for where, f in rows:
        if "__problem__" in f:
            errors.add(where, f["__problem__"])
            continue
        serial, station, machine_code, variable_name = (
            f.get("unit", ""),
            f.get("station", ""),
            f.get("machine", ""),
            f.get("variable", ""),
        )
        machine = machines.get(machine_code)
        if machine is None:
            errors.add(
                where, f"no machine with the code {machine_code!r}" if machine_code else "the machine is missing"
            )
            continue
        if station and machine.station.code != station:
            errors.add(where, f"machine {machine_code} is at station {machine.station.code}, not {station}")
            continue
        variable = variables.get(variable_name)
        if variable is None:
            errors.add(where, f"no process variable {variable_name!r}" if variable_name else "the variable is missing")
            continue
        if variable.station_id != machine.station_id:
            errors.add(
                where, f"{variable_name} is recorded at station {variable.station.code}, not {machine.station.code}"
            )
            continue
        if not _valid_code(serial):
            errors.add(where, f"unit {serial!r} is not a valid serial" if serial else "the unit is missing")
            continue
        try:
            ts = stamps.parse(f.get("ts", ""))
            value = _number(f.get("value", ""))
        except ValueError as exc:
            errors.add(where, str(exc))
            continue
        serials.add(serial)
        parsed.append((serial, machine.pk, variable.pk, ts, value, where))
    errors.raise_if_any()
    received = len(parsed)
    parsed = _without_repeats(parsed, errors)
    with transaction.atomic():
        # One step upload of an organisation at a time: the check against stored rows below stays true until commit.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [STEP_LOCK, organization.pk.int % 2**31])
        known = _UnitsAndLots(organization, serials, set())
        parsed = _without_stored(organization, parsed, known, errors)
        known.create()
        org_id = organization.pk
        unit_ids = known.units
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM quality_steprecord")
            before_id = cursor.fetchone()[0]
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                "COPY quality_steprecord (organization_id, unit_id, machine_id, variable_id, ts, value) FROM STDIN"
            ) as copy,
        ):
            for serial, machine_id, variable_id, ts, value, _ in parsed:
                copy.write_row((org_id, unit_ids[serial], machine_id, variable_id, ts, value))
        if len(parsed) >= 100_000:
            # A large load changes the table's statistics; the next analysis should not plan on stale ones.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE quality_steprecord")
        raised = alarms.alarms_evaluate(
            organization=organization,
            new=alarms.step_points_since(organization, before_id),
        )
    return IngestResult("steps", received, len(parsed), len(known.new_units), 0, len(raised))


STEP_LOCK = 0x5157  # pg_advisory_xact_lock class for quality step uploads


def _without_repeats(parsed: list, errors: ProblemCollector) -> list:
    """The batch's rows with a key (unit, machine, variable, ts) given once; a key repeated with the same value is
    one row, with another value the batch is refused, naming both places."""
    parsed.sort(key=lambda p: (p[0], p[1], p[2], p[3]))
    kept = []
    previous = None
    for row in parsed:
        if previous is not None and row[:4] == previous[:4]:
            if row[4] != previous[4]:
                errors.add(
                    row[5],
                    f"unit {row[0]} already has the value {previous[4]!r} for this variable, machine and time on "
                    f"{previous[5]}, not {row[4]!r}",
                )
            continue
        kept.append(row)
        previous = row
    errors.raise_if_any()
    return kept


def _without_stored(organization: Organization, parsed: list, known: "_UnitsAndLots", errors: ProblemCollector) -> list:
    """Rows already stored with the same value are left out (a re-upload is idempotent); a stored row with another
    value refuses the batch (a recorded measurement is not overwritten)."""
    existing_ids = {known.units[s] for s in {p[0] for p in parsed} if s in known.units}
    if not existing_ids:
        return parsed
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT unit_id, machine_id, variable_id, ts, value FROM quality_steprecord "
            "WHERE organization_id = %s AND unit_id = ANY(%s)",
            [organization.pk, list(existing_ids)],
        )
        stored = {(u, m, v, ts): value for u, m, v, ts, value in cursor.fetchall()}
    if not stored:
        return parsed
    kept = []
    for row in parsed:
        unit_id = known.units.get(row[0])
        value = stored.get((unit_id, row[1], row[2], row[3])) if unit_id is not None else None
        if value is None:
            kept.append(row)
        elif value != row[4]:
            errors.add(
                row[5],
                f"unit {row[0]} already has the value {value!r} stored for this variable, machine and time, not "
                f"{row[4]!r}; a recorded value is not overwritten",
            )
    errors.raise_if_any()
    return kept


def _ingest_inspections(organization: Organization, rows: list[Row]) -> IngestResult:
    characteristics = {c.code: c for c in Characteristic.objects.filter(organization=organization)}
    defects = {d.code: d for d in DefectCode.objects.filter(organization=organization)}
    errors, stamps = _problems(), _Timestamps()
    parsed = []
    for where, f in rows:
        if "__problem__" in f:
            errors.add(where, f["__problem__"])
            continue
        serial, code, defect_code = f.get("unit", ""), f.get("characteristic", ""), f.get("defect_code", "")
        characteristic = characteristics.get(code)
        if characteristic is None:
            errors.add(where, f"no characteristic {code!r}" if code else "the characteristic is missing")
            continue
        defect = None
        if defect_code:
            defect = defects.get(defect_code)
            if defect is None:
                errors.add(where, f"no defect code {defect_code!r}")
                continue
            if defect.characteristic_id != characteristic.pk:
                errors.add(where, f"defect code {defect_code} belongs to another characteristic than {code}")
                continue
        if not _valid_code(serial):
            errors.add(where, f"unit {serial!r} is not a valid serial" if serial else "the unit is missing")
            continue
        try:
            ts = stamps.parse(f.get("ts", ""))
            value = _number(f["value"]) if f.get("value", "") != "" else None
        except ValueError as exc:
            errors.add(where, str(exc))
            continue
        parsed.append((serial, characteristic.pk, ts, value, defect.pk if defect else None))
    errors.raise_if_any()
    with transaction.atomic():
        known = _UnitsAndLots(organization, {p[0] for p in parsed}, set())
        known.create()
        InspectionResult.objects.bulk_create(
            [
                InspectionResult(
                    organization=organization,
                    unit_id=known.units[s],
                    characteristic_id=c,
                    ts=ts,
                    value=v,
                    defect_code_id=d,
                )
                for s, c, ts, v, d in parsed
            ],
            batch_size=5000,
        )
        raised = alarms.alarms_evaluate(
            organization=organization,
            new=alarms.inspection_points((known.units[s], c, ts, v) for s, c, ts, v, _ in parsed),
        )
        finished = {p[0] for p in parsed}
        Unit.objects.filter(organization=organization, serial__in=finished, status=Unit.Status.IN_PROCESS).update(
            status=Unit.Status.FINISHED
        )
    return IngestResult("inspections", len(parsed), len(parsed), len(known.new_units), 0, len(raised))
