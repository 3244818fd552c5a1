"""The copilot's tools: reads over the apps' selectors and models, and writes that are only ever proposed.

Each tool has a name, a description, example questions (what tool choice retrieves over), keywords in other
languages, a JSON schema of its arguments, the scope the caller needs, the record kinds it answers about, and a
function. A read returns `ToolResult`: structured facts (figures and identifiers verbatim from the records) and
citations (the record's API URL, or document and page). A write tool has a `propose` function (turns the question
and the resolved codes into exact arguments, or says why it cannot) and an `execute` function that runs only from
`services.proposal_confirm`, with the confirming caller's permissions.

Every query is filtered by the caller's organisation: the tools see what the caller's API would show, no more.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from automation.maintenance import models as maintenance
from automation.maintenance import services as maintenance_services
from automation.quality import models as quality
from automation.quality import selectors as quality_selectors
from automation.quality import services as quality_services
from automation.scheduling import models as scheduling
from automation.scheduling import outputs as scheduling_outputs
from automation.scheduling import runs as scheduling_runs
from billing import selectors as billing_selectors
from billing.models import Subscription
from tenants.actor import Actor
from tenants.models import Organization
from tenants.roles import Scope

from .engine.choosing import Resolution, tokens

FACTS_LIMIT = 12


@dataclass
class ToolResult:
    facts: list[dict] = field(default_factory=list)  # {"name", "value", "unit"?, "record"?}
    citations: list[dict] = field(default_factory=list)  # {"title", "url", "kind", "page"?, "section"?}
    empty_reason: str = ""  # set when the records hold no answer: the copilot refuses with it

    def fact(self, name: str, value: Any, *, unit: str = "", record: str = "") -> None:
        item: dict[str, Any] = {"name": name, "value": _plain(value)}
        if unit:
            item["unit"] = unit
        if record:
            item["record"] = record
        self.facts.append(item)

    def cite(self, title: str, url: str, kind: str, **extra: Any) -> None:
        entry = {"title": title, "url": url, "kind": kind, **{k: v for k, v in extra.items() if v not in (None, "")}}
        if entry not in self.citations:
            self.citations.append(entry)


@dataclass(frozen=True)
class ToolContext:
    organization: Organization
    actor: Actor
    question: str
    resolution: Resolution


@dataclass(frozen=True)
class Proposed:
    arguments: dict
    summary: str


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    examples: tuple[str, ...]
    parameters: dict  # JSON schema of the arguments
    scope: str
    kinds: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    run: Callable[[ToolContext, dict], ToolResult] | None = None
    # Write tools only:
    propose: Callable[[ToolContext], Proposed | str] | None = None
    execute: Callable[..., dict] | None = None

    @property
    def write(self) -> bool:
        return self.execute is not None


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value


def _path(name: str, org: Organization, pk: Any = None) -> str:
    kwargs: dict[str, Any] = {"org_slug": org.slug}
    if pk is not None:
        kwargs["pk"] = str(pk)
    return reverse(name, kwargs=kwargs)


def _args_codes(ctx: ToolContext, kind: str) -> list[str]:
    return ctx.resolution.codes(kind)


# --- maintenance ------------------------------------------------------------------------------------------------


def _assets(ctx: ToolContext) -> list[maintenance.Asset]:
    codes = _args_codes(ctx, "asset")
    qs = maintenance.Asset.objects.filter(organization=ctx.organization).select_related("asset_type")
    return list(qs.filter(code__in=codes)) if codes else []


def _asset_health(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    assets = _assets(ctx)
    scoped = maintenance.Asset.objects.filter(organization=ctx.organization)
    if assets:
        scoped = scoped.filter(pk__in=[a.pk for a in assets])
    latest = maintenance.AssetHealth.objects.filter(asset__in=scoped).order_by("asset_id", "-created_at")
    rows = list(latest.distinct("asset_id").select_related("asset"))
    rows.sort(key=lambda h: (h.health_score, h.asset.code))
    for health in rows[: 1 if assets and len(assets) == 1 else 5]:
        code = health.asset.code
        result.fact(f"{code} health score", health.health_score, unit="of 100", record=code)
        if health.rul_cycles is not None:
            result.fact(f"{code} remaining life", health.rul_cycles, unit="cycles", record=code)
        if health.rul_low is not None and health.rul_high is not None:
            result.fact(
                f"{code} remaining life band", f"{_plain(health.rul_low)}-{_plain(health.rul_high)}", unit="cycles"
            )
        if health.predicted_failure_at is not None:
            result.fact(f"{code} predicted failure", health.predicted_failure_at, record=code)
        for driver in (health.drivers or [])[:2]:
            result.fact(f"{code} driver", driver.get("channel"), record=code)
        result.fact(f"{code} scored as of", health.as_of)
        result.cite(f"Asset {code} health", _path("maintenance-health-detail", ctx.organization, health.pk), "record")
    if not rows:
        what = ", ".join(a.code for a in assets) or "any asset"
        result.empty_reason = f"No health score has been computed for {what} yet."
    return result


def _asset_records(
    ctx: ToolContext,
    model: type[maintenance.Anomaly | maintenance.VibrationDiagnosis | maintenance.Recommendation],
    *,
    order_by: str,
    fact: Callable[[Any], tuple[str, str]],
    title: str,
    url_name: str,
    none: str,
) -> ToolResult:
    """Five records of the asked-about assets (or any), each a fact and a citation. `title` and `none` take the
    asset codes in place of {}."""
    result = ToolResult()
    qs = model.objects.filter(organization=ctx.organization).select_related("asset")
    assets = _assets(ctx)
    if assets:
        qs = qs.filter(asset__in=assets)
    for record in qs.order_by(order_by)[:5]:
        code = record.asset.code
        name, value = fact(record)
        result.fact(f"{code} {name}", value, record=code)
        result.cite(title.format(code), _path(url_name, ctx.organization, record.pk), "record")
    if not result.facts:
        result.empty_reason = none.format(", ".join(a.code for a in assets) or "any asset")
    return result


def _anomalies(ctx: ToolContext, args: dict) -> ToolResult:
    return _asset_records(
        ctx,
        maintenance.Anomaly,
        order_by="-starts_at",
        fact=lambda anomaly: (
            f"anomaly on {anomaly.channel}",
            f"from {_plain(anomaly.starts_at)} to {_plain(anomaly.ends_at)}, score {_plain(anomaly.score)}",
        ),
        title="Anomaly on {}",
        url_name="maintenance-anomaly-detail",
        none="No anomalies are recorded for {}.",
    )


def _diagnoses(ctx: ToolContext, args: dict) -> ToolResult:
    return _asset_records(
        ctx,
        maintenance.VibrationDiagnosis,
        order_by="-created_at",
        fact=lambda diagnosis: (
            diagnosis.component,
            f"{diagnosis.label}, confidence {_plain(diagnosis.confidence)}, severity {diagnosis.severity_level}",
        ),
        title="Diagnosis of {}",
        url_name="maintenance-diagnosis-detail",
        none="No vibration diagnosis is recorded for {}.",
    )


def _recommendations(ctx: ToolContext, args: dict) -> ToolResult:
    return _asset_records(
        ctx,
        maintenance.Recommendation,
        order_by="due_by",
        fact=lambda rec: (rec.component, f"{rec.action} by {_plain(rec.due_by)}, priority {rec.priority}"),
        title="Recommendation for {}",
        url_name="maintenance-recommendation-detail",
        none="No maintenance is recommended for {}.",
    )


def _work_orders(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    qs = (
        maintenance.WorkOrder.objects.filter(organization=ctx.organization)
        .exclude(status=maintenance.WorkOrder.Status.CLOSED)
        .select_related("asset", "recommendation")
    )
    assets = _assets(ctx)
    if assets:
        qs = qs.filter(asset__in=assets)
    orders = list(qs.order_by("recommendation__due_by")[:8])
    result.fact("open work orders", qs.count())
    for order in orders:
        rec = order.recommendation
        result.fact(
            f"{order.asset.code} work order {str(order.pk)[:8]}",
            f"{rec.action} {rec.component} by {_plain(rec.due_by)}, {order.status}",
            record=order.asset.code,
        )
        result.cite(
            f"Work order on {order.asset.code}",
            _path("maintenance-work-order-detail", ctx.organization, order.pk),
            "record",
        )
    return result


# --- scheduling -------------------------------------------------------------------------------------------------


def _latest_run(ctx: ToolContext) -> scheduling.Run | None:
    return (
        scheduling.Run.objects.filter(organization=ctx.organization, schedule__isnull=False)
        .select_related("job")
        .order_by("-created_at")
        .first()
    )


def _no_plan(result: ToolResult) -> ToolResult:
    result.empty_reason = "There is no finished production plan yet: start an optimisation run first."
    return result


def _cite_run(result: ToolResult, ctx: ToolContext, run: scheduling.Run) -> None:
    result.cite(f"Scheduling run {str(run.pk)[:8]}", _path("scheduling-run-detail", ctx.organization, run.pk), "record")


def _plan(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    run = _latest_run(ctx)
    if run is None:
        return _no_plan(result)
    result.fact("run", str(run.pk), record=str(run.pk))
    result.fact("objective", run.objective)
    result.fact("solver status", run.solver_status or run.job.status)
    result.fact("orders planned", len(run.problem.get("orders", [])))
    kpis = scheduling_outputs.kpis_json(run)
    if kpis:
        result.fact("finishes at", kpis["finishes_at"])
    machines = _args_codes(ctx, "machine")
    for row in scheduling_outputs.schedule_rows(run):
        if len(result.facts) >= FACTS_LIMIT:
            break
        if machines and row["machine"] not in machines:
            continue
        if ctx.resolution.codes("order") and row["order"] not in ctx.resolution.codes("order"):
            continue
        if machines or ctx.resolution.codes("order"):
            result.fact(
                f"{row['order']} operation {row['operation']} on {row['machine']}", f"{row['start']} to {row['end']}"
            )
    _cite_run(result, ctx, run)
    return result


def _kpis(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    run = _latest_run(ctx)
    if run is None or not run.kpis:
        return _no_plan(result)
    kpis = scheduling_outputs.kpis_json(run) or {}
    result.fact("run", str(run.pk), record=str(run.pk))
    result.fact("makespan", kpis["makespan_minutes"], unit="minutes")
    result.fact("finishes at", kpis["finishes_at"])
    result.fact("tardiness", kpis["tardiness_minutes"], unit="minutes")
    result.fact("weighted tardiness", kpis["weighted_tardiness"])
    result.fact("on-time rate", kpis["on_time_rate"])
    utilisation = kpis["utilisation"]
    if isinstance(utilisation, dict):
        for machine, value in sorted(utilisation.items())[:6]:
            result.fact(f"utilisation of {machine}", value)
    else:
        result.fact("utilisation", utilisation)
    _cite_run(result, ctx, run)
    return result


def _order_finishes(run: scheduling.Run) -> dict[str, int]:
    ends: dict[str, int] = {}
    for order, _, _, _, end, _ in run.schedule or []:
        ends[order] = max(ends.get(order, 0), end)
    return ends


def _late_orders(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    run = _latest_run(ctx)
    if run is None:
        return _no_plan(result)
    ends = _order_finishes(run)
    late = []
    for order in run.problem.get("orders", []):
        due, end = order.get("due"), ends.get(order["id"])
        if due is not None and end is not None and end > due:
            late.append((end - due, order["id"], due, end))
    late.sort(reverse=True)
    result.fact("run", str(run.pk), record=str(run.pk))
    result.fact("late orders", len(late))
    for minutes, code, due, end in late[:8]:
        result.fact(
            f"order {code}",
            f"{minutes} minutes late: due {scheduling_outputs.moment(run, due)}, "
            f"done {scheduling_outputs.moment(run, end)}",
            record=code,
        )
    _cite_run(result, ctx, run)
    return result


def _machine_load(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    run = _latest_run(ctx)
    if run is None:
        return _no_plan(result)
    busy: dict[str, int] = {}
    count: dict[str, int] = {}
    for _, _, machine, start, end, _ in run.schedule or []:
        busy[machine] = busy.get(machine, 0) + (end - start)
        count[machine] = count.get(machine, 0) + 1
    wanted = _args_codes(ctx, "machine")
    result.fact("run", str(run.pk), record=str(run.pk))
    for machine in sorted(busy, key=lambda m: (-busy[m], m)):
        if wanted and machine not in wanted:
            continue
        result.fact(f"{machine} busy", busy[machine], unit="minutes", record=machine)
        result.fact(f"{machine} operations", count[machine], record=machine)
    if wanted and not any(m in busy for m in wanted):
        result.empty_reason = f"The latest plan puts no operation on {', '.join(wanted)}."
    _cite_run(result, ctx, run)
    return result


def _costs(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    run = (
        scheduling.Run.objects.filter(organization=ctx.organization, costs__isnull=False)
        .order_by("-created_at")
        .first()
    )
    if run is None:
        result.empty_reason = "No plan with a cost breakdown exists: start a run with the cost objective."
        return result
    result.fact("run", str(run.pk), record=str(run.pk))
    for kind, value in sorted((run.costs or {}).get("by_kind", {}).items()):
        result.fact(f"{kind} cost", value)
    _cite_run(result, ctx, run)
    return result


# --- quality ----------------------------------------------------------------------------------------------------


def _analyses(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    qs = quality.Analysis.objects.filter(organization=ctx.organization).select_related("defect_code")
    codes = _args_codes(ctx, "defect")
    if codes:
        qs = qs.filter(defect_code__code__in=codes)
    analysis = qs.exclude(verdict="").order_by("-created_at").first()
    if analysis is None:
        what = ", ".join(codes) or "any defect"
        result.empty_reason = f"No finished root-cause analysis exists for {what}."
        return result
    result.fact("analysis", str(analysis.pk), record=str(analysis.pk))
    result.fact("defect code", analysis.defect_code.code, record=analysis.defect_code.code)
    result.fact("verdict", analysis.verdict)
    if analysis.message:
        result.fact("finding", analysis.message)
    for cause in (analysis.result or {}).get("causes", [])[:5]:
        detail = f"rank {cause.get('rank')}"
        if cause.get("station"):
            detail += f" at station {cause['station']}"
        if cause.get("p_adjusted") is not None:
            detail += f", adjusted p {_plain(float(cause['p_adjusted']))}"
        result.fact(f"cause {cause.get('name')}", detail)
    result.cite(
        f"Analysis of {analysis.defect_code.code}",
        _path("quality-analysis-detail", ctx.organization, analysis.pk),
        "record",
    )
    return result


def _unit_trace(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    serial = ctx.resolution.first("unit")
    lot_code = ctx.resolution.first("lot")
    if serial:
        unit = quality.Unit.objects.get(organization=ctx.organization, serial=serial)
        trace = quality_selectors.unit_trace_back(organization=ctx.organization, unit=unit)
        result.fact("unit", trace["unit"], record=trace["unit"])
        result.fact("status", trace["status"])
        for lot in trace["lots"][:4]:
            result.fact("lot", f"{lot['code']} ({lot['material']})" if lot["material"] else lot["code"])
        for step in trace["steps"][:4]:
            result.fact(f"station {step['station']}", f"machine {step['machine']} at {step['first']}")
        for inspection in trace["inspections"][:3]:
            if inspection["defect_code"]:
                result.fact(f"defect {inspection['defect_code']}", f"on {inspection['characteristic']}")
        result.cite(f"Unit {serial}", _path("quality-unit-detail", ctx.organization, unit.pk), "record")
        return result
    if lot_code:
        lot = quality.Lot.objects.get(organization=ctx.organization, code=lot_code)
        trace = quality_selectors.lot_trace_forward(organization=ctx.organization, lot=lot)
        result.fact("lot", trace["lot"], record=trace["lot"])
        if trace["material"]:
            result.fact("material", trace["material"])
        result.fact("units built with it", len(trace["units"]))
        result.fact("units that failed inspection", trace["failed"])
        for status, n in sorted(trace["by_status"].items()):
            result.fact(f"units {status}", n)
        result.cite(f"Lot {lot_code}", _path("quality-lot-detail", ctx.organization, lot.pk), "record")
        return result
    result.empty_reason = "Name a unit serial or a lot code of yours to trace."
    return result


# --- documents and usage ----------------------------------------------------------------------------------------


DOCUMENT_MIN_SIMILARITY = 0.3
_GENERIC = frozenset(
    [
        "about",
        "according",
        "does",
        "document",
        "documents",
        "manual",
        "manuals",
        "procedure",
        "procedures",
        "report",
        "reports",
        "what",
        "which",
        "says",
        "written",
        "with",
        "when",
        "where",
        "should",
        "must",
        "often",
        "many",
        "much",
        "there",
        "have",
        "this",
        "that",
        "from",
        "your",
        "will",
        "into",
        "after",
        "before",
        "tell",
        "show",
        "handbuch",
        "anleitung",
        "dokument",
        "laut",
        "steht",
        "매뉴얼",
        "설명서",
        "절차",
        "문서",
    ]
)


def _relevant(question: str, text: str, similarity: float | None) -> bool:
    """A passage answers only when it is close in meaning (MiniLM, English) or shares a telling word with the
    question (how Korean and German are found; a Korean word is also tried without its last syllable, its particle:
    '펌프는' finds '펌프'). Otherwise every question would 'find' the nearest passage of an unrelated manual."""
    if similarity is not None and similarity >= DOCUMENT_MIN_SIMILARITY:
        return True
    folded = text.casefold()
    for word in tokens(question):
        if len(word) < 2 or word in _GENERIC or (word.isascii() and len(word) < 4):
            continue
        if word in folded or (not word.isascii() and len(word) >= 3 and word[:-1] in folded):
            return True
    return False


def _documents(ctx: ToolContext, args: dict) -> ToolResult:
    from . import selectors
    from .serializers import document_path

    result = ToolResult()
    hits = [
        hit
        for hit in selectors.passage_search(organization=ctx.organization, query=ctx.question, k=3)
        if _relevant(ctx.question, hit.passage.text, hit.similarity)
    ]
    for hit in hits:
        where = f"p. {hit.passage.page}" if hit.passage.page else (hit.passage.section or "")
        result.fact(
            f"{hit.passage.document.title}" + (f", {where}" if where else ""),
            hit.passage.text[:600],
            record=str(hit.passage.document_id),
        )
        result.cite(
            hit.passage.document.title,
            document_path(hit.passage.document),
            "document",
            page=hit.passage.page,
            section=hit.passage.section,
        )
    if not hits:
        result.empty_reason = "None of your documents mentions this."
    return result


def _usage(ctx: ToolContext, args: dict) -> ToolResult:
    result = ToolResult()
    subscription = Subscription.objects.filter(organization=ctx.organization).select_related("plan").first()
    if subscription is None:
        result.empty_reason = "The organisation has no subscription, so no quota applies."
        return result
    summary = billing_selectors.usage_summary(subscription=subscription, now=timezone.now())
    result.fact("plan", summary.plan_name)
    result.fact("period", f"{summary.period.start:%Y-%m-%d} to {summary.period.end:%Y-%m-%d}")
    for meter in sorted(summary.meters, key=lambda m: (-(m.used / m.limit if m.limit else 0), m.meter))[:8]:
        limit = "no limit" if meter.limit is None else f"limit {meter.limit}"
        result.fact(meter.meter, f"{meter.used} of {meter.included} included, {limit}", unit=meter.unit)
    result.cite("Usage", _path("billing-usage", ctx.organization), "record")
    return result


# --- writes: proposed, then executed on confirmation --------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|hours?|hrs?|시간|stunden?|min|minutes?|minuten?|분)\b", re.IGNORECASE)


def _duration_minutes(question: str) -> int:
    match = _DURATION.search(question)
    if not match:
        return 120
    amount, unit = float(match.group(1)), match.group(2).casefold()
    return max(1, round(amount * 60 if unit.startswith(("h", "시", "stu")) else amount))


def _propose_run(ctx: ToolContext) -> Proposed | str:
    machines = ctx.resolution.codes("machine")
    rush = ctx.resolution.codes("order")
    base = _latest_run(ctx)
    if (machines or rush) and base is None:
        return "There is no finished plan to re-plan with a breakdown or rush order; start a plain run first."
    now = timezone.now().replace(second=0, microsecond=0)
    if base is not None and (machines or rush):
        breakdown = None
        if machines:
            breakdown = {
                "machine": machines[0],
                "from": now.isoformat(),
                "duration_minutes": _duration_minutes(ctx.question),
            }
        arguments = {"base_run": str(base.pk), "breakdown": breakdown, "rush_orders": rush}
        parts = []
        if breakdown:
            parts.append(f"{breakdown['machine']} down for {breakdown['duration_minutes']} minutes from now")
        if rush:
            parts.append(f"rush order(s) {', '.join(rush)}")
        return Proposed(arguments, f"Re-plan run {str(base.pk)[:8]} with " + " and ".join(parts) + ".")
    plain: dict[str, object] = {"objective": "weighted_tardiness", "time_limit_s": 30}
    return Proposed(plain, "Start an optimisation run over all open orders (weighted tardiness, 30 s).")


def _execute_run(*, organization: Organization, actor: Actor, arguments: dict) -> dict:
    if arguments.get("base_run"):
        base = scheduling.Run.objects.get(organization=organization, pk=arguments["base_run"])
        breakdown = arguments.get("breakdown")
        if breakdown:
            breakdown = {**breakdown, "from": datetime.fromisoformat(breakdown["from"])}
        run = scheduling_runs.run_reschedule(
            run=base, actor=actor, breakdown=breakdown, rush_order_codes=arguments.get("rush_orders") or ()
        )
    else:
        run = scheduling_runs.run_create(
            organization=organization,
            actor=actor,
            objective=arguments["objective"],
            time_limit_s=int(arguments["time_limit_s"]),
        )
    return {"run": str(run.pk), "job": str(run.job_id), "url": _path("scheduling-run-detail", organization, run.pk)}


def _propose_work_order(ctx: ToolContext) -> Proposed | str:
    asset = ctx.resolution.first("asset")
    if asset is None:
        return "Name the asset (its code) the work order is for."
    component = "general inspection"
    match = re.search(
        r"\b(?:inspect|replace|check|service|repair|for|on|of) the ([\w\- ]{2,40}?)(?: of| on| at| for|[.?!,]|$)",
        ctx.question,
        re.IGNORECASE,
    )
    if match and normalise(match.group(1)) != normalise(asset):
        component = match.group(1).strip()
    action = "replace" if re.search(r"\b(replace|ersetzen|교체)", ctx.question, re.IGNORECASE) else "inspect"
    priority = "urgent" if re.search(r"\b(urgent|asap|dringend|긴급)", ctx.question, re.IGNORECASE) else "medium"
    due = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    arguments = {
        "asset": asset,
        "component": component,
        "action": action,
        "priority": priority,
        "due_by": due.isoformat(),
        "reason": f"Asked of the copilot: {ctx.question[:300]}",
    }
    return Proposed(
        arguments, f"Open a work order on {asset}: {action} the {component}, {priority}, due {_plain(due)}."
    )


def normalise(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _execute_work_order(*, organization: Organization, actor: Actor, arguments: dict) -> dict:
    asset = maintenance.Asset.objects.get(organization=organization, code=arguments["asset"])
    order = maintenance_services.work_order_open(
        asset=asset,
        component=arguments["component"],
        actor=actor,
        action=arguments["action"],
        priority=arguments["priority"],
        due_by=datetime.fromisoformat(arguments["due_by"]),
        reason=arguments.get("reason", ""),
    )
    return {"work_order": str(order.pk), "url": _path("maintenance-work-order-detail", organization, order.pk)}


def _propose_analysis(ctx: ToolContext) -> Proposed | str:
    defect = ctx.resolution.first("defect")
    if defect is None:
        return "Name the defect code to investigate."
    return Proposed({"defect_code": defect}, f"Start a root-cause analysis of defect {defect} over all its failures.")


def _execute_analysis(*, organization: Organization, actor: Actor, arguments: dict) -> dict:
    defect = quality.DefectCode.objects.get(organization=organization, code=arguments["defect_code"])
    analysis = quality_services.analysis_start(organization=organization, defect_code=defect, actor=actor)
    return {"analysis": str(analysis.pk), "url": _path("quality-analysis-detail", organization, analysis.pk)}


# --- the registry -----------------------------------------------------------------------------------------------

_NO_ARGS: dict = {"type": "object", "properties": {}, "additionalProperties": False}


def _codes_schema(*names: str) -> dict:
    return {
        "type": "object",
        "properties": {name: {"type": "array", "items": {"type": "string"}} for name in names},
        "additionalProperties": False,
    }


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in [
        Tool(
            "maintenance_asset_health",
            "Health score and remaining useful life of an asset (cycles, band, predicted failure time, drivers).",
            (
                "What is the health of PRESS-4?",
                "How much remaining life does the press have?",
                "When will the pump fail?",
                "Which asset is in the worst condition?",
                "How many cycles are left before failure?",
            ),
            _codes_schema("assets"),
            Scope.ORG_READ,
            kinds=("asset",),
            keywords=("health", "remaining life", "rul", "잔여 수명", "상태", "건강", "restlebensdauer", "zustand"),
            run=_asset_health,
        ),
        Tool(
            "maintenance_anomalies",
            "Anomalies detected in an asset's telemetry: channel, when, how strong.",
            (
                "Were there any anomalies on PRESS-4?",
                "Did the sensors show unusual readings?",
                "Which channels behaved abnormally last week?",
            ),
            _codes_schema("assets"),
            Scope.ORG_READ,
            kinds=("asset",),
            keywords=("anomal", "unusual", "abnormal", "이상", "anomalie", "auffällig"),
            run=_anomalies,
        ),
        Tool(
            "maintenance_diagnoses",
            "Vibration diagnoses of an asset: which component has which fault (bearing, imbalance, misalignment).",
            (
                "What fault does the vibration analysis show on PRESS-4?",
                "Is there a bearing fault?",
                "What did the vibration diagnosis find?",
            ),
            _codes_schema("assets"),
            Scope.ORG_READ,
            kinds=("asset",),
            keywords=(
                "vibration",
                "diagnos",
                "bearing",
                "imbalance",
                "misalignment",
                "진동",
                "베어링",
                "schwingung",
                "lager",
            ),
            run=_diagnoses,
        ),
        Tool(
            "maintenance_recommendations",
            "Recommended maintenance: which component of an asset to inspect or replace by when, and its priority.",
            (
                "Which part of PRESS-4 fails next?",
                "What maintenance is due?",
                "Which component should we replace first?",
                "What should we inspect this week?",
            ),
            _codes_schema("assets"),
            Scope.ORG_READ,
            kinds=("asset",),
            keywords=("recommend", "fails next", "component", "part", "부품", "정비", "wartung", "bauteil"),
            run=_recommendations,
        ),
        Tool(
            "maintenance_work_orders",
            "The open maintenance work orders, per asset, with what to do by when and their status.",
            (
                "Which work orders are open?",
                "Is there a work order for PRESS-4?",
                "What maintenance jobs are pending?",
                "List the open work orders.",
            ),
            _codes_schema("assets"),
            Scope.ORG_READ,
            kinds=("asset",),
            keywords=("work order", "work orders", "작업 지시", "작업지시", "arbeitsauftrag", "arbeitsaufträge"),
            run=_work_orders,
        ),
        Tool(
            "scheduling_plan",
            "The current production plan: the latest optimisation run, its objective and when it finishes; "
            "operations on a machine or of an order.",
            (
                "What is the current production plan?",
                "What runs on CNC-2 in the plan?",
                "When is order ORD-1001 scheduled?",
                "Show me the schedule.",
            ),
            _codes_schema("machines", "orders"),
            Scope.ORG_READ,
            kinds=("machine", "order"),
            keywords=("plan", "schedule", "scheduled", "생산 계획", "일정", "produktionsplan", "zeitplan"),
            run=_plan,
        ),
        Tool(
            "scheduling_kpis",
            "Key figures of the current plan: makespan, tardiness, on-time rate, machine utilisation.",
            (
                "What is the makespan of the plan?",
                "What is our on-time rate?",
                "How much tardiness does the schedule have?",
                "What are the KPIs of the plan?",
            ),
            _NO_ARGS,
            Scope.ORG_READ,
            keywords=("kpi", "makespan", "on-time", "on time", "tardiness", "납기 준수율", "kennzahl", "termintreue"),
            run=_kpis,
        ),
        Tool(
            "scheduling_late_orders",
            "Orders the current plan finishes after their due date, how late each is.",
            (
                "Which orders are late?",
                "Which orders will miss their due date?",
                "Are any orders behind schedule?",
            ),
            _codes_schema("orders"),
            Scope.ORG_READ,
            kinds=("order",),
            keywords=("late", "overdue", "miss", "delay", "지연", "납기", "verspätet", "verspätung", "verzug"),
            run=_late_orders,
        ),
        Tool(
            "scheduling_machine_load",
            "How loaded each machine is in the current plan: busy minutes and number of operations.",
            (
                "How busy is CNC-2?",
                "Which machine is the bottleneck?",
                "What is the load on each machine?",
            ),
            _codes_schema("machines"),
            Scope.ORG_READ,
            kinds=("machine",),
            keywords=("load", "busy", "bottleneck", "capacity", "부하", "가동", "auslastung", "engpass"),
            run=_machine_load,
        ),
        Tool(
            "scheduling_costs",
            "The cost breakdown of the latest cost-optimised plan: energy, purchases, lateness, by kind.",
            (
                "What does the plan cost?",
                "Break down the costs of the schedule.",
                "How much do we spend on energy and materials?",
            ),
            _NO_ARGS,
            Scope.ORG_READ,
            keywords=("cost", "costs", "spend", "price", "비용", "kosten"),
            run=_costs,
        ),
        Tool(
            "quality_analyses",
            "Root-cause analyses of a defect: the verdict and the ranked causes (process variables, stations).",
            (
                "Where did the cracks come from?",
                "What is the root cause of defect CRACK?",
                "Which process variable causes the defects?",
                "Why do units fail inspection?",
            ),
            _codes_schema("defect_codes"),
            Scope.ORG_READ,
            kinds=("defect",),
            keywords=("root cause", "cause", "defect", "crack", "원인", "불량", "ursache", "fehler", "riss"),
            run=_analyses,
        ),
        Tool(
            "quality_trace",
            "Traceability: which lots and machines a unit went through, or which units a lot went into.",
            (
                "Which lots went into unit SN-1001?",
                "Trace unit SN-1001 back.",
                "Which units used lot LOT-7?",
                "Where was this serial number made?",
            ),
            _codes_schema("units", "lots"),
            Scope.ORG_READ,
            kinds=("unit", "lot"),
            keywords=("trace", "lot", "serial", "genealogy", "추적", "로트", "rückverfolg", "charge"),
            run=_unit_trace,
        ),
        Tool(
            "documents_search",
            "Search the organisation's documents (manuals, procedures, reports) and quote the passages with page.",
            (
                "What does the manual say about the hydraulic pump?",
                "What is the procedure for changing the filter?",
                "How often must the bearing be lubricated according to the manual?",
                "What torque does the procedure specify?",
            ),
            {"type": "object", "properties": {"query": {"type": "string"}}, "additionalProperties": False},
            Scope.ORG_READ,
            keywords=(
                "manual",
                "procedure",
                "document",
                "according to",
                "매뉴얼",
                "설명서",
                "절차",
                "handbuch",
                "anleitung",
            ),
            run=_documents,
        ),
        Tool(
            "usage_quota",
            "The organisation's usage this month against its plan's quota, per meter.",
            (
                "How much of our quota have we used?",
                "How many tokens did we use this month?",
                "Are we close to our plan's limit?",
            ),
            _NO_ARGS,
            Scope.BILLING,
            keywords=("quota", "usage", "limit", "tokens", "사용량", "한도", "kontingent", "verbrauch"),
            run=_usage,
        ),
        Tool(
            "scheduling_run_start",
            "Start an optimisation run: re-plan with a machine breakdown or rush orders, or plan all open orders.",
            (
                "Re-plan with CNC-2 broken down for 4 hours.",
                "Given the breakdown on CNC-2, what is the best plan?",
                "Add rush order ORD-1042 to the plan.",
                "Start a new optimisation run.",
            ),
            {
                "type": "object",
                "properties": {
                    "base_run": {"type": "string"},
                    "breakdown": {
                        "type": ["object", "null"],
                        "properties": {
                            "machine": {"type": "string"},
                            "from": {"type": "string", "format": "date-time"},
                            "duration_minutes": {"type": "integer", "minimum": 1},
                        },
                    },
                    "rush_orders": {"type": "array", "items": {"type": "string"}},
                    "objective": {"type": "string"},
                    "time_limit_s": {"type": "integer"},
                },
            },
            Scope.JOBS,
            kinds=("machine", "order"),
            keywords=(
                "breakdown",
                "broken",
                "re-plan",
                "replan",
                "reschedule",
                "rush",
                "고장",
                "긴급 주문",
                "ausfall",
                "eilauftrag",
            ),
            propose=_propose_run,
            execute=_execute_run,
        ),
        Tool(
            "maintenance_work_order_open",
            "Open a maintenance work order on an asset: inspect or replace a component.",
            (
                "Open a work order to inspect the bearing of PRESS-4.",
                "Create a work order for PRESS-4.",
                "Raise a maintenance ticket to replace the pump.",
            ),
            {
                "type": "object",
                "properties": {
                    "asset": {"type": "string"},
                    "component": {"type": "string"},
                    "action": {"enum": ["inspect", "replace"]},
                    "priority": {"enum": ["low", "medium", "high", "urgent"]},
                    "due_by": {"type": "string", "format": "date-time"},
                    "reason": {"type": "string"},
                },
                "required": ["asset", "component"],
            },
            Scope.ORG_WRITE,
            kinds=("asset",),
            keywords=("open a work order", "create a work order", "작업 지시 생성", "arbeitsauftrag anlegen"),
            propose=_propose_work_order,
            execute=_execute_work_order,
        ),
        Tool(
            "quality_analysis_start",
            "Open an investigation: start a root-cause analysis of a defect code.",
            (
                "Investigate defect CRACK.",
                "Start a root-cause analysis of the cracks.",
                "Open an investigation into defect SCRATCH.",
            ),
            {"type": "object", "properties": {"defect_code": {"type": "string"}}, "required": ["defect_code"]},
            Scope.JOBS,
            kinds=("defect",),
            keywords=("investigate", "investigation", "조사", "untersuch"),
            propose=_propose_analysis,
            execute=_execute_analysis,
        ),
    ]
}

# Words that ask for a change. A write tool is chosen only when the user's own message holds one.
IMPERATIVES = (
    "open",
    "create",
    "raise",
    "start",
    "launch",
    "run",
    "re-plan",
    "replan",
    "reschedule",
    "re-schedule",
    "add",
    "investigate",
    "plan with",
    "best plan",
    "열어",
    "생성",
    "시작",
    "재계획",
    "öffne",
    "erstelle",
    "starte",
    "lege",
    "plane neu",
    "untersuche",
)


def tool_get(name: str) -> Tool:
    return TOOLS[name]
