"""Telemetry ingestion, all or nothing: the batch API (JSON or CSV), the MQTT subscriber and imports all end here.

Every reading is checked (known asset, a channel of that asset's type, a finite value inside the channel's
expected range, a timestamp with a time zone that is neither absurdly old nor in the future, no reading twice in
one batch) before anything is written; one bad reading rejects the batch with every problem named by line (CSV)
or index (JSON). Good batches are written in one transaction by COPY into a session-local staging table and one
INSERT ... ON CONFLICT DO NOTHING: a reading already stored (a device re-sending after a lost acknowledgement)
is counted as a duplicate, not stored twice and not an error.
"""

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from foundation.rejections import ProblemCollector, Rejected
from tenants.models import Organization

from .conf import EARLIEST_TIMESTAMP_YEAR, MAX_ERRORS, MAX_FUTURE_SKEW_S, MAX_READINGS_PER_REQUEST
from .models import Asset, Channel

LONG_COLUMNS = ("asset", "channel", "ts", "value")
EARLIEST = datetime(EARLIEST_TIMESTAMP_YEAR, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Reading:
    where: str  # "line 4, column vibration" or "readings[3]"
    asset: object
    channel: object
    ts: object
    value: object
    problem: str = ""  # found while parsing (a short CSV line); reported with the rest


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int
    duplicates: int
    assets: int

    def as_dict(self) -> dict:
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates, "assets": self.assets}


class TelemetryRejected(Rejected):
    """Telemetry refused as a whole (see foundation.rejections)."""


def _problems() -> ProblemCollector:
    return ProblemCollector(TelemetryRejected, MAX_ERRORS)


# --- parsing --------------------------------------------------------------------------------------------------------


def readings_from_json(document, *, asset_code: str | None = None) -> list[Reading]:
    """`{"readings": [...]}` where each item is `{asset, channel, ts, value}` or `{asset, ts, values: {channel:
    value}}`. With `asset_code` (an MQTT topic names the asset) items may leave `asset` out."""
    if not isinstance(document, dict) or not isinstance(document.get("readings"), list):
        raise TelemetryRejected(
            {
                "body": [
                    'Send {"readings": [{"asset", "channel", "ts", "value"}, ...]} (or '
                    'items with "values": {channel: value} instead of channel and value).'
                ]
            }
        )
    readings = []
    for i, item in enumerate(document["readings"]):
        where = f"readings[{i}]"
        if not isinstance(item, dict):
            readings.append(_problem(where, "expected an object"))
            continue
        asset = item.get("asset", asset_code)
        if asset_code is not None and asset != asset_code:
            readings.append(_problem(where, f"names asset {asset!r}, but this topic is for asset {asset_code!r}"))
            continue
        if "values" in item:
            values = item["values"]
            if not isinstance(values, dict) or not values or "channel" in item or "value" in item:
                readings.append(_problem(where, 'give either "values": {channel: value, ...} or "channel" and "value"'))
                continue
            readings += [
                Reading(f"{where}.values.{name}", asset, name, item.get("ts"), value) for name, value in values.items()
            ]
        else:
            readings.append(Reading(where, asset, item.get("channel"), item.get("ts"), item.get("value")))
    return readings


def _problem(where: str, message: str) -> Reading:
    return Reading(where, None, None, None, None, problem=message)


def readings_from_csv(content: bytes) -> list[Reading]:
    """Long (`asset,channel,ts,value`) or wide (`asset,ts,<channel>,<channel>...`) CSV with a header line; line
    numbers are the file's (header = line 1). An empty cell in a wide file is a missing reading, not an error."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TelemetryRejected({"file": [f"Not UTF-8 text (byte {exc.start})."]}) from exc
    reader = csv.reader(io.StringIO(text))
    header = [column.strip() for column in next(reader, [])]
    lowered = [column.lower() for column in header]
    long = sorted(lowered) == sorted(LONG_COLUMNS)
    if not long and (lowered[:2] != ["asset", "ts"] or len(header) < 3):
        raise TelemetryRejected(
            {
                "line 1": [
                    "The header must be asset,channel,ts,value (one reading a line) "
                    "or asset,ts followed by channel names "
                    "(one timestamp a line)."
                ]
            }
        )
    if len(set(lowered)) != len(lowered):
        raise TelemetryRejected({"line 1": ["A column is named twice."]})
    readings = []
    line = reader.line_num
    for record in reader:
        first_line, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        where = f"line {first_line}"
        if len(record) != len(header):
            readings.append(_problem(where, f"{len(record)} fields, the header has {len(header)}"))
            continue
        cells = [cell.strip() for cell in record]
        if long:
            row = dict(zip(lowered, cells, strict=True))
            readings.append(Reading(where, row["asset"], row["channel"], row["ts"], row["value"]))
        else:
            for column, cell in zip(header[2:], cells[2:], strict=True):
                if cell:
                    readings.append(Reading(f"{where}, column {column}", cells[0], column, cells[1], cell))
    return readings


def parse_timestamp(value) -> datetime:
    """ISO 8601 with a time zone (`2024-05-01T12:00:00Z`), or Unix seconds. Raises ValueError with the reason."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool) or value is None or value == "":
        raise ValueError("the timestamp is missing")
    elif isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"timestamp {value!r} is not a finite number of seconds")
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"timestamp {value!r} is out of range") from None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"timestamp {value!r} is not ISO 8601 (e.g. 2024-05-01T12:00:00Z) or Unix seconds"
            ) from None
    else:
        raise ValueError(f"timestamp {value!r} is neither a string nor a number")
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone; add Z or an offset such as +02:00")
    return moment


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_value(value) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError("the value is missing" if value in (None, "") else f"value {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"value {value!r} is not a finite number")
    return number


# --- validation and storage -----------------------------------------------------------------------------------------


def _range_problem(channel: Channel, value: float) -> str | None:
    unit = f" {channel.unit}" if channel.unit else ""
    if channel.min_value is not None and value < channel.min_value:
        return f"value {value:g} is below {channel.name}'s expected minimum {channel.min_value:g}{unit}"
    if channel.max_value is not None and value > channel.max_value:
        return f"value {value:g} is above {channel.name}'s expected maximum {channel.max_value:g}{unit}"
    return None


def telemetry_ingest(*, organization: Organization, readings: Sequence[Reading]) -> IngestResult:
    """Validate every reading, then store all of them or none. Raises TelemetryRejected."""
    if not readings:
        raise TelemetryRejected({"body": ["No readings."]})
    if len(readings) > MAX_READINGS_PER_REQUEST:
        raise TelemetryRejected(
            {"body": [f"{len(readings)} readings; at most {MAX_READINGS_PER_REQUEST} per request, send several."]}
        )
    codes = {str(r.asset) for r in readings if isinstance(r.asset, str)}
    assets = {
        a.code: a for a in Asset.objects.filter(organization=organization, code__in=codes).select_related("asset_type")
    }
    channels: dict[tuple, Channel] = {
        (c.asset_type_id, c.name): c
        for c in Channel.objects.filter(asset_type_id__in={a.asset_type_id for a in assets.values()})
    }
    names_by_type: dict = {}
    for type_id, name in channels:
        names_by_type.setdefault(type_id, []).append(name)
    latest = timezone.now() + timedelta(seconds=MAX_FUTURE_SKEW_S)
    seen: dict[tuple[Any, ...], str]
    errors, rows, seen = _problems(), [], {}
    for reading in readings:
        where = reading.where
        if reading.problem:
            errors.add(where, reading.problem)
            continue
        asset = assets.get(reading.asset) if isinstance(reading.asset, str) else None
        if asset is None:
            errors.add(
                where,
                "the asset is missing" if reading.asset in (None, "") else f"no asset with the code {reading.asset!r}",
            )
            continue
        channel = channels.get((asset.asset_type_id, reading.channel)) if isinstance(reading.channel, str) else None
        if channel is None:
            known = ", ".join(names_by_type.get(asset.asset_type_id, [])) or "none"
            errors.add(
                where,
                f"asset {asset.code} ({asset.asset_type.code}) has no channel {reading.channel!r}; "
                f"its channels: {known}",
            )
            continue
        try:
            ts = parse_timestamp(reading.ts)
            value = _parse_value(reading.value)
        except ValueError as exc:
            errors.add(where, str(exc))
            continue
        if ts < EARLIEST or ts > latest:
            errors.add(
                where,
                f"timestamp {ts.isoformat()} is "
                + ("before " + EARLIEST.date().isoformat() if ts < EARLIEST else "in the future"),
            )
            continue
        problem = _range_problem(channel, value)
        if problem:
            errors.add(where, problem)
            continue
        key = (asset.pk, channel.pk, ts)
        if key in seen:
            errors.add(where, f"{asset.code} {channel.name} at {ts.isoformat()} is also on {seen[key]}")
            continue
        seen[key] = where
        rows.append((organization.pk, asset.pk, channel.pk, ts, value))
    errors.raise_if_any()
    stored = telemetry_store(rows=rows)
    return IngestResult(
        received=len(rows), stored=stored, duplicates=len(rows) - stored, assets=len({row[1] for row in rows})
    )


SMALL_BATCH = 200


def telemetry_store(*, rows: Iterable[tuple]) -> int:
    """Write validated (organization_id, asset_id, channel_id, ts, value) rows in one transaction; returns how
    many were new. Callers validate: this is only the fast path to the table. A few rows (a capture's
    indicators) go in one INSERT (arrays unnested); more through COPY into a staging table."""
    rows = list(rows)
    if not rows:
        return 0
    if len(rows) <= SMALL_BATCH:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO maintenance_telemetry (organization_id, asset_id, channel_id, ts, value) "
                "SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::bigint[], %s::timestamptz[], %s::float8[]) "
                "ON CONFLICT (asset_id, channel_id, ts) DO NOTHING",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return max(cursor.rowcount, 0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS maint_telemetry_staging (organization_id uuid, asset_id uuid, "
            "channel_id bigint, ts timestamptz, value double precision) ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy("COPY maint_telemetry_staging FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO maintenance_telemetry (organization_id, asset_id, channel_id, ts, value) "
            "SELECT organization_id, asset_id, channel_id, ts, value FROM maint_telemetry_staging "
            "ON CONFLICT (asset_id, channel_id, ts) DO NOTHING"
        )
        stored = cursor.rowcount
        cursor.execute("TRUNCATE maint_telemetry_staging")
    return max(stored, 0)
