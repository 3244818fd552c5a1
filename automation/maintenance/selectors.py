"""Reads: telemetry over a time range (raw or downsampled), and assets' histories as the engine's frames.

The engine wants one frame per asset, one row per cycle (evenly spaced), one column per channel. Telemetry is
averaged into cycles of the asset type's `cycle_seconds` in SQL (`date_bin`), so only one value per channel and
cycle crosses the wire, and cycles without any reading become rows of NaN (the engine treats them as gaps).

A life is the telemetry between two renewals (a failure, repair or replacement). A life that ends in a failure
is a run-to-failure history, the training data; the current life (after the last renewal) is what is scored.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import QuerySet

from .models import Asset, AssetEvent, AssetHealth, AssetType, Channel, TrainedModel

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_POINTS = 100_000  # per telemetry query; ask for a coarser bucket or a shorter range beyond


@dataclass(frozen=True)
class Life:
    asset: Asset
    starts_after: datetime | None  # the renewal that began it (exclusive); None: the first life
    ends_at: datetime | None  # the failure that ended it (inclusive); None: still running
    failure: AssetEvent | None


def telemetry_series(
    *, asset: Asset, channels: list[Channel], start: datetime, end: datetime, bucket_seconds: int | None = None
) -> list[dict]:
    """Per channel, the readings in [start, end): raw, or per bucket (mean, min, max, count)."""
    by_id = {c.pk: c for c in channels}
    series: dict[Any, dict[str, Any]] = {c.pk: {"channel": c.name, "unit": c.unit, "points": []} for c in channels}
    with connection.cursor() as cursor:
        if bucket_seconds:
            cursor.execute(
                "SELECT channel_id, date_bin(make_interval(secs => %s), ts, %s) AS bucket, avg(value), min(value), "
                "max(value), count(*) FROM maintenance_telemetry WHERE asset_id = %s AND channel_id = ANY(%s) "
                "AND ts >= %s AND ts < %s GROUP BY 1, 2 ORDER BY 1, 2 LIMIT %s",
                [bucket_seconds, EPOCH, asset.pk, list(by_id), start, end, MAX_POINTS + 1],
            )
            rows = cursor.fetchall()
            points = [(c, {"ts": b, "mean": m, "min": lo, "max": hi, "count": n}) for c, b, m, lo, hi, n in rows]
        else:
            cursor.execute(
                "SELECT channel_id, ts, value FROM maintenance_telemetry WHERE asset_id = %s AND channel_id = ANY(%s) "
                "AND ts >= %s AND ts < %s ORDER BY channel_id, ts LIMIT %s",
                [asset.pk, list(by_id), start, end, MAX_POINTS + 1],
            )
            rows = cursor.fetchall()
            points = [(c, {"ts": ts, "value": v}) for c, ts, v in rows]
    if len(rows) > MAX_POINTS:
        raise ValueError(f"More than {MAX_POINTS} points; choose a shorter range or a larger bucket.")
    for channel_id, point in points:
        series[channel_id]["points"].append(point)
    return [series[c.pk] for c in channels]


def asset_frame(
    *,
    asset: Asset,
    channels: list[Channel],
    cycle_seconds: int,
    after: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """The asset's telemetry in (after, until], one row per cycle (mean of its readings), indexed by the
    cycle's start. Empty frame when there is no telemetry."""
    names = {c.pk: c.name for c in channels}
    sql = [
        "SELECT channel_id, date_bin(make_interval(secs => %s), ts, %s) AS cycle, avg(value) "
        "FROM maintenance_telemetry WHERE asset_id = %s AND channel_id = ANY(%s)"
    ]
    params: list = [cycle_seconds, EPOCH, asset.pk, list(names)]
    if after is not None:
        sql.append("AND ts > %s")
        params.append(after)
    if until is not None:
        sql.append("AND ts <= %s")
        params.append(until)
    sql.append("GROUP BY 1, 2")
    with connection.cursor() as cursor:
        cursor.execute(" ".join(sql), params)
        rows = cursor.fetchall()
    columns = [c.name for c in channels]
    if not rows:
        return pd.DataFrame(columns=columns, dtype=np.float64)
    long = pd.DataFrame(rows, columns=["channel", "cycle", "value"])
    long["channel"] = long["channel"].map(names)
    wide = long.pivot(index="cycle", columns="channel", values="value").reindex(columns=columns)
    wide.index = pd.DatetimeIndex(wide.index).tz_convert(UTC)
    full = pd.date_range(wide.index[0], wide.index[-1], freq=pd.Timedelta(seconds=cycle_seconds))
    frame = wide.reindex(full).astype(np.float64)
    frame.index.name = "cycle_start"
    return frame


def asset_lives(*, asset: Asset) -> list[Life]:
    """Every life of the asset, oldest first; the last one is the current life unless it ended in a failure."""
    renewals = list(AssetEvent.objects.filter(asset=asset, kind__in=AssetEvent.RENEWALS).order_by("occurred_at", "id"))
    lives, previous = [], None
    for event in renewals:
        if event.kind == AssetEvent.Kind.FAILURE:
            lives.append(Life(asset, previous, event.occurred_at, event))
        previous = event.occurred_at
    lives.append(Life(asset, previous, None, None))
    return lives


def _cycle_of(moment: datetime, cycle_seconds: int) -> datetime:
    seconds = (moment - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=(seconds // cycle_seconds) * cycle_seconds)


def run_to_failure_histories(
    *, asset_type: AssetType, channels: list[Channel], asset_codes: list[str] | None = None, min_cycles: int = 2
) -> list[tuple[str, pd.DataFrame]]:
    """[(label, frame)] of every life of the type's assets that ended in a failure; the frame's last row is the
    failure's cycle."""
    assets = Asset.objects.filter(organization_id=asset_type.organization_id, asset_type=asset_type)
    if asset_codes is not None:
        assets = assets.filter(code__in=asset_codes)
    histories = []
    for asset in assets.order_by("code"):
        for life in asset_lives(asset=asset):
            if life.failure is None or life.ends_at is None:  # set together
                continue
            frame = asset_frame(
                asset=asset,
                channels=channels,
                cycle_seconds=asset_type.cycle_seconds,
                after=life.starts_after,
                until=life.ends_at,
            )
            if len(frame) == 0:
                continue
            # The failure's own cycle is RUL 0 even when its last readings came a little earlier.
            failure_cycle = _cycle_of(life.ends_at, asset_type.cycle_seconds)
            if frame.index[-1] < failure_cycle:
                full = pd.date_range(frame.index[0], failure_cycle, freq=pd.Timedelta(seconds=asset_type.cycle_seconds))
                frame = frame.reindex(full)
            if len(frame) >= min_cycles:
                histories.append((f"{asset.code}@{life.ends_at.isoformat()}", frame))
    return histories


def current_life_frame(
    *, asset: Asset, channels: list[Channel], cycle_seconds: int, until: datetime | None = None
) -> pd.DataFrame:
    """The asset's telemetry since its last renewal (up to `until`)."""
    renewal = (
        AssetEvent.objects.filter(
            asset=asset, kind__in=AssetEvent.RENEWALS, **({"occurred_at__lte": until} if until else {})
        )
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )
    return asset_frame(asset=asset, channels=channels, cycle_seconds=cycle_seconds, after=renewal, until=until)


def current_model(*, asset_type: AssetType) -> TrainedModel | None:
    return TrainedModel.objects.filter(asset_type=asset_type, is_current=True).first()


def latest_health(*, assets: QuerySet) -> dict:
    rows = AssetHealth.objects.filter(asset__in=assets).order_by("asset_id", "-created_at").distinct("asset_id")
    return {row.asset_id: row for row in rows}


# --- for the portal's pages -----------------------------------------------------------------------------------------


def telemetry_span(*, asset: Asset, channels: list[Channel]) -> tuple[datetime, datetime] | None:
    """The first and last reading of the asset on any of the channels, or None without telemetry. One index
    lookup per end and channel (the unique index on asset, channel, ts)."""
    from django.db.models import Max, Min

    from .models import Telemetry

    ends = [
        Telemetry.objects.filter(asset=asset, channel=channel).aggregate(first=Min("ts"), last=Max("ts"))
        for channel in channels
    ]
    firsts = [e["first"] for e in ends if e["first"] is not None]
    lasts = [e["last"] for e in ends if e["last"] is not None]
    return (min(firsts), max(lasts)) if firsts else None


def health_history(*, asset: Asset, limit: int = 500) -> list[AssetHealth]:
    """The asset's scorings, oldest first (the latest `limit`)."""
    return list(reversed(AssetHealth.objects.filter(asset=asset).order_by("-created_at", "-id")[:limit]))


def asset_facts(*, organization) -> list[dict[str, str]]:
    """The organisation's assets as plain facts (code, name, type, site), for the copilot's training data."""
    assets = Asset.objects.filter(organization=organization).select_related("asset_type").order_by("code")
    return [
        {
            "code": asset.code,
            "name": asset.name,
            "type": asset.asset_type.code + (f" ({asset.asset_type.name})" if asset.asset_type.name else ""),
            "site": asset.site,
        }
        for asset in assets
    ]


def vibration_trend(*, asset: Asset, sensor: str, limit: int = 200) -> list[tuple[datetime, float, str]]:
    """(captured at, overall velocity RMS in mm/s, ISO zone) of the sensor's last `limit` analysed captures, oldest
    first: the indicator trend of the component under that sensor."""
    from .models import VibrationCapture

    rows = (
        VibrationCapture.objects.filter(asset=asset, sensor=sensor, status=VibrationCapture.Status.ANALYSED)
        .order_by("-captured_at")
        .values_list("captured_at", "indicators")[:limit]
    )
    out = [
        (at, float(ind["velocity_rms_mm_s"]), str(ind.get("iso_zone", "")))
        for at, ind in rows
        if ind and ind.get("velocity_rms_mm_s") is not None
    ]
    return out[::-1]
