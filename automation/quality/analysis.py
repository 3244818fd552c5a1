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
from datetime import UTC, datetime

import numpy as np
from django.db import connection
from django.db.models import Max
from django.utils import timezone
from threadpoolctl import threadpool_limits

from billing.usage import usage_record
from jobs.runner import JobContext, JobFailure

from .conf import METER, MIN_LABELLED_CASES
from .engine import LineModel, RcaConfig, UnitRecord, UnitTrace, rank_line_causes, rank_trace_causes
from .engine.supervised import LabelledCase, causal_prior, line_case, rank_supervised, unit_case
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
    _supervise(ctx, analysis, result, method)
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
                        "before_failure_s": failed.end - c.since if c.since is not None else None,
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


def _supervise(ctx: JobContext, analysis: Analysis, result: dict, method: str) -> None:
    """Beside the unsupervised ranking, one learned from the labelled analyses of the same characteristic (the
    tenant's confirmed causes), when at least MIN_LABELLED_CASES labelled cases exist. An analysis never learns
    from itself, a failed unit never from a labelled ranking of the same unit (`unit`), a `line` analysis never
    from one of an overlapping window. `result["ranking"]` says which ranking leads."""
    result["ranking"] = "unsupervised"
    if result.get("verdict") not in ("cause_found", "cannot_tell") or not result.get("causes"):
        return
    org = ctx.organization_id
    characteristic = analysis.defect_code.characteristic
    labelled = list(
        Analysis.objects.filter(
            organization_id=org,
            defect_code__characteristic=characteristic,
            status="succeeded",
            labelled_at__isnull=False,
        )
        .exclude(pk=analysis.pk)
        .only("result", "confirmed_causes", "unit_causes", "start", "end", "window_seconds")
    )
    labelled = [a for a in labelled if (a.result or {}).get("method") == method]
    if not labelled:
        return
    parents: dict[str, list[str]] = defaultdict(list)
    for child, parent in ProcessVariable.causes.through.objects.filter(
        from_processvariable__organization_id=org
    ).values_list("from_processvariable__name", "to_processvariable__name"):
        parents[child].append(parent)
    names = list(ProcessVariable.objects.filter(organization_id=org).values_list("name", flat=True))
    prior = causal_prior(
        names=names, parents=parents, defect_causes=list(characteristic.affected_by.values_list("name", flat=True))
    )
    if method == Analysis.Method.UNIT:
        # Per failed unit of the labelled analyses: its own confirmed causes, else the analysis's.
        cases = [
            (
                u["unit"],
                LabelledCase(
                    unit_case(u["causes"], prior=prior, window_s=a.window_seconds),
                    frozenset(a.unit_causes.get(u["unit"]) or a.confirmed_causes),
                ),
            )
            for a in labelled
            for u in a.result.get("units", [])
            if u.get("verdict") == "ranked" and (a.unit_causes.get(u["unit"]) or a.confirmed_causes)
        ]
        totals: dict[str, list[float]] = defaultdict(list)
        trained_on = 0
        for u in result.get("units", []):
            if u.get("verdict") != "ranked":
                continue
            # A failed unit never learns from a labelled ranking of itself: leave-one-out by construction.
            history = [case for serial, case in cases if serial != u["unit"]]
            ranking = rank_supervised(
                history=history,
                case=unit_case(u["causes"], prior=prior, window_s=analysis.window_seconds),
                min_cases=MIN_LABELLED_CASES,
            )
            if ranking is None:
                continue
            trained_on = ranking.trained_on
            u["supervised"] = [
                {"rank": i + 1, "name": n, "probability": p}
                for i, (n, p) in enumerate(zip(ranking.names, ranking.probabilities, strict=True))
            ]
            for n, p in zip(ranking.names, ranking.probabilities, strict=True):
                totals[n].append(p)
        if not totals:
            result["supervised_note"] = _no_model(len(cases), [case for _, case in cases])
            ctx.event(f"{len(cases)} labelled case(s): {result['supervised_note']}; unsupervised only.")
            return
        failed = max(1, sum(1 for u in result["units"] if u.get("supervised")))
        scored = sorted(totals, key=lambda n: -sum(totals[n]) / failed)
        probabilities = {n: sum(totals[n]) / failed for n in scored}
    else:
        history = [
            LabelledCase(
                line_case(a.result["causes"], prior=prior, defects=a.result.get("defects", 0)),
                frozenset(a.confirmed_causes),
            )
            for a in labelled
            if not _overlaps(a, analysis)
        ]
        ranking = rank_supervised(
            history=history,
            case=line_case(result["causes"], prior=prior, defects=result.get("defects", 0)),
            min_cases=MIN_LABELLED_CASES,
        )
        if ranking is None:
            result["supervised_note"] = _no_model(len(history), history)
            ctx.event(f"{len(history)} labelled case(s): {result['supervised_note']}; unsupervised only.")
            return
        trained_on = ranking.trained_on
        scored = list(ranking.names)
        probabilities = dict(zip(ranking.names, ranking.probabilities, strict=True))
    unsupervised = {c["name"]: c["rank"] for c in result["causes"]}
    result["ranking"] = "supervised"
    result["supervised"] = {
        "trained_on": trained_on,
        "causes": [
            {"rank": i + 1, "name": n, "probability": probabilities[n], "unsupervised_rank": unsupervised.get(n)}
            for i, n in enumerate(scored[:50])
        ],
    }
    ctx.event(f"Supervised ranking from {trained_on} labelled case(s): {scored[0]} first.")


def _no_model(count: int, cases: list[LabelledCase]) -> str:
    """Why no supervised ranking was trained, for people."""
    if count < MIN_LABELLED_CASES:
        return f"fewer than {MIN_LABELLED_CASES} labelled cases"
    if all({c.name for c in case.candidates} <= case.causes for case in cases):
        return "every labelled candidate was a confirmed cause, so the history shows nothing to tell apart"
    return "too few usable labelled cases"


def _overlaps(a: Analysis, b: Analysis) -> bool:
    """Whether two line analyses' windows share time (an open end reaches to the start or end of time)."""
    a_start, a_end = a.start or datetime.min.replace(tzinfo=UTC), a.end or datetime.max.replace(tzinfo=UTC)
    b_start, b_end = b.start or datetime.min.replace(tzinfo=UTC), b.end or datetime.max.replace(tzinfo=UTC)
    return a_start < b_end and b_start < a_end
