"""Reads of quality analytics: genealogy (trace back from a unit, forward from a lot) and SPC charts."""

from datetime import datetime

from django.db import connection

from tenants.models import Organization

from .engine import capability, imr_chart, xbar_r_chart
from .models import Characteristic, InspectionResult, Lot, Machine, ProcessVariable, Unit


def unit_trace_back(*, organization: Organization, unit: Unit) -> dict:
    """Which lots went into the unit, which machines did which step when, what inspection found."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.code, st.code, st.position, min(s.ts), max(s.ts), count(*) FROM quality_steprecord s "
            "JOIN quality_machine m ON m.id = s.machine_id JOIN quality_station st ON st.id = m.station_id "
            "WHERE s.organization_id = %s AND s.unit_id = %s GROUP BY m.code, st.code, st.position "
            "ORDER BY st.position, min(s.ts)",
            [organization.pk, unit.pk],
        )
        steps = [
            {"machine": m, "station": st, "first": a.isoformat(), "last": b.isoformat(), "values": n}
            for m, st, _, a, b, n in cursor.fetchall()
        ]
    inspections = [
        {
            "characteristic": i.characteristic.code,
            "ts": i.ts.isoformat(),
            "value": i.value,
            "defect_code": i.defect_code.code if i.defect_code else None,
        }
        for i in InspectionResult.objects.filter(organization=organization, unit=unit).select_related(
            "characteristic", "defect_code"
        )
    ]
    return {
        "unit": unit.serial,
        "status": unit.status,
        "lots": [{"code": lot.code, "material": lot.material} for lot in unit.lots.all()],
        "steps": steps,
        "inspections": inspections,
    }


def lot_trace_forward(*, organization: Organization, lot: Lot) -> dict:
    """Every unit that used the lot, where it is now, and whether it failed inspection."""
    units = list(Unit.objects.filter(organization=organization, lots=lot).order_by("serial"))
    failed = set(
        InspectionResult.objects.filter(unit__in=units, defect_code__isnull=False).values_list("unit_id", flat=True)
    )
    by_status: dict[str, int] = {}
    for u in units:
        by_status[u.status] = by_status.get(u.status, 0) + 1
    return {
        "lot": lot.code,
        "material": lot.material,
        "units": [{"serial": u.serial, "status": u.status, "failed": u.pk in failed} for u in units],
        "by_status": by_status,
        "failed": len(failed),
    }


def variable_chart(
    *,
    organization: Organization,
    variable: ProcessVariable,
    start: datetime | None = None,
    end: datetime | None = None,
    subgroup: int = 1,
    baseline: int | None = None,
    machine: Machine | None = None,
    limit: int = 5000,
) -> dict:
    """I-MR (subgroup 1) or X-bar/R chart of the variable's per-unit means in time order, with run-rule
    violations and capability against the spec limits."""
    where = ["s.organization_id = %s", "s.variable_id = %s"]
    params: list = [organization.pk, variable.pk]
    if start is not None:
        where.append("s.ts >= %s")
        params.append(start)
    if end is not None:
        where.append("s.ts < %s")
        params.append(end)
    if machine is not None:
        where.append("s.machine_id = %s")
        params.append(machine.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.serial, min(s.ts) AS t, avg(s.value) FROM quality_steprecord s "  # noqa: S608  (fixed fragments)
            "JOIN quality_unit u ON u.id = s.unit_id WHERE " + " AND ".join(where) + " GROUP BY u.serial "
            "ORDER BY t, u.serial LIMIT %s",
            [*params, limit],
        )
        rows = cursor.fetchall()
    out: dict = {"variable": variable.name}
    return _chart(out, rows, variable, subgroup=subgroup, baseline=baseline)


def characteristic_chart(
    *,
    organization: Organization,
    characteristic: Characteristic,
    start: datetime | None = None,
    end: datetime | None = None,
    subgroup: int = 1,
    baseline: int | None = None,
    limit: int = 5000,
) -> dict:
    """The same chart for an inspection characteristic: its measured values (one per inspection) in time order."""
    inspections = InspectionResult.objects.filter(
        organization=organization, characteristic=characteristic, value__isnull=False
    )
    if start is not None:
        inspections = inspections.filter(ts__gte=start)
    if end is not None:
        inspections = inspections.filter(ts__lt=end)
    rows = list(inspections.order_by("ts", "id").values_list("unit__serial", "ts", "value")[:limit])
    out: dict = {"characteristic": characteristic.code}
    return _chart(out, rows, characteristic, subgroup=subgroup, baseline=baseline)


def _chart(out: dict, rows: list, limits: ProcessVariable | Characteristic, *, subgroup: int, baseline: int | None):
    values = [float(v) for _, _, v in rows]
    out.update(
        {
            "unit": limits.unit,
            "lsl": limits.lsl,
            "usl": limits.usl,
            "target": limits.target,
            "units": [s for s, _, _ in rows],
            "times": [t.isoformat() for _, t, _ in rows],
        }
    )
    if subgroup > 1:
        groups = [values[i : i + subgroup] for i in range(0, len(values) - subgroup + 1, subgroup)]
        if len(groups) < 2:
            return {**out, "chart": None, "reason": "fewer than two full subgroups"}
        chart = xbar_r_chart(groups, baseline=baseline)
    else:
        if len(values) < 2:
            return {**out, "chart": None, "reason": "fewer than two values"}
        chart = imr_chart(values, baseline=baseline)
    cap = capability(values, lsl=limits.lsl, usl=limits.usl) if len(values) >= 2 else None
    return {
        **out,
        "chart": {
            "kind": chart.kind,
            "center": chart.center,
            "lcl": chart.lcl,
            "ucl": chart.ucl,
            "sigma": chart.sigma,
            "points": list(chart.points),
            "range_center": chart.range_center,
            "range_ucl": chart.range_ucl,
            "ranges": list(chart.ranges),
            "violations": [{"rule": v.rule, "index": v.index, "description": v.description} for v in chart.violations],
        },
        "capability": None if cap is None else {"cp": cap.cp, "cpk": cap.cpk, "mean": cap.mean, "sigma": cap.sigma},
    }


SUSPECT_LIST_LIMIT = 1000


def investigation_suspects(*, investigation) -> dict:
    """The units that share the suspected cause: those that used the lot, passed the machine, recorded the
    variable or passed the station in the investigation's window (every unit inspected for the defect's
    characteristic in the window when no cause is named), split into still in the plant (in process, finished)
    and shipped, with the lots they used and which of them already failed."""
    org_id = investigation.organization_id
    level, name = investigation.cause_level, investigation.cause_name
    start, end = investigation.window_start, investigation.window_end
    window, params = "", []
    if start is not None:
        window += " AND s.ts >= %s"
        params.append(start)
    if end is not None:
        window += " AND s.ts < %s"
        params.append(end)
    with connection.cursor() as cursor:
        if level == "lot":
            sql = (
                "SELECT DISTINCT ul.unit_id FROM quality_unit_lots ul JOIN quality_lot l ON l.id = ul.lot_id "
                "WHERE l.organization_id = %s AND l.code = %s"
            )
            args: list = [org_id, name]
            if params:
                sql += " AND EXISTS (SELECT 1 FROM quality_steprecord s WHERE s.unit_id = ul.unit_id" + window + ")"  # noqa: S608
                args += params
        elif level in ("machine", "variable", "station"):
            join, condition = {
                "machine": ("JOIN quality_machine m ON m.id = s.machine_id", "m.code = %s"),
                "variable": ("JOIN quality_processvariable v ON v.id = s.variable_id", "v.name = %s"),
                "station": (
                    "JOIN quality_machine m ON m.id = s.machine_id JOIN quality_station st ON st.id = m.station_id",
                    "st.code = %s",
                ),
            }[level]
            sql = (
                f"SELECT DISTINCT s.unit_id FROM quality_steprecord s {join} "  # noqa: S608  (fixed fragments)
                f"WHERE s.organization_id = %s AND {condition}" + window
            )
            args = [org_id, name, *params]
        else:
            sql = (
                "SELECT DISTINCT s.unit_id FROM quality_inspectionresult s "  # noqa: S608  (fixed fragments)
                "WHERE s.organization_id = %s AND s.characteristic_id = %s" + window
            )
            args = [org_id, investigation.defect_code.characteristic_id, *params]
        cursor.execute(sql, args)
        unit_ids = [row[0] for row in cursor.fetchall()]
    units = Unit.objects.filter(organization_id=org_id, pk__in=unit_ids).order_by("serial")
    failed = set(
        InspectionResult.objects.filter(
            organization_id=org_id, unit_id__in=unit_ids, defect_code=investigation.defect_code
        ).values_list("unit_id", flat=True)
    )
    groups: dict[str, list[dict]] = {"in_plant": [], "shipped": [], "scrapped": []}
    for unit in units.values("pk", "serial", "status"):
        group = {"shipped": "shipped", "scrapped": "scrapped"}.get(unit["status"], "in_plant")
        groups[group].append({"serial": unit["serial"], "status": unit["status"], "failed": unit["pk"] in failed})
    lots = sorted(
        set(Lot.objects.filter(organization_id=org_id, units__pk__in=unit_ids).values_list("code", flat=True))
    )
    return {
        "cause": {"level": level or None, "name": name or None},
        "window": {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None},
        "counts": {
            "units": len(unit_ids),
            "in_plant": len(groups["in_plant"]),
            "shipped": len(groups["shipped"]),
            "scrapped": len(groups["scrapped"]),
            "failed": len(failed),
        },
        "in_plant": groups["in_plant"][:SUSPECT_LIST_LIMIT],
        "shipped": groups["shipped"][:SUSPECT_LIST_LIMIT],
        "scrapped": groups["scrapped"][:SUSPECT_LIST_LIMIT],
        "lots": lots,
    }
