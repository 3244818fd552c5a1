"""SPC alarms: when step records or inspection values arrive, the Western Electric rules are evaluated on the
series they touched, and a violation raises an alarm (an event in the log, a `quality.alarm` webhook, the API and
the portal).

A series is one process variable on one machine (per-unit means in time order), or one inspection characteristic
(per-unit values). Work per ingest is bounded: for each touched series, the BASELINE_POINTS units just before the
new data are read with one indexed query (the control limits come from them: centre = their mean, sigma = their
mean moving range / 1.128), and at most NEW_POINTS of the new units are evaluated. With fewer than MIN_BASELINE
earlier points (a line's first upload), the first MIN_BASELINE points of the series set the limits. Only violations
completed by a new point raise alarms; points already evaluated are not evaluated again.

Rules (Nelson numbering, as `engine.spc.run_rules`): 1 one point beyond 3 sigma, 2 nine in a row on one side,
5 two of three beyond 2 sigma on one side, 6 four of five beyond 1 sigma on one side: the Western Electric rules
(their fourth uses eight points on one side, Nelson's nine; we use nine, the fewer false alarms).

Deduplication: one open alarm per series and rule (a partial unique constraint). While it is open, further
violations update it (`last_seen_at`, `occurrences`, the latest pattern); once acknowledged or closed, the next
violation raises a new alarm.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction

from tenants.models import Organization

from .engine import imr_chart
from .models import Alarm, Unit
from .webhooks import ALARM, webhook_event

logger = logging.getLogger(__name__)

RULES = (1, 2, 5, 6)
PATTERN_SIZE = {1: 1, 2: 9, 3: 6, 4: 14, 5: 3, 6: 5, 7: 15, 8: 8}
BASELINE_POINTS = 200
NEW_POINTS = 1000
MIN_BASELINE = 20


@dataclass(frozen=True)
class Point:
    ts: datetime
    unit_id: int
    value: float


SeriesKey = tuple[str, int, int | None]  # ("variable", variable id, machine id) or ("characteristic", id, None)


def series_name(key: SeriesKey) -> str:
    kind, ident, machine = key
    return f"variable:{ident}/machine:{machine}" if kind == "variable" else f"characteristic:{ident}"


def step_points_since(organization: Organization, after_id: int) -> dict[SeriesKey, list[Point]]:
    """Per-unit means of the step records written after `after_id` (this ingest's), the newest NEW_POINTS units of
    each series, in time order. One grouped query over the new rows (primary-key range), so a million-row upload
    costs the database a second, not Python a loop per row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT variable_id, machine_id, unit_id, t, v FROM (SELECT variable_id, machine_id, unit_id, "
            "min(ts) AS t, avg(value) AS v, row_number() OVER (PARTITION BY variable_id, machine_id "
            "ORDER BY min(ts) DESC, unit_id DESC) AS r FROM quality_steprecord WHERE id > %s AND organization_id = %s "
            "GROUP BY variable_id, machine_id, unit_id) recent WHERE r <= %s",
            [after_id, organization.pk, NEW_POINTS],
        )
        rows = cursor.fetchall()
    series: dict[SeriesKey, list[Point]] = defaultdict(list)
    for variable_id, machine_id, unit_id, ts, value in rows:
        series[("variable", variable_id, machine_id)].append(Point(ts, unit_id, float(value)))
    return {k: sorted(v, key=lambda p: (p.ts, p.unit_id)) for k, v in series.items()}


def inspection_points(rows: Iterable[tuple[int, int, datetime, float | None]]) -> dict[SeriesKey, list[Point]]:
    """(unit id, characteristic id, ts, value) rows with a value, by characteristic, in time order."""
    series: dict[SeriesKey, list[Point]] = defaultdict(list)
    for unit_id, characteristic_id, ts, value in rows:
        if value is not None:
            series[("characteristic", characteristic_id, None)].append(Point(ts, unit_id, value))
    return {k: sorted(v, key=lambda p: (p.ts, p.unit_id)) for k, v in series.items()}


def _earlier(organization: Organization, key: SeriesKey, before: datetime) -> list[Point]:
    kind, ident, machine = key
    with connection.cursor() as cursor:
        if kind == "variable":
            # The newest rows before the new data (index quality_step_variable), then per-unit means.
            cursor.execute(
                "SELECT unit_id, min(ts), avg(value) FROM (SELECT unit_id, ts, value FROM quality_steprecord "
                "WHERE variable_id = %s AND organization_id = %s AND machine_id = %s AND ts < %s "
                "ORDER BY ts DESC LIMIT %s) recent GROUP BY unit_id",
                [ident, organization.pk, machine, before, BASELINE_POINTS * 20],
            )
        else:
            cursor.execute(
                "SELECT unit_id, ts, value FROM quality_inspectionresult WHERE characteristic_id = %s "
                "AND organization_id = %s AND ts < %s AND value IS NOT NULL ORDER BY ts DESC LIMIT %s",
                [ident, organization.pk, before, BASELINE_POINTS],
            )
        rows = cursor.fetchall()
    points = sorted((Point(ts, unit_id, float(v)) for unit_id, ts, v in rows), key=lambda p: (p.ts, p.unit_id))
    return points[-BASELINE_POINTS:]


def alarms_evaluate(*, organization: Organization, new: dict[SeriesKey, list[Point]]) -> list[Alarm]:
    """Evaluate the rules on each touched series; raise or update alarms (call inside the ingest's transaction).
    Returns the alarms raised now (new ones, not updates of open ones)."""
    raised: list[Alarm] = []
    for key, points in sorted(new.items(), key=lambda kv: series_name(kv[0])):
        points = points[-NEW_POINTS:]
        if not points:
            continue
        earlier = _earlier(organization, key, points[0].ts)
        series = earlier + points
        baseline = len(earlier) if len(earlier) >= MIN_BASELINE else MIN_BASELINE
        if len(series) < max(baseline, MIN_BASELINE) or len(series) < 2:
            continue
        try:
            chart = imr_chart([p.value for p in series], baseline=baseline, rules=RULES)
        except ValueError:
            continue
        if chart.sigma <= 0:
            continue
        by_rule: dict[int, list[int]] = defaultdict(list)
        for violation in chart.violations:
            if violation.index >= len(earlier) and violation.index >= min(baseline, len(series)) - 1:
                by_rule[violation.rule].append(violation.index)
        for rule, indexes in sorted(by_rule.items()):
            alarm = _raise(organization, key, rule, series, indexes, chart)
            if alarm is not None:
                raised.append(alarm)
    return raised


def _pattern(series: list[Point], rule: int, index: int, serials: dict[int, str]) -> list[dict]:
    size = PATTERN_SIZE.get(rule, 1)
    return [
        {"unit": serials.get(p.unit_id, str(p.unit_id)), "ts": p.ts.isoformat(), "value": p.value}
        for p in series[max(0, index - size + 1) : index + 1]
    ]


def _raise(organization, key: SeriesKey, rule: int, series: list[Point], indexes: list[int], chart) -> Alarm | None:
    kind, ident, machine = key
    first, last = indexes[0], indexes[-1]
    size = PATTERN_SIZE.get(rule, 1)
    wanted = {p.unit_id for i in (first, last) for p in series[max(0, i - size + 1) : i + 1]}
    serials = dict(Unit.objects.filter(pk__in=wanted).values_list("pk", "serial"))
    description = next(v.description for v in chart.violations if v.rule == rule)
    name = series_name(key)
    open_alarm = Alarm.objects.select_for_update().filter(
        organization=organization, series=name, rule=rule, status=Alarm.Status.OPEN
    )
    existing = open_alarm.first()
    if existing is None:
        try:
            with transaction.atomic():
                alarm = Alarm.objects.create(
                    organization=organization,
                    series=name,
                    variable_id=ident if kind == "variable" else None,
                    machine_id=machine,
                    characteristic_id=ident if kind == "characteristic" else None,
                    rule=rule,
                    description=description,
                    points=_pattern(series, rule, first, serials),
                    center=chart.center,
                    lcl=chart.lcl,
                    ucl=chart.ucl,
                    first_seen_at=series[first].ts,
                    last_seen_at=series[last].ts,
                    occurrences=len(indexes),
                )
        except IntegrityError:  # another ingest raised it a moment ago
            existing = open_alarm.first()
        else:
            _announce(alarm)
            return alarm
    if existing is not None:
        existing.last_seen_at = max(existing.last_seen_at, series[last].ts)
        existing.occurrences += len(indexes)
        existing.points = _pattern(series, rule, last, serials)
        existing.save(update_fields=["last_seen_at", "occurrences", "points"])
    return None


def alarm_payload(alarm: Alarm) -> dict:
    variable = alarm.variable.name if alarm.variable else None
    machine = alarm.machine.code if alarm.machine else None
    characteristic = alarm.characteristic.code if alarm.characteristic else None
    return {
        "id": str(alarm.pk),
        "variable": variable,
        "machine": machine,
        "characteristic": characteristic,
        "rule": alarm.rule,
        "description": alarm.description,
        "status": alarm.status,
        "center": alarm.center,
        "lcl": alarm.lcl,
        "ucl": alarm.ucl,
        "points": alarm.points,
        "first_seen_at": alarm.first_seen_at.isoformat(),
        "created_at": alarm.created_at.isoformat(),
    }


def _announce(alarm: Alarm) -> None:
    payload = alarm_payload(alarm)
    logger.warning(
        "SPC alarm %s: rule %s (%s) on %s",
        alarm.pk,
        alarm.rule,
        alarm.description,
        (payload["variable"] and f"{payload['variable']} on {payload['machine']}") or payload["characteristic"],
        extra={"event": "quality.alarm", "organization_id": str(alarm.organization_id), "alarm_id": str(alarm.pk)},
    )
    webhook_event(organization_id=alarm.organization_id, event=ALARM, data=payload)
