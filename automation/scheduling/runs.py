"""Writes of optimisation runs: starting one, re-planning one, recording what the solver found.

A run is created with the exact problem it will solve (a snapshot in engine minutes) and a job of kind
`scheduling.optimize` in the same transaction; the job is dispatched when that transaction commits, so the
worker always finds the run.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.quotas import quota_check
from jobs.services import job_create
from tenants.actor import Actor
from tenants.models import Organization

from . import services
from .conf import DEFAULT_HORIZON_DAYS, OPTIMIZE_JOB_KIND
from .engine import (
    Assignment,
    FrozenOp,
    Problem,
    ProblemError,
    SolveResult,
    add_downtime,
    compute_kpis,
    declined_orders,
    freeze_started,
    problem_from_jobshop,
)
from .engine.costs import MINUTES_PER_DAY
from .engine.forecast import PriceForecast
from .engine.scenarios import (
    Change,
    LeadTimeChange,
    MachineDown,
    PriceChange,
    TariffChange,
    apply_scenario,
    sample_price_scenarios,
)
from .models import Machine, Order, Run
from .outputs import moment
from .problems import problem_build, problem_merge
from .snapshot import (
    changes_to_json,
    costs_to_json,
    forecasts_to_json,
    frozen_from_json,
    frozen_to_json,
    problem_from_json,
    problem_to_json,
    schedule_from_json,
    schedule_to_json,
)
from .timegrid import Horizon, truncate_to_minute


def _weights(objective: str, weights: dict | None) -> dict:
    if objective != Run.Objective.WEIGHTED_MIX:
        return {}
    return {"makespan": 1, "tardiness": 1, **(weights or {})}


def _run_start(
    *,
    organization: Organization,
    actor: Actor | None,
    kind: str,
    objective: str,
    weights: dict | None,
    time_limit_s: int,
    horizon_start: datetime,
    problem: Problem,
    operation_names: dict,
    parent: Run | None = None,
    frozen: Sequence[FrozenOp] = (),
    now_minute: int = 0,
    changes: dict | None = None,
    forecasts: list | None = None,
    robust: dict | None = None,
) -> Run:
    if objective == Run.Objective.COST and problem.cost is None:
        raise ValidationError({"objective": ["cost needs factory data: prices, stock, power and tariffs."]})
    if objective not in (Run.Objective.MAKESPAN, Run.Objective.COST) and all(
        order.due is None for order in problem.orders
    ):
        raise ValidationError({"objective": [f"{objective} needs orders with due dates, and none has one."]})
    run_id = uuid.uuid4()
    params = {
        "run_id": str(run_id),
        "kind": kind,
        "objective": objective,
        "time_limit_s": time_limit_s,
        "orders": len(problem.orders),
    }
    if parent is not None:
        params["replans"] = str(parent.id)
    quota_check(organization=organization, meter="optimization.solver_seconds", quantity=time_limit_s)
    with transaction.atomic():
        job = job_create(organization=organization, kind=OPTIMIZE_JOB_KIND, params=params, actor=actor)
        return Run.objects.create(
            id=run_id,
            organization=organization,
            job=job,
            parent=parent,
            kind=kind,
            objective=objective,
            weights=_weights(objective, weights),
            time_limit_s=time_limit_s,
            horizon_start=horizon_start,
            now_minute=now_minute,
            problem=problem_to_json(problem),
            operation_names=operation_names,
            frozen=frozen_to_json(frozen),
            changes=changes or {},
            forecasts=forecasts or [],
            robust=robust,
            requested_by_label=actor.label if actor else "system",
        )


def _orders_by_code(organization: Organization, codes: Sequence[str], field: str) -> list[Order]:
    orders = list(Order.objects.filter(organization=organization, code__in=codes).select_related("product"))
    missing = sorted(set(codes) - {o.code for o in orders})
    if missing:
        raise ValidationError({field: [f"No order with the code {code!r}." for code in missing]})
    return orders


def run_create(
    *,
    organization: Organization,
    actor: Actor | None,
    objective: str,
    time_limit_s: int,
    weights: dict | None = None,
    order_codes: Sequence[str] | None = None,
    horizon_start: datetime | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    jobshop: dict | None = None,
    robust: dict | None = None,
) -> Run:
    """Start optimising the organisation's orders (all, or those named), or a plain job-shop problem.

    ``robust`` (objective cost): ``{"scenarios": [[change, ...], ...]}`` (price and tariff changes, as in a
    what-if) or ``{"samples": n}`` (price paths drawn from the forecasts' intervals): the plan is the one with the
    lowest expected cost over those scenarios (``engine.robust``)."""
    if robust is not None and objective != Run.Objective.COST:
        raise ValidationError({"robust": ["A robust plan weighs costs: it needs the objective cost."]})
    start = truncate_to_minute(horizon_start or timezone.now())
    if jobshop is not None:
        try:
            problem = problem_from_jobshop(
                jobshop["jobs"],
                release_dates=jobshop.get("release_dates"),
                due_dates=jobshop.get("due_dates"),
                weights=jobshop.get("weights"),
            )
        except ProblemError as exc:
            raise ValidationError({"jobshop": exc.issues}) from exc
        return _run_start(
            organization=organization,
            actor=actor,
            kind=Run.Kind.JOBSHOP,
            objective=objective,
            weights=weights,
            time_limit_s=time_limit_s,
            horizon_start=start,
            problem=problem,
            operation_names={},
        )
    if order_codes:
        orders = _orders_by_code(organization, order_codes, "orders")
    else:
        orders = list(Order.objects.filter(organization=organization).select_related("product").order_by("code"))
    if not orders:
        raise ValidationError({"orders": ["There are no orders to schedule."]})
    try:
        built = problem_build(
            orders=orders,
            horizon=Horizon.beginning(start, days=horizon_days),
            with_cost=objective == Run.Objective.COST,
        )
    except ProblemError as exc:
        raise ValidationError({"orders": exc.issues}) from exc
    horizon = Horizon.beginning(start, days=horizon_days)
    return _run_start(
        organization=organization,
        actor=actor,
        kind=Run.Kind.FACTORY,
        objective=objective,
        weights=weights,
        time_limit_s=time_limit_s,
        horizon_start=start,
        problem=built.problem,
        operation_names=built.operation_names,
        forecasts=forecasts_to_json(built.problem, built.forecasts),
        robust=None if robust is None else _robust(robust, built.problem, built.forecasts, horizon),
    )


SAMPLES_SEED = 0  # sampled price scenarios are the same for the same forecasts


def _robust(asked: dict, problem: Problem, forecasts: Sequence[PriceForecast], horizon: Horizon) -> dict:
    """The robust request as stored: what was asked, and its scenarios in engine units."""
    if "samples" in asked:
        if not forecasts:
            raise ValidationError(
                {"robust": ["Samples are drawn from price forecasts, and no supplier here has only price history."]}
            )
        drawn = sample_price_scenarios(forecasts, samples=asked["samples"], seed=SAMPLES_SEED)
        scenarios = [changes_to_json(paths) for paths in drawn]
    else:
        scenarios = []
        for i, changes in enumerate(asked["scenarios"]):
            engine_changes = scenario_changes(changes, horizon, field=f"robust.scenarios[{i}]")
            _applied(problem, engine_changes, field=f"robust.scenarios[{i}]")
            scenarios.append(changes_to_json(engine_changes))
    return {"asked": _json_ready(asked), "scenarios": scenarios}


def _json_ready(value):
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def scenario_changes(changes: Sequence[dict], horizon: Horizon, *, field: str) -> list[Change]:
    """API changes (validated by ``ScenarioChangeSerializer``) in engine units; rush orders are left out."""
    converted: list[Change] = []
    for change in changes:
        kind = change["kind"]
        from_day = 0
        if kind in ("material_price", "tariff") and change.get("from") is not None:
            from_day = max(0, -(-horizon.minute_up(change["from"]) // MINUTES_PER_DAY))
        if kind == "material_price":
            converted.append(PriceChange(change["material"], change["percent"], from_day))
        elif kind == "tariff":
            converted.append(
                TariffChange(
                    change["factor"], tuple(change.get("hours") or ()), from_day, first_hour=horizon.start.hour
                )
            )
        elif kind == "lead_time":
            converted.append(LeadTimeChange(change["supplier"], change["days"]))
        elif kind == "machine_down":
            start = max(0, horizon.minute_down(change["from"]))
            end = horizon.minute_up(change["from"] + timedelta(minutes=change["duration_minutes"]))
            if end <= start:
                raise ValidationError({field: ["The machine is up again before the plan starts."]})
            converted.append(MachineDown(change["machine"], start, end))
    return converted


def _applied(problem: Problem, changes: Sequence[Change], *, field: str) -> Problem:
    try:
        return apply_scenario(problem, changes)
    except ProblemError as exc:
        raise ValidationError({field: exc.issues}) from exc


def run_what_if(*, run: Run, actor: Actor | None, changes: Sequence[dict], time_limit_s: int | None = None) -> Run:
    """Re-optimise a cost run's plan under a scenario (``changes``: price, tariff, lead time, machine down, rush
    order); the new run's parent is ``run``, and ``GET .../comparison`` sets the two plans side by side."""
    if run.objective != Run.Objective.COST or run.schedule is None:
        raise ValidationError(
            {"non_field_errors": ["A what-if compares costs: it needs a finished cost run with a plan."]}
        )
    problem = problem_from_json(run.problem)
    horizon = Horizon(run.horizon_start, problem.horizon or 0)
    operation_names = dict(run.operation_names)
    rush = [c["order"] for c in changes if c["kind"] == "rush_order"]
    if rush:
        if run.kind != Run.Kind.FACTORY:
            raise ValidationError({"changes": ["Rush orders can only be added to a plan of factory orders."]})
        try:
            built = problem_build(
                orders=_orders_by_code(run.organization, rush, "changes"), horizon=horizon, with_cost=True
            )
            problem = problem_merge(problem, built.problem)
        except ProblemError as exc:
            raise ValidationError({"changes": exc.issues}) from exc
        operation_names = {**built.operation_names, **operation_names}
    problem = _applied(problem, scenario_changes(changes, horizon, field="changes"), field="changes")
    return _run_start(
        organization=run.organization,
        actor=actor,
        kind=run.kind,
        objective=run.objective,
        weights=run.weights,
        time_limit_s=time_limit_s or run.time_limit_s,
        horizon_start=run.horizon_start,
        problem=problem,
        operation_names=operation_names,
        parent=run,
        frozen=frozen_from_json(run.frozen),
        now_minute=run.now_minute,
        changes={"what_if": _json_ready(list(changes))},
        forecasts=run.forecasts,
    )


def run_reschedule(
    *,
    run: Run,
    actor: Actor | None,
    now: datetime | None = None,
    breakdown: dict | None = None,
    rush_order_codes: Sequence[str] = (),
    objective: str | None = None,
    weights: dict | None = None,
    time_limit_s: int | None = None,
) -> Run:
    """Re-plan from `now`: operations already started stay as they are, the rest is optimised again.

    `breakdown` ({"machine", "from", "duration_minutes"}) makes a machine unavailable; an operation it
    interrupts starts again from scratch. For factory data it is also recorded as the machine's downtime, so
    later runs know of it. `rush_order_codes` adds orders that were not in the plan. The previous plan is the
    solver's starting point.
    """
    if run.schedule is None:
        raise ValidationError(
            {
                "non_field_errors": [
                    f"This run has no schedule to re-plan (its job is {run.job.status}); "
                    "wait for it or start a new run."
                ]
            }
        )
    now = now or timezone.now()
    problem = problem_from_json(run.problem)
    horizon = Horizon(run.horizon_start, problem.horizon or 0)
    now_minute = max(0, horizon.minute_up(now))
    operation_names = dict(run.operation_names)
    changes: dict = {"now": now.isoformat()}
    if breakdown is not None:
        problem = _with_breakdown(run, problem, horizon, breakdown, actor)
        changes["breakdown"] = {
            "machine": breakdown["machine"],
            "from": breakdown["from"].isoformat(),
            "duration_minutes": breakdown["duration_minutes"],
        }
    if rush_order_codes:
        if run.kind != Run.Kind.FACTORY:
            raise ValidationError({"rush_orders": ["Rush orders can only be added to a plan of factory orders."]})
        rush = _orders_by_code(run.organization, rush_order_codes, "rush_orders")
        try:
            built = problem_build(orders=rush, horizon=horizon, with_cost=problem.cost is not None)
            problem = problem_merge(problem, built.problem)
        except ProblemError as exc:
            raise ValidationError({"rush_orders": exc.issues}) from exc
        operation_names = {**built.operation_names, **operation_names}
        changes["rush_orders"] = sorted(rush_order_codes)
    frozen = freeze_started(problem, schedule_from_json(run.schedule), now=now_minute)
    objective = objective or run.objective
    return _run_start(
        organization=run.organization,
        actor=actor,
        kind=run.kind,
        objective=objective,
        weights=weights if weights is not None else run.weights,
        time_limit_s=time_limit_s or run.time_limit_s,
        horizon_start=run.horizon_start,
        problem=problem,
        operation_names=operation_names,
        parent=run,
        frozen=frozen,
        now_minute=now_minute,
        changes=changes,
        forecasts=run.forecasts,
    )


def _with_breakdown(run: Run, problem: Problem, horizon: Horizon, breakdown: dict, actor: Actor | None) -> Problem:
    machine_code, starts_at = breakdown["machine"], breakdown["from"]
    ends_at = starts_at + timedelta(minutes=breakdown["duration_minutes"])
    if machine_code not in {m.id for m in problem.machines}:
        raise ValidationError({"breakdown": [f"Machine {machine_code!r} is not in this plan."]})
    start, end = max(0, horizon.minute_down(starts_at)), horizon.minute_up(ends_at)
    if end <= start:
        raise ValidationError({"breakdown": ["The breakdown is over before the plan starts."]})
    if run.kind == Run.Kind.FACTORY:
        machine = Machine.objects.filter(organization_id=run.organization_id, code=machine_code).first()
        if machine is not None:  # a machine deleted since the plan was made only matters to this plan
            services.downtime_create(
                organization=run.organization,
                machine=machine,
                starts_at=starts_at,
                ends_at=ends_at,
                kind="breakdown",
                reason=f"Reported by {actor.label if actor else 'the system'} when re-planning",
            )
    return add_downtime(problem, machine=machine_code, start=start, end=end)


# --- recorded by the worker -----------------------------------------------------------------------------------------


def _finding_json(run: Run, problem: Problem, finding) -> dict:
    name = ""
    if finding.order is not None and finding.operation is not None:
        names = run.operation_names.get(problem.order(finding.order).product, [])
        name = names[finding.operation] if finding.operation < len(names) else ""
    return {
        "order": finding.order,
        "operation": finding.operation,
        "operation_name": name,
        "reason": str(finding.reason),
        "message": finding.message,
    }


def run_record_outcome(*, run: Run, problem: Problem, result: SolveResult, robust: dict | None = None) -> dict:
    """Store the solver's outcome on the run; returns the summary that becomes the job's result.

    ``robust``: a robust plan's report (expected, worst and per-scenario cost of each candidate plan)."""
    schedule: tuple[Assignment, ...] = result.schedule
    run.solver_status = result.status
    run.objective_value = result.objective
    run.best_bound = result.best_bound
    run.gap = result.gap
    run.solver_seconds = result.wall_time
    run.schedule = schedule_to_json(schedule) if schedule else None
    scheduled = {a.order for a in schedule}
    # declined optional orders (objective cost) have no finish, so the KPIs are those of the orders made
    made = dataclasses.replace(problem, orders=tuple(o for o in problem.orders if o.id in scheduled), cost=None)
    run.kpis = dataclasses.asdict(compute_kpis(made, schedule)) if schedule else None
    run.costs = costs_to_json(result.costs, declined=declined_orders(problem, schedule)) if result.costs else None
    run.purchases = [dataclasses.asdict(p) for p in result.purchases]
    run.findings = [_finding_json(run, problem, f) for f in result.findings]
    if robust is not None:
        run.robust = {**(run.robust or {}), "outcome": robust}
    run.save(
        update_fields=[
            "robust",
            "solver_status",
            "objective_value",
            "best_bound",
            "gap",
            "solver_seconds",
            "schedule",
            "kpis",
            "findings",
            "costs",
            "purchases",
        ]
    )
    summary: dict[str, Any] = {
        "run_id": str(run.id),
        "solver_status": result.status,
        "objective": result.objective,
        "best_bound": result.best_bound,
        "gap": result.gap,
        "wall_time_s": round(result.wall_time, 3),
        "operations": len(schedule),
    }
    if run.kpis:
        summary["makespan_minutes"] = run.kpis["makespan"]
        summary["finishes_at"] = moment(run, run.kpis["makespan"])
    if run.findings:
        summary["findings"] = run.findings
    if run.costs:
        summary["costs"] = run.costs["by_kind"]
        summary["purchase_orders"] = len(run.purchases)
    if robust is not None and robust.get("chosen"):
        summary["robust"] = {k: robust[k] for k in ("chosen", "expected_cost", "worst_cost", "scenarios")}
    return summary
