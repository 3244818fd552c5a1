"""The `quality.analyse` job: load what the analysis needs from the database, run the engine, store the ranking.

Two methods. `line` compares units across the line (machines per station, lots, one value per unit and
variable: the mean of its step values) and needs enough units and defects; `unit` ranks, for each failed unit,
the variables its recorded traces show out of their healthy behaviour in the window before the failure, against
healthy units of the same machine (a machine is compared with itself first), per variable falling back to every
healthy unit where the machine's own have not recorded it, and to the failed unit's own history before the
window where no healthy unit has. `auto` takes `line` when at least 20 units were inspected and 5 failed, else `unit`.
"""

import graphlib
import logging
from collections import defaultdict
from datetime import datetime

import numpy as np
from django.db import connection
from django.db.models import Max
from django.utils import timezone
from threadpoolctl import threadpool_limits

from billing.usage import usage_record
from jobs.runner import JobContext, JobFailure

from .conf import METER
from .engine import LineModel, RcaConfig, UnitRecord, UnitTrace, rank_line_causes, rank_trace_causes
from .models import Analysis, InspectionResult, Machine, ProcessVariable, Station, Unit

logger = logging.getLogger(__name__)

MIN_REFERENCE_UNITS = 5


def analysis_execute(ctx: JobContext) -> dict:
    analysis = (
        Analysis.objects.select_related("defect_code__characteristic__station")
        .filter(pk=ctx.params["analysis_id"], organization_id=ctx.organization_id)
        .first()
    )
    if analysis is None:
        raise JobFailure("The analysis was deleted.", code="gone")
    Analysis.objects.filter(pk=analysis.pk).update(status="running")
    ctx.progress(5, "Loading inspections")
    characteristic = analysis.defect_code.characteristic
    inspections = InspectionResult.objects.filter(organization_id=ctx.organization_id, characteristic=characteristic)
    if analysis.start is not None:
        inspections = inspections.filter(ts__gte=analysis.start)
    if analysis.end is not None:
        inspections = inspections.filter(ts__lt=analysis.end)
    failed_at: dict[int, datetime] = {}
    for unit_id, ts in inspections.filter(defect_code=analysis.defect_code).values_list("unit_id", "ts"):
        failed_at[unit_id] = min(ts, failed_at.get(unit_id, ts))
    inspected = dict(inspections.values("unit_id").annotate(last=Max("ts")).values_list("unit_id", "last"))
    if analysis.units:
        named = dict(
            Unit.objects.filter(organization_id=ctx.organization_id, serial__in=analysis.units).values_list(
                "pk", "serial"
            )
        )
        failed_at = {u: t for u, t in failed_at.items() if u in named}
        missing = sorted(
            set(named.values()) - set(Unit.objects.filter(pk__in=failed_at).values_list("serial", flat=True))
        )
        if missing:
            ctx.event(
                f"{len(missing)} named unit(s) show no {analysis.defect_code.code} in the window: "
                + ", ".join(missing[:10])
            )
    method = analysis.method
    if method == Analysis.Method.AUTO:
        method = (
            Analysis.Method.LINE
            if len(inspected) >= 20 and len(failed_at) >= 5 and not analysis.units
            else Analysis.Method.UNIT
        )
    ctx.event(
        f"{len(inspected)} units inspected for {characteristic.code}, {len(failed_at)} with "
        f"{analysis.defect_code.code}; method {method}."
    )

    if method == Analysis.Method.LINE:
        result = _line(ctx, analysis, inspected, failed_at)
    else:
        result = _units(ctx, analysis, inspected, failed_at)
    result["method"] = method
    ctx.progress(95, "Storing the ranking")
    Analysis.objects.filter(pk=analysis.pk).update(
        status="succeeded",
        verdict=result["verdict"],
        message=result["message"],
        result=result,
        finished_at=timezone.now(),
    )
    _bill(ctx, analysis, method)
    _announce(analysis, result)
    return {"analysis_id": str(analysis.pk), "verdict": result["verdict"], "method": method}


def _announce(analysis: Analysis, result: dict) -> None:
    from .webhooks import ANALYSIS_FINISHED, webhook_event

    causes = result.get("causes") or result.get("ranking") or []
    webhook_event(
        organization_id=analysis.organization_id,
        event=ANALYSIS_FINISHED,
        data={
            "id": str(analysis.pk),
            "defect_code": analysis.defect_code.code,
            "method": result.get("method"),
            "verdict": result["verdict"],
            "message": result["message"],
            "top_causes": [
                {k: c.get(k) for k in ("rank", "level", "name", "station", "p_adjusted", "significant", "score")}
                for c in (causes[:3] if isinstance(causes, list) else [])
                if isinstance(c, dict)
            ],
        },
    )


def _bill(ctx: JobContext, analysis: Analysis, method: str) -> None:
    try:
        usage_record(
            organization_id=ctx.organization_id,
            meter=METER,
            quantity=1,
            idempotency_key=f"quality:{ctx.job.id}",
            attributes={"method": method, "defect_code": analysis.defect_code.code},
        )
    except Exception:
        logger.exception("Recording the analysis of job %s failed", ctx.job.id)
        ctx.event("Could not record this analysis for billing.", level="warning")


def _variables(organization_id, limit_station: Station | None) -> list[ProcessVariable]:
    variables = ProcessVariable.objects.filter(organization_id=organization_id).select_related("station")
    if limit_station is not None:
        # Only what happened at or before the inspecting station can have made its defect.
        variables = variables.filter(station__position__lte=limit_station.position)
    return list(variables)


def _line(ctx: JobContext, analysis: Analysis, inspected: dict, failed_at: dict) -> dict:
    org = ctx.organization_id
    characteristic = analysis.defect_code.characteristic
    stations = list(Station.objects.filter(organization_id=org, position__lte=characteristic.station.position))
    variables = _variables(org, characteristic.station)
    if analysis.candidates:
        variables = [v for v in variables if v.name in set(analysis.candidates)]
    unit_ids = list(inspected)
    names = dict(Unit.objects.filter(pk__in=unit_ids).values_list("pk", "serial"))
    machines = {m.pk: m for m in Machine.objects.filter(organization_id=org).select_related("station")}
    by_id = {v.pk: v for v in variables}
    ctx.progress(15, "Loading step values")
    per_unit_machines: dict[int, dict[str, str]] = defaultdict(dict)
    per_unit_values: dict[int, dict[str, float]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT unit_id, machine_id, variable_id, avg(value) FROM quality_steprecord "
            "WHERE organization_id = %s AND unit_id = ANY(%s) GROUP BY unit_id, machine_id, variable_id",
            [org, unit_ids],
        )
        for unit_id, machine_id, variable_id, mean in cursor.fetchall():
            machine = machines[machine_id]
            per_unit_machines[unit_id][machine.station.code] = machine.code
            if variable_id in by_id:
                per_unit_values[unit_id][by_id[variable_id].name] = mean
    lots: dict[int, list[str]] = defaultdict(list)
    for unit_id, code in Unit.lots.through.objects.filter(unit_id__in=unit_ids).values_list("unit_id", "lot__code"):
        lots[unit_id].append(code)
    epoch = min(inspected.values())
    records = [
        UnitRecord(
            unit=names[u],
            time=(inspected[u] - epoch).total_seconds(),
            defective=u in failed_at,
            machines=per_unit_machines.get(u, {}),
            lots=tuple(sorted(lots.get(u, ()))),
            values=per_unit_values.get(u, {}),
        )
        for u in unit_ids
    ]
    parents: dict[str, tuple[str, ...]] = {}
    for variable_id, cause in ProcessVariable.causes.through.objects.filter(
        from_processvariable_id__in=by_id
    ).values_list("from_processvariable_id", "to_processvariable__name"):
        parents.setdefault(by_id[variable_id].name, ())
        parents[by_id[variable_id].name] += (cause,)
    line = LineModel(
        stations=tuple(s.code for s in stations),
        variable_station={v.name: v.station.code for v in variables},
        parents=parents,
    )
    ctx.progress(50, f"Ranking causes across {len(records)} units")
    # One BLAS thread: the worker's cores are shared, and threads fighting over them made this 2-3x slower.
    with threadpool_limits(limits=1):
        result = rank_line_causes(units=records, line=line, config=RcaConfig())
    return {
        "verdict": result.verdict,
        "message": result.message,
        "units": result.units,
        "defects": result.defects,
        "tested": result.tested,
        "epoch": epoch.isoformat(),
        "causes": [
            {
                "rank": i + 1,
                "level": c.level,
                "name": c.name,
                "station": c.station,
                "p_value": c.p_value,
                "p_adjusted": c.p_adjusted,
                "significant": c.significant,
                "effect": c.effect if np.isfinite(c.effect) else None,
                "effect_kind": c.effect_kind,
                "rate_with": c.rate_with,
                "rate_without": c.rate_without,
                "units_with": c.units_with,
                "affected_units": list(c.affected_units[:500]),
                "affected_count": len(c.affected_units),
                "change_point": (epoch + _seconds(c.change_point)).isoformat() if c.change_point is not None else None,
                "raw_effect": c.raw_effect,
                "explained_by": list(c.explained_by),
                "direction": c.direction,
            }
            for i, c in enumerate(result.candidates[:100])
        ],
    }


def _seconds(value: float):
    from datetime import timedelta

    return timedelta(seconds=value)


def _traces(org, unit_ids: list[int], names: dict[int, str]) -> tuple[dict[int, dict], dict[int, datetime]]:
    """Per unit: {variable: (times, values)} in seconds from the unit's first step, and that first step's time."""
    raw: dict[int, dict[str, tuple[list[float], list[float]]]] = defaultdict(dict)
    first: dict[int, datetime] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT unit_id, min(ts) FROM quality_steprecord WHERE organization_id = %s AND unit_id = ANY(%s) "
            "GROUP BY unit_id",
            [org, unit_ids],
        )
        first = dict(cursor.fetchall())
        cursor.execute(
            "SELECT s.unit_id, v.name, s.ts, s.value FROM quality_steprecord s "
            "JOIN quality_processvariable v ON v.id = s.variable_id "
            "WHERE s.organization_id = %s AND s.unit_id = ANY(%s) ORDER BY s.unit_id, v.name, s.ts, s.id",
            [org, unit_ids],
        )
        for unit_id, name, ts, value in cursor.fetchall():
            times, values = raw[unit_id].setdefault(name, ([], []))
            times.append((ts - first[unit_id]).total_seconds())
            values.append(value)
    return raw, first


def _causal_order(variables: list[ProcessVariable], parents: dict[str, list[str]]) -> list[str]:
    """Upstream first: the causal graph's topological order within the routing order (ties broken by it)."""
    by_station = [v.name for v in variables]  # by station position, then name
    try:
        sorter = graphlib.TopologicalSorter({name: parents.get(name, []) for name in by_station})
        sorter.prepare()
    except graphlib.CycleError:
        return by_station
    rank = {name: i for i, name in enumerate(by_station)}
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: rank.get(n, len(rank)))
        order.extend(ready)
        sorter.done(*ready)
    return [n for n in order if n in rank]


def _units(ctx: JobContext, analysis: Analysis, inspected: dict, failed_at: dict) -> dict:
    org = ctx.organization_id
    characteristic = analysis.defect_code.characteristic
    if not failed_at:
        return {"verdict": "too_few_defects", "message": "No unit failed with this defect code.", "units": []}
    variables = _variables(org, characteristic.station)
    candidates = [v.name for v in variables if not analysis.candidates or v.name in set(analysis.candidates)]
    parents: dict[str, list[str]] = defaultdict(list)
    for child, parent in ProcessVariable.causes.through.objects.filter(
        from_processvariable__organization_id=org
    ).values_list("from_processvariable__name", "to_processvariable__name"):
        parents[child].append(parent)
    order = _causal_order(variables, parents)
    defect_causes = list(characteristic.affected_by.values_list("name", flat=True))
    healthy = [u for u in inspected if u not in failed_at]
    # Reference units that failed with another defect code of this characteristic are not healthy either.
    other_defects = set(
        InspectionResult.objects.filter(
            unit_id__in=healthy, characteristic=characteristic, defect_code__isnull=False
        ).values_list("unit_id", flat=True)
    )
    healthy = [u for u in healthy if u not in other_defects]
    unit_machines: dict[int, set[int]] = defaultdict(set)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT unit_id, machine_id FROM quality_steprecord WHERE organization_id = %s "
            "AND unit_id = ANY(%s)",
            [org, list(failed_at) + healthy],
        )
        for unit_id, machine_id in cursor.fetchall():
            unit_machines[unit_id].add(machine_id)
    names = dict(Unit.objects.filter(pk__in=list(failed_at) + healthy).values_list("pk", "serial"))
    ctx.progress(15, "Loading traces")
    traces, first = _traces(org, list(failed_at) + healthy, names)
    ends = {u: (inspected[u] - first[u]).total_seconds() for u in healthy if u in first}
    reference_all = {
        u: UnitTrace({k: (tuple(t), tuple(v)) for k, (t, v) in traces[u].items()}, max(ends[u], 0.0))
        for u in healthy
        if u in first
    }
    rankings = []
    for i, (unit_id, failed_ts) in enumerate(sorted(failed_at.items(), key=lambda kv: names[kv[0]])):
        ctx.raise_if_cancelled()
        if unit_id not in first:
            rankings.append(
                {"unit": names[unit_id], "verdict": "cannot_tell", "reason": "no step records", "causes": []}
            )
            continue
        same = [u for u in reference_all if unit_machines[u] & unit_machines[unit_id]]
        reference = [reference_all[u] for u in (same if len(same) >= MIN_REFERENCE_UNITS else reference_all)]
        fleet = list(reference_all.values())
        failed = UnitTrace(
            {k: (tuple(t), tuple(v)) for k, (t, v) in traces[unit_id].items()},
            (failed_ts - first[unit_id]).total_seconds(),
        )
        ranking = rank_trace_causes(
            reference=reference,
            failed=failed,
            candidates=candidates,
            parents=parents,
            order=order,
            window_s=analysis.window_seconds,
            defect_causes=defect_causes,
            fallback=fleet,
        )
        rankings.append(
            {
                "unit": names[unit_id],
                "failed_at": failed_ts.isoformat(),
                "verdict": ranking.verdict,
                "reason": ranking.reason,
                "reference_units": len(reference),
                "reference": "same machine" if len(same) >= MIN_REFERENCE_UNITS else "all healthy units",
                "causes": [
                    {
                        "rank": r + 1,
                        "level": "variable",
                        "name": c.variable,
                        "score": c.score,
                        "mean_surprise": c.surprise_peak,
                        "state": c.state,
                        "since": (first[unit_id] + _seconds(c.since)).isoformat() if c.since is not None else None,
                        "parents": list(c.parents),
                        "reference": c.reference,
                    }
                    for r, c in enumerate(ranking.causes[:20])
                ],
            }
        )
        ctx.progress(15 + 80 * (i + 1) / len(failed_at))
    # Across the failed units: how often each variable ranked first, then its mean rank.
    firsts: dict[str, int] = defaultdict(int)
    ranks: dict[str, list[int]] = defaultdict(list)
    for r in rankings:
        if r["verdict"] == "ranked":
            firsts[r["causes"][0]["name"]] += 1
            for c in r["causes"]:
                ranks[c["name"]].append(c["rank"])
    summary = sorted(ranks, key=lambda n: (-firsts[n], float(np.mean(ranks[n])), n))
    ranked = [r for r in rankings if r["verdict"] == "ranked"]
    verdict = "cause_found" if ranked else "cannot_tell"
    message = (
        f"{summary[0]} ranks first for {firsts[summary[0]]} of {len(rankings)} failed unit(s)."
        if ranked
        else "No variable left its healthy behaviour before the failure(s): these traces cannot tell."
    )
    return {
        "verdict": verdict,
        "message": message,
        "causes": [
            {
                "rank": i + 1,
                "level": "variable",
                "name": n,
                "first_for": firsts[n],
                "mean_rank": float(np.mean(ranks[n])),
            }
            for i, n in enumerate(summary[:50])
        ],
        "units": rankings,
    }
