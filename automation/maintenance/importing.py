"""Import of historical run-to-failure data: assets, their telemetry and their failures, all or nothing.

Two formats, one asset type per import:

* `cmapss`: NASA C-MAPSS text (whitespace separated, no header): unit, cycle, then one column per channel. The
  columns map, in order, to `columns` (default: setting_1..3, sensor_1..21, C-MAPSS's own names), each of
  which must be a channel of the asset type.
* `csv`: a header `asset,cycle,<channel>,<channel>...`, one line per asset and cycle.

Each unit (asset) ran until it failed at its last cycle: the import creates the asset (code `asset_prefix` +
unit number for C-MAPSS, or the `asset` column), one reading per channel and cycle, stamped
`start + (cycle - 1) * cycle_seconds` (by default so that the latest run ends before now), and a failure at the
last cycle. Assets that exist already must be of the asset type; a failure already recorded at the same moment
is not recorded twice, and readings already stored are not duplicated, so an import repeated with the same
`start` changes nothing.
"""

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from tenants.models import Organization

from .conf import MAX_ERRORS
from .engine import CmapssFormatError, parse_cmapss
from .engine.cmapss import SENSOR_COLUMNS, SETTING_COLUMNS
from .models import Asset, AssetEvent, AssetType
from .selectors import EPOCH
from .telemetry import TelemetryRejected, telemetry_store

CMAPSS_COLUMNS = SETTING_COLUMNS + SENSOR_COLUMNS
FORMATS = ("cmapss", "csv")


@dataclass(frozen=True)
class ImportResult:
    assets_created: int
    assets_existing: int
    readings: int
    readings_stored: int
    failures_recorded: int
    starts_at: datetime
    ends_at: datetime

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


@dataclass
class _Unit:
    code: str
    cycles: np.ndarray  # int, strictly increasing
    values: pd.DataFrame  # one column per channel
    lines: list[int]  # the file's line of each row


def _units_from_cmapss(text: str, *, columns: list[str], prefix: str) -> list[_Unit]:
    try:
        engines = parse_cmapss(text=text)
    except CmapssFormatError as exc:
        raise TelemetryRejected({f"line {exc.line_number}": [str(exc).split(": ", 1)[-1]]}) from exc
    lines: dict[int, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if tokens:
            lines.setdefault(int(float(tokens[0])), []).append(number)
    units = []
    for unit, frame in engines:
        values = frame.copy()
        values.columns = columns
        units.append(_Unit(f"{prefix}{unit:03d}", frame.index.to_numpy(), values, lines[unit]))
    return units


def _units_from_csv(text: str) -> list[_Unit]:
    reader = csv.reader(io.StringIO(text))
    header = [column.strip() for column in next(reader, [])]
    if [c.lower() for c in header[:2]] != ["asset", "cycle"] or len(header) < 3:
        raise TelemetryRejected({"line 1": ["The header must be asset,cycle followed by channel names."]})
    channels = header[2:]
    rows: dict[str, list] = {}
    problems: dict[str, list[str]] = {}
    line = reader.line_num
    for record in reader:
        first_line, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        where = f"line {first_line}"
        if len(record) != len(header):
            problems.setdefault(where, []).append(f"{len(record)} fields, the header has {len(header)}.")
            continue
        cells = [cell.strip() for cell in record]
        try:
            cycle = float(cells[1])
            if not math.isfinite(cycle) or cycle != int(cycle) or cycle < 1:
                raise ValueError
        except ValueError:
            problems.setdefault(where, []).append(f"cycle {cells[1]!r} is not a positive whole number")
            continue
        values = []
        for column, cell in zip(channels, cells[2:], strict=True):
            try:
                value = float(cell) if cell else math.nan
                if math.isinf(value):
                    raise ValueError
            except ValueError:
                problems.setdefault(where, []).append(f"{column}: {cell!r} is not a finite number")
                value = math.nan
            values.append(value)
        rows.setdefault(cells[0], []).append((first_line, int(cycle), values))
        if len(problems) >= MAX_ERRORS:
            break
    if problems:
        raise TelemetryRejected(problems)
    units = []
    for code, records in rows.items():
        cycles = np.array([r[1] for r in records])
        if np.any(np.diff(cycles) <= 0):
            bad = next(i for i in range(1, len(cycles)) if cycles[i] <= cycles[i - 1])
            raise TelemetryRejected(
                {
                    f"line {records[bad][0]}": [
                        f"asset {code} cycle {cycles[bad]} does not follow cycle {cycles[bad - 1]}"
                    ]
                }
            )
        values = pd.DataFrame([r[2] for r in records], columns=channels)
        units.append(_Unit(code, cycles, values, [r[0] for r in records]))
    return units


def _default_start(units: list[_Unit], cycle: timedelta) -> datetime:
    longest = max(int(u.cycles[-1]) for u in units)
    moment = timezone.now() - cycle * (longest + 1)
    seconds = cycle.total_seconds()
    return EPOCH + timedelta(seconds=math.floor((moment - EPOCH).total_seconds() / seconds) * seconds)


def run_to_failure_import(
    *,
    organization: Organization,
    asset_type: AssetType,
    content: bytes,
    file_format: str,
    columns: list[str] | None = None,
    asset_prefix: str = "unit-",
    start: datetime | None = None,
    site: str = "",
) -> ImportResult:
    """Validate the whole file, then create assets, telemetry and failures in one transaction, or nothing."""
    if file_format not in FORMATS:
        raise TelemetryRejected({"format": [f"Use one of: {', '.join(FORMATS)}."]})
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TelemetryRejected({"file": [f"Not UTF-8 text (byte {exc.start})."]}) from exc
    if file_format == "cmapss":
        columns = list(columns or CMAPSS_COLUMNS)
        if len(columns) != len(CMAPSS_COLUMNS):
            raise TelemetryRejected(
                {
                    "columns": [
                        f"C-MAPSS files have {len(CMAPSS_COLUMNS)} value columns; name "
                        f"{len(CMAPSS_COLUMNS)} channels, not {len(columns)}."
                    ]
                }
            )
        units = _units_from_cmapss(text, columns=columns, prefix=asset_prefix)
    else:
        units = _units_from_csv(text)
    if not units:
        raise TelemetryRejected({"file": ["No data."]})
    channels = {c.name: c for c in asset_type.channels.all()}
    names = list(units[0].values.columns)
    unknown = [name for name in names if name not in channels]
    if unknown:
        raise TelemetryRejected(
            {
                "columns": [f"{asset_type.code} has no channel {name!r}" for name in unknown]
                + [f"its channels: {', '.join(channels) or 'none'}"]
            }
        )

    problems: dict[str, list[str]] = {}
    count = 0
    for unit in units:
        for name in names:
            channel, values = channels[name], unit.values[name].to_numpy()
            low = values < channel.min_value if channel.min_value is not None else np.zeros(len(values), bool)
            high = values > channel.max_value if channel.max_value is not None else np.zeros(len(values), bool)
            for i in np.flatnonzero(low | high):
                count += 1
                if len(problems) < MAX_ERRORS:
                    side, bound = ("below", channel.min_value) if low[i] else ("above", channel.max_value)
                    problems.setdefault(f"line {unit.lines[i]}", []).append(
                        f"{name} value {values[i]:g} is {side} the expected {'minimum' if low[i] else 'maximum'} "
                        f"{bound:g}{' ' + channel.unit if channel.unit else ''}"
                    )
    if problems:
        raise TelemetryRejected(problems, count)

    cycle = timedelta(seconds=asset_type.cycle_seconds)
    start = start or _default_start(units, cycle)
    if start.tzinfo is None:
        raise TelemetryRejected({"start": ["Give the start with a time zone."]})
    last = start + cycle * (max(int(u.cycles[-1]) for u in units) - 1)
    if last > timezone.now():
        raise TelemetryRejected(
            {"start": [f"The data would run until {last.isoformat()}, in the future; start earlier."]}
        )
    existing = {a.code: a for a in Asset.objects.filter(organization=organization, code__in=[u.code for u in units])}
    wrong_type = sorted(code for code, a in existing.items() if a.asset_type_id != asset_type.pk)
    if wrong_type:
        raise TelemetryRejected({"assets": [f"Asset {code} exists with another asset type." for code in wrong_type]})

    created = failures = readings = stored = 0
    with transaction.atomic():
        rows = []
        for unit in units:
            asset = existing.get(unit.code)
            if asset is None:
                asset = Asset(organization=organization, code=unit.code, asset_type=asset_type, site=site)
                asset.full_clean()
                asset.save()
                created += 1
            stamps = [start + cycle * (int(c) - 1) for c in unit.cycles]
            for name in names:
                channel_id = channels[name].pk
                for ts, value in zip(stamps, unit.values[name].to_numpy().tolist(), strict=True):
                    if not math.isnan(value):
                        rows.append((organization.pk, asset.pk, channel_id, ts, value))
            failed_at = stamps[-1]
            if not AssetEvent.objects.filter(asset=asset, kind=AssetEvent.Kind.FAILURE, occurred_at=failed_at).exists():
                AssetEvent.objects.create(
                    organization=organization,
                    asset=asset,
                    kind=AssetEvent.Kind.FAILURE,
                    occurred_at=failed_at,
                    description="Imported run-to-failure history",
                )
                failures += 1
            if len(rows) >= 200_000:
                readings, stored = readings + len(rows), stored + telemetry_store(rows=rows)
                rows = []
        readings, stored = readings + len(rows), stored + telemetry_store(rows=rows)
    return ImportResult(
        assets_created=created,
        assets_existing=len(existing),
        readings=readings,
        readings_stored=stored,
        failures_recorded=failures,
        starts_at=start.astimezone(UTC),
        ends_at=last.astimezone(UTC),
    )
