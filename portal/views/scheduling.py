"""Production scheduling: the factory's master data and its import, starting an optimisation, following it live,
and its results (Gantt chart, KPIs, the schedule, CSV), cancelling and re-planning after a breakdown.

Every action calls what the REST API calls (`automation.scheduling.importing`, `.runs`, `.outputs`,
`jobs.services.job_cancel`); the views only turn forms into those calls and results into pages.
"""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from automation.scheduling import importing, runs
from automation.scheduling.conf import DEFAULT_HORIZON_DAYS, MAX_HORIZON_DAYS, MAX_IMPORT_BYTES, MAX_TIME_LIMIT_S
from automation.scheduling.models import Machine, Order, Product, Run, Supplier
from automation.scheduling.outputs import (
    comparison,
    forecast_rows,
    kpis_json,
    purchase_rows,
    schedule_csv,
    schedule_png,
    schedule_rows,
)
from automation.scheduling.selectors import master_data_counts, run_list, run_solutions
from billing.errors import BillingRefusal
from foundation.api.downloads import attachment
from jobs.services import job_cancel
from tenants.roles import Scope

from ..access import OrgPage, errors_into
from ..charts import bar_chart, line_chart
from ..pages import DATETIME_WIDGET, JOB_STATUS, LiveFragment

LIST_LIMIT = 200  # rows of each master-data table shown; the counts say how many there are
SCHEDULE_LIMIT = 1000  # rows of the schedule table; the CSV has them all

# What each CSV file holds, for the import form: label and columns (the importer's own list).
ENTITY_LABELS = {
    "machines": gettext_lazy("Machines"),
    "shifts": gettext_lazy("Shifts"),
    "materials": gettext_lazy("Materials"),
    "suppliers": gettext_lazy("Suppliers"),
    "supplier_prices": gettext_lazy("Supplier prices"),
    "products": gettext_lazy("Products"),
    "operations": gettext_lazy("Operations"),
    "bom": gettext_lazy("Bills of materials"),
    "setup_times": gettext_lazy("Setup times"),
    "downtimes": gettext_lazy("Downtimes"),
    "orders": gettext_lazy("Orders"),
    "tariff": gettext_lazy("Electricity tariff"),
}

OBJECTIVES = [
    (Run.Objective.MAKESPAN, gettext_lazy("Makespan: finish all orders as early as possible")),
    (Run.Objective.WEIGHTED_TARDINESS, gettext_lazy("Weighted tardiness: be late as little as possible")),
    (Run.Objective.WEIGHTED_MIX, gettext_lazy("Weighted mix of both")),
    (Run.Objective.COST, gettext_lazy("Cost: materials, stock, energy, overtime and penalties, with purchasing")),
]

OBJECTIVE_NAMES: dict[str, Promise] = {
    Run.Objective.MAKESPAN: gettext_lazy("Makespan"),
    Run.Objective.WEIGHTED_TARDINESS: gettext_lazy("Weighted tardiness"),
    Run.Objective.WEIGHTED_MIX: gettext_lazy("Weighted mix"),
    Run.Objective.COST: gettext_lazy("Cost"),
}

# The kinds of a cost run's breakdown, for people.
COST_KINDS = {
    "material": gettext_lazy("Materials"),
    "holding": gettext_lazy("Holding stock"),
    "energy": gettext_lazy("Energy"),
    "overtime": gettext_lazy("Overtime"),
    "late": gettext_lazy("Late penalties"),
    "declined": gettext_lazy("Margin of declined orders"),
    "total": gettext_lazy("Total"),
}

# The engine's diagnosis reasons, for people.
REASONS = {
    "no_capable_machine": gettext_lazy("No machine can do this step within one of its working windows"),
    "material_never_arrives": gettext_lazy("A material this step needs has no delivery date"),
    "beyond_horizon": gettext_lazy("It cannot be finished within the planning horizon"),
    "due_before_earliest_finish": gettext_lazy("It is due before it can possibly be finished"),
    "frozen_conflict": gettext_lazy("It conflicts with work already started"),
    "conflicting_orders": gettext_lazy("Each order fits on its own, but not all of them together"),
}


def _columns_help(entity: str) -> str:
    required, optional = importing.CSV_COLUMNS[entity]
    text = _("Columns: %(required)s") % {"required": ", ".join(required)}
    if optional:
        text += " " + _("(optional: %(optional)s)") % {"optional": ", ".join(optional)}
    return text


class ImportForm(forms.Form):
    """One CSV file per entity, or one JSON document with lists under the same names."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "import-%s")  # the run form on the same page has an `orders` field too
        super().__init__(*args, **kwargs)
        for entity in importing.ENTITIES:
            self.fields[entity] = forms.FileField(
                label=ENTITY_LABELS[entity],
                required=False,
                help_text=_columns_help(entity),
                widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
            )
        self.fields["document"] = forms.FileField(
            label=_("JSON document"),
            required=False,
            help_text=_(
                "Instead of CSV files: one JSON object with lists under the same names (machines, products, "
                "orders, ...)."
            ),
            widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
        )


class RunForm(forms.Form):
    objective = forms.ChoiceField(label=gettext_lazy("Objective"), choices=OBJECTIVES, initial=Run.Objective.MAKESPAN)
    time_limit_s = forms.IntegerField(
        label=gettext_lazy("Time limit (seconds)"),
        min_value=1,
        max_value=MAX_TIME_LIMIT_S,
        initial=30,
        help_text=gettext_lazy("The solver stops then and keeps the best schedule."),
    )
    horizon_days = forms.IntegerField(
        label=gettext_lazy("Planning horizon (days)"),
        min_value=1,
        max_value=MAX_HORIZON_DAYS,
        initial=DEFAULT_HORIZON_DAYS,
    )
    horizon_start = forms.DateTimeField(
        label=gettext_lazy("Plan from (UTC)"),
        required=False,
        widget=DATETIME_WIDGET,
        help_text=gettext_lazy("Empty: now."),
    )
    orders = forms.CharField(
        label=gettext_lazy("Only these orders"),
        required=False,
        max_length=10_000,
        help_text=gettext_lazy("Codes separated by commas; empty: every order."),
    )
    weight_makespan = forms.IntegerField(
        label=gettext_lazy("Weight of the makespan"),
        min_value=0,
        max_value=10_000,
        initial=1,
        required=False,
        help_text=gettext_lazy("For the weighted mix only."),
    )
    weight_tardiness = forms.IntegerField(
        label=gettext_lazy("Weight of the tardiness"),
        min_value=0,
        max_value=10_000,
        initial=1,
        required=False,
        help_text=gettext_lazy("For the weighted mix only."),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "run-%s")
        super().__init__(*args, **kwargs)

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {
            "objective": data["objective"],
            "time_limit_s": data["time_limit_s"],
            "horizon_days": data["horizon_days"],
            "horizon_start": data["horizon_start"],
            "order_codes": [code.strip() for code in data["orders"].split(",") if code.strip()] or None,
        }
        if data["objective"] == Run.Objective.WEIGHTED_MIX:
            kwargs["weights"] = {
                "makespan": data["weight_makespan"] if data["weight_makespan"] is not None else 1,
                "tardiness": data["weight_tardiness"] if data["weight_tardiness"] is not None else 1,
            }
        return kwargs


class RescheduleForm(forms.Form):
    machine = forms.ChoiceField(label=gettext_lazy("Machine that broke down"), required=False)
    breakdown_from = forms.DateTimeField(label=gettext_lazy("Stopped at (UTC)"), required=False, widget=DATETIME_WIDGET)
    duration_minutes = forms.IntegerField(
        label=gettext_lazy("Repair time (minutes)"), required=False, min_value=1, max_value=MAX_HORIZON_DAYS * 24 * 60
    )
    rush_orders = forms.CharField(
        label=gettext_lazy("Rush orders"),
        required=False,
        max_length=10_000,
        help_text=gettext_lazy("Codes of orders to add to the plan, separated by commas."),
    )
    time_limit_s = forms.IntegerField(
        label=gettext_lazy("Time limit (seconds)"),
        min_value=1,
        max_value=MAX_TIME_LIMIT_S,
        required=False,
        help_text=gettext_lazy("Empty: the same as this run's."),
    )

    def __init__(self, *args, machines: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["machine"]).choices = [("", _("No breakdown")), *((m, m) for m in machines)]
        if not self.is_bound:
            self.initial.setdefault("breakdown_from", timezone.now().replace(second=0, microsecond=0))

    def clean(self):
        data = super().clean()
        rush = [code.strip() for code in (data.get("rush_orders") or "").split(",") if code.strip()]
        data["rush_order_codes"] = rush
        if data.get("machine"):
            for name in ("breakdown_from", "duration_minutes"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, _("Needed for a breakdown."))
        elif not rush:
            raise ValidationError(_("Name the machine that broke down, or rush orders to add, or both."))
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {"rush_order_codes": data["rush_order_codes"], "time_limit_s": data.get("time_limit_s")}
        if data.get("machine"):
            kwargs["breakdown"] = {
                "machine": data["machine"],
                "from": data["breakdown_from"],
                "duration_minutes": data["duration_minutes"],
            }
        return kwargs


class WhatIfForm(forms.Form):
    """A what-if scenario of up to one change of each kind, re-optimised from this cost run's plan."""

    material = forms.ChoiceField(label=gettext_lazy("Material whose price changes"), required=False)
    percent = forms.FloatField(
        label=gettext_lazy("Price change (%)"),
        required=False,
        min_value=-99.9,
        max_value=1000,
        help_text=gettext_lazy("8 means 8 percent dearer, -5 means 5 percent cheaper."),
    )
    price_from = forms.DateTimeField(
        label=gettext_lazy("Price change from (UTC)"),
        required=False,
        widget=DATETIME_WIDGET,
        help_text=gettext_lazy("Empty: the whole plan."),
    )
    tariff_factor = forms.FloatField(
        label=gettext_lazy("Multiply the tariff by"), required=False, min_value=0, max_value=100
    )
    tariff_hours = forms.CharField(
        label=gettext_lazy("In these hours (UTC)"),
        required=False,
        max_length=100,
        help_text=gettext_lazy("Like 8-20 for 08:00 to 20:00; empty: all day."),
    )
    supplier = forms.ChoiceField(label=gettext_lazy("Supplier whose lead time changes"), required=False)
    lead_days = forms.IntegerField(
        label=gettext_lazy("Days added to the lead time"), required=False, min_value=-365, max_value=365
    )
    machine = forms.ChoiceField(label=gettext_lazy("Machine down"), required=False)
    down_from = forms.DateTimeField(label=gettext_lazy("Down from (UTC)"), required=False, widget=DATETIME_WIDGET)
    down_minutes = forms.IntegerField(
        label=gettext_lazy("Down for (minutes)"), required=False, min_value=1, max_value=MAX_HORIZON_DAYS * 24 * 60
    )
    time_limit_s = forms.IntegerField(
        label=gettext_lazy("Time limit (seconds)"),
        min_value=1,
        max_value=MAX_TIME_LIMIT_S,
        required=False,
        help_text=gettext_lazy("Empty: the same as this run's."),
    )

    def __init__(self, *args, materials: list[str], suppliers: list[str], machines: list[str], **kwargs):
        kwargs.setdefault("auto_id", "what-if-%s")
        super().__init__(*args, **kwargs)
        for name, codes in (("material", materials), ("supplier", suppliers), ("machine", machines)):
            cast(forms.ChoiceField, self.fields[name]).choices = [("", "—"), *((c, c) for c in codes)]

    def clean(self):
        data = super().clean()
        changes: list[dict] = []
        if data.get("material") and data.get("percent") is not None:
            changes.append(
                {
                    "kind": "material_price",
                    "material": data["material"],
                    "percent": data["percent"],
                    "from": data.get("price_from"),
                }
            )
        if data.get("tariff_factor") is not None:
            changes.append({"kind": "tariff", "factor": data["tariff_factor"], "hours": self._hours(data)})
        if data.get("supplier") and data.get("lead_days") is not None:
            changes.append({"kind": "lead_time", "supplier": data["supplier"], "days": data["lead_days"]})
        if data.get("machine"):
            if data.get("down_from") is None or data.get("down_minutes") is None:
                self.add_error("down_from", _("Needed for a machine that is down, with how long."))
            else:
                changes.append(
                    {
                        "kind": "machine_down",
                        "machine": data["machine"],
                        "from": data["down_from"],
                        "duration_minutes": data["down_minutes"],
                    }
                )
        if not changes and not self.errors:
            raise ValidationError(_("Change at least one thing: a price, the tariff, a lead time or a machine."))
        data["changes"] = changes
        return data

    def _hours(self, data) -> list[int]:
        text = (data.get("tariff_hours") or "").strip()
        if not text:
            return []
        first, _sep, last = text.partition("-")
        try:
            start, end = int(first), int(last or int(first) + 1)
        except ValueError:
            self.add_error("tariff_hours", _("Write hours like 8-20."))
            return []
        if not (0 <= start <= 23 and 1 <= end <= 24):
            self.add_error("tariff_hours", _("Write hours like 8-20."))
            return []
        return [h % 24 for h in range(start, end if end > start else end + 24)]

    def service_kwargs(self) -> dict:
        return {"changes": self.cleaned_data["changes"], "time_limit_s": self.cleaned_data.get("time_limit_s")}


def _what_if_form(run: Run, data=None) -> WhatIfForm:
    cost = run.problem.get("cost") or {}
    return WhatIfForm(
        data,
        materials=sorted({s["material"] for s in cost.get("suppliers", [])}),
        suppliers=sorted(s["id"] for s in cost.get("suppliers", [])),
        machines=[m["id"] for m in run.problem["machines"]],
    )


def _import_errors(rejected: importing.ImportRejected) -> list[tuple[str, str]]:
    """[("orders line 4", "due_at: ...")] in the order the importer found them."""
    found = []
    for where, fields in rejected.errors.items():
        for name, messages_ in fields.items():
            for message in messages_:
                found.append((where, message if name == "non_field_errors" else f"{name}: {message}"))
    return found


# --- the overview: master data, import, start a run -----------------------------------------------------------------


class Scheduling(OrgPage, TemplateView):
    template_name = "portal/scheduling/index.html"
    section = "scheduling"

    def get_context_data(self, **kwargs):
        org = self.organization
        kwargs.setdefault("import_form", ImportForm())
        kwargs.setdefault("run_form", RunForm())
        return super().get_context_data(
            counts=master_data_counts(organization=org),
            machines=Machine.objects.filter(organization=org).prefetch_related("shifts")[:LIST_LIMIT],
            products=Product.objects.filter(organization=org).prefetch_related("operations__options__machine")[
                :LIST_LIMIT
            ],
            orders=Order.objects.filter(organization=org).select_related("product")[:LIST_LIMIT],
            suppliers=Supplier.objects.filter(organization=org)
            .select_related("material")
            .prefetch_related("prices")[:LIST_LIMIT],
            runs=[_describe(run) for run in run_list(organization=org)[:20]],
            list_limit=LIST_LIMIT,
            max_import_mib=MAX_IMPORT_BYTES // 2**20,
            **kwargs,
        )


class Import(Scheduling):
    """All or nothing, like `POST scheduling/import`: every bad line is reported and nothing is stored."""

    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}

    def post(self, request, *args, **kwargs):
        form = ImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(import_form=form), status=400)
        try:
            rows = self._rows(form)
            result = importing.scheduling_import(organization=self.organization, rows=rows)
        except importing.ImportRejected as rejected:
            return self.render_to_response(
                self.get_context_data(
                    import_form=ImportForm(), import_summary=str(rejected), import_errors=_import_errors(rejected)
                ),
                status=400,
            )
        done = [
            f"{ENTITY_LABELS[entity]}: {result.created.get(entity, 0)} / {result.updated.get(entity, 0)}"
            for entity in importing.ENTITIES
            if result.created.get(entity) or result.updated.get(entity)
        ]
        messages.success(request, _("Imported (created / updated): %(done)s.") % {"done": "; ".join(done)})
        return redirect("portal:scheduling", org_slug=self.organization.slug)

    def _rows(self, form) -> list[importing.Row]:
        uploads = {entity: form.cleaned_data[entity] for entity in importing.ENTITIES if form.cleaned_data[entity]}
        document = form.cleaned_data["document"]
        if document and uploads:
            raise importing.ImportRejected(
                {"document": {"non_field_errors": [_("Send CSV files or one JSON document, not both.")]}}
            )
        if not document and not uploads:
            raise importing.ImportRejected(
                {_("Import"): {"non_field_errors": [_("Choose at least one file to import.")]}}
            )
        if document:
            if document.size > MAX_IMPORT_BYTES:
                raise importing.ImportRejected(
                    {
                        "document": {
                            "non_field_errors": [_("Larger than %(mib)s MiB.") % {"mib": MAX_IMPORT_BYTES // 2**20}]
                        }
                    }
                )
            try:
                parsed = json.loads(document.read().decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise importing.ImportRejected(
                    {"document": {"non_field_errors": [_("Not a JSON document: %(error)s") % {"error": exc}]}}
                ) from exc
            return importing.rows_from_json(parsed)
        return importing.rows_from_csv_files(uploads.items())


class RunCreate(Scheduling):
    """`POST scheduling/runs`: queue an optimisation of the organisation's orders."""

    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.JOBS}

    def post(self, request, *args, **kwargs):
        form = RunForm(request.POST)
        run = _started(form, runs.run_create, organization=self.organization, actor=self.actor)
        if run is not None:
            return redirect("portal:scheduling-run", org_slug=self.organization.slug, pk=run.pk)
        return self.render_to_response(self.get_context_data(run_form=form), status=400)


def _started(form: forms.Form, start: Callable[..., Run], **arguments: Any) -> Run | None:
    """The run `start` makes with the valid form's arguments, or None with why not on the form."""
    if not form.is_valid():
        return None
    try:
        return start(**arguments, **form.service_kwargs())  # type: ignore[attr-defined]  # each run form has it
    except ValidationError as exc:
        errors_into(form, exc)
    except BillingRefusal as exc:
        form.add_error(None, str(exc.detail))
    return None


# --- one run ------------------------------------------------------------------------------------------------------


class _RunPage(OrgPage):
    # The problem and schedule can be large: loaded only where used (not by the status polls of a running job).
    queryset = Run.objects.select_related("job").defer("problem", "schedule", "frozen")

    def run(self) -> Run:
        return self.owned(self.queryset, pk=self.kwargs["pk"])


def _describe(run: Run) -> Run:
    """Translated names of the run's objective and state, for templates."""
    shown: Any = run  # display texts for templates, which the model does not declare
    shown.objective_text = OBJECTIVE_NAMES.get(run.objective, run.objective)
    shown.status_text = JOB_STATUS.get(run.job.status, run.job.status)
    return run


def _moment(run: Run, minute: int):
    return run.horizon_start + timedelta(minutes=minute)


def run_results(run: Run) -> dict:
    """What the run page shows of a run: its search so far, and once it has a schedule, the results."""
    solutions = run_solutions(run=run)
    best = solutions[-1] if solutions else None
    # The run's own figures once the worker recorded them, else the latest better schedule's.
    objective = run.objective_value if run.objective_value is not None else (best.objective if best else None)
    bound = run.best_bound if run.best_bound is not None else (best.bound if best else None)
    gap = run.gap if run.gap is not None else (best.gap if best else None)
    _describe(run)
    context: dict = {
        "run": run,
        "job": run.job,
        "solutions": solutions,
        "objective": objective,
        "bound": bound,
        "gap_percent": None if gap is None else round(100 * gap, 2),
    }
    if solutions:
        series = {_("Objective"): [(s.wall_time, s.objective) for s in solutions]}
        bounds = [(s.wall_time, s.bound) for s in solutions if isinstance(s.bound, int | float)]
        if bounds:
            series[_("Bound")] = bounds
        context["progress_chart"] = line_chart(
            title=_("Objective and bound of the best schedule so far"), x_label=_("Seconds"), series=series
        )
    if run.job.is_finished:
        context["findings"] = [
            {
                **f,
                "reason_text": REASONS.get(f.get("reason"), f.get("reason", "")),
                "step": f["operation"] + 1 if isinstance(f.get("operation"), int) else None,
            }
            for f in run.findings or []
        ]
        context["events"] = list(run.job.events.order_by("-created_at", "-id")[:30])
    if run.job.is_finished and run.schedule is not None:
        kpis = kpis_json(run)
        if kpis is None:  # run_record_outcome stores the KPIs with the schedule
            raise ValueError(f"Run {run.pk} has a schedule but no KPIs.")
        rows = schedule_rows(run)
        for row in rows:
            row["start_at"], row["end_at"] = _moment(run, row["start_minute"]), _moment(run, row["end_minute"])
        utilisation = sorted(kpis["utilisation"].items())
        context.update(
            kpis=kpis,
            finishes_at=_moment(run, kpis["makespan_minutes"]),
            on_time_percent=None if kpis["on_time_rate"] is None else round(100 * kpis["on_time_rate"], 1),
            tardiness=sorted(kpis["tardiness_minutes"].items()),
            utilisation_chart=bar_chart(
                title=_("Machine utilisation (%)"),
                label=_("Machine"),
                value_label="%",
                bars=[(machine, round(100 * share, 1)) for machine, share in utilisation],
            ),
            cost_kinds=[(COST_KINDS[k], v) for k, v in (run.costs or {}).get("by_kind", {}).items() if k in COST_KINDS],
            forecasts=[{**f, "first": f["days"][0], "last": f["days"][-1]} for f in forecast_rows(run) if f["days"]],
            robust_outcome=(run.robust or {}).get("outcome"),
            comparison=_comparison(run),
            purchases=purchase_rows(run) if run.costs else [],
            schedule=rows[:SCHEDULE_LIMIT],
            schedule_total=len(rows),
            schedule_limit=SCHEDULE_LIMIT,
            machines=[m["id"] for m in run.problem["machines"]],
        )
    return context


def _comparison(run: Run) -> dict | None:
    """A cost run made from another's plan beside it, with the kinds of cost and of change named for people."""
    parent = run.parent if run.parent_id else None
    if run.objective != Run.Objective.COST or parent is None or parent.schedule is None or not parent.costs:
        return None
    compared = comparison(run)
    compared["cost_rows"] = [(COST_KINDS[k], v) for k, v in compared["cost"].items() if k in COST_KINDS]
    for row in compared["orders"]:
        row["change_text"] = ORDER_CHANGES.get(row["change"], row["change"])
    return compared


ORDER_CHANGES = {
    "moved": gettext_lazy("Moved"),
    "newly_late": gettext_lazy("Now late"),
    "now_on_time": gettext_lazy("Now on time"),
    "declined": gettext_lazy("Declined"),
    "accepted": gettext_lazy("Accepted"),
    "added": gettext_lazy("Added"),
}


class RunDetail(LiveFragment, _RunPage, TemplateView):
    """The run page; with `X-Fragment: 1` only its live part, which portal.js polls until the job finishes."""

    template_name = "portal/scheduling/run.html"
    fragment_template = "portal/scheduling/run_live.html"
    section = "scheduling"

    def get_context_data(self, **kwargs):
        run = kwargs.pop("run_object", None) or self.run()
        context = run_results(run)
        if run.job.is_finished and run.schedule is not None and "reschedule_form" not in kwargs:
            kwargs["reschedule_form"] = RescheduleForm(machines=context["machines"])
        if run.job.is_finished and run.schedule is not None and run.costs and "what_if_form" not in kwargs:
            kwargs["what_if_form"] = _what_if_form(run)
        return super().get_context_data(**context, **kwargs)


class RunCancel(_RunPage, TemplateView):
    """Stops the solver through the jobs service (as `POST jobs/{id}/cancel`); the best schedule so far is kept."""

    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.JOBS}

    def post(self, request, *args, **kwargs):
        run = self.run()
        try:
            job_cancel(job=run.job, actor=self.actor)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, _("Cancellation requested: the solver stops and keeps the best schedule found so far.")
            )
        return redirect("portal:scheduling-run", org_slug=self.organization.slug, pk=run.pk)


class _RunReplan(_RunPage, TemplateView):
    """A POST that makes a new run from this one: the new run's page, or this one's again with the form's errors."""

    template_name = "portal/scheduling/run.html"
    section = "scheduling"
    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.JOBS}

    def rejected(self, run: Run, **form: forms.Form):
        return self.render_to_response(super().get_context_data(**run_results(run), **form), status=400)


class RunReschedule(_RunReplan):
    """`POST scheduling/runs/{id}/reschedule`: re-plan after a breakdown or with rush orders."""

    def post(self, request, *args, **kwargs):
        run = self.run()
        form = RescheduleForm(request.POST, machines=[m["id"] for m in run.problem["machines"]])
        replan = _started(form, runs.run_reschedule, run=run, actor=self.actor)
        if replan is not None:
            return redirect("portal:scheduling-run", org_slug=self.organization.slug, pk=replan.pk)
        return self.rejected(run, reschedule_form=form)


class RunWhatIf(_RunReplan):
    """`POST scheduling/runs/{id}/what-if`: re-optimise this cost plan under a scenario, then compare."""

    def post(self, request, *args, **kwargs):
        run = self.run()
        form = _what_if_form(run, request.POST)
        scenario = _started(form, runs.run_what_if, run=run, actor=self.actor)
        if scenario is not None:
            return redirect("portal:scheduling-run", org_slug=self.organization.slug, pk=scenario.pk)
        return self.rejected(run, what_if_form=form)


class RunGantt(_RunPage, TemplateView):
    """The API's Gantt chart (`.../gantt.png`) for the page's <img>."""

    def get(self, request, *args, **kwargs):
        run = self.run()
        if run.schedule is None:
            raise Http404
        response = HttpResponse(schedule_png(run), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class RunCsv(_RunPage, TemplateView):
    """The schedule as CSV (`.../schedule.csv`), as a download."""

    def get(self, request, *args, **kwargs):
        run = self.run()
        if run.schedule is None:
            raise Http404
        return attachment(schedule_csv(run), filename=f"schedule-{run.id}.csv", content_type="text/csv; charset=utf-8")


urlpatterns = [
    path("scheduling", Scheduling.as_view(), name="scheduling"),
    path("scheduling/import", Import.as_view(), name="scheduling-import"),
    path("scheduling/runs", RunCreate.as_view(), name="scheduling-run-create"),
    path("scheduling/runs/<uuid:pk>", RunDetail.as_view(), name="scheduling-run"),
    path("scheduling/runs/<uuid:pk>/cancel", RunCancel.as_view(), name="scheduling-run-cancel"),
    path("scheduling/runs/<uuid:pk>/reschedule", RunReschedule.as_view(), name="scheduling-run-reschedule"),
    path("scheduling/runs/<uuid:pk>/what-if", RunWhatIf.as_view(), name="scheduling-run-what-if"),
    path("scheduling/runs/<uuid:pk>/gantt.png", RunGantt.as_view(), name="scheduling-run-gantt"),
    path("scheduling/runs/<uuid:pk>/schedule.csv", RunCsv.as_view(), name="scheduling-run-csv"),
]
