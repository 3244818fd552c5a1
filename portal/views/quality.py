"""Quality analytics: the line (stations in routing order, machines, process variables with spec limits,
characteristics with defect codes), SPC charts per variable and characteristic, root-cause analyses (start one,
follow it live, its ranked causes with their evidence, label the confirmed cause) and the genealogy trace.

Every action calls what the REST API calls (`automation.quality.services`, `.selectors`); the views only turn
forms into those calls and results into pages.
"""

import re
from datetime import datetime
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from automation.quality import selectors, services
from automation.quality.models import Analysis, Characteristic, DefectCode, Lot, Machine, ProcessVariable, Station, Unit
from billing.errors import BillingRefusal
from tenants.roles import Scope

from ..access import OrgPage, errors_into
from ..charts import Chart, bar_chart, control_chart
from ..pages import DATETIME_WIDGET, JOB_STATUS, LiveFragment

EVIDENCE_CHARTS = 3  # top causes that get an evidence chart
CAUSES_SHOWN = 20

METHODS = [
    (Analysis.Method.AUTO, gettext_lazy("Automatic: across the line with enough units, else per failed unit")),
    (Analysis.Method.LINE, gettext_lazy("Across the line: stations, machines, variables, lots")),
    (Analysis.Method.UNIT, gettext_lazy("Per failed unit: its recorded traces before the failure")),
]
METHOD_NAMES: dict[str, Promise] = {
    Analysis.Method.AUTO: gettext_lazy("Automatic"),
    Analysis.Method.LINE: gettext_lazy("Across the line"),
    Analysis.Method.UNIT: gettext_lazy("Per failed unit"),
}
VERDICTS: dict[str, Promise] = {
    "cause_found": gettext_lazy("Cause found"),
    "no_cause": gettext_lazy("No significant cause: nothing is claimed"),
    "too_few_defects": gettext_lazy("Too few defects or units to tell"),
    "cannot_tell": gettext_lazy("The data cannot tell the causes apart"),
}
LEVELS: dict[str, Promise] = {
    "station": gettext_lazy("Station"),
    "machine": gettext_lazy("Machine"),
    "variable": gettext_lazy("Process variable"),
    "lot": gettext_lazy("Material lot"),
}
UNIT_STATUS: dict[str, Promise] = {
    Unit.Status.IN_PROCESS: gettext_lazy("In process"),
    Unit.Status.FINISHED: gettext_lazy("Finished"),
    Unit.Status.SHIPPED: gettext_lazy("Shipped"),
    Unit.Status.SCRAPPED: gettext_lazy("Scrapped"),
}
RANKINGS: dict[str, Promise] = {
    "unsupervised": gettext_lazy("Unsupervised ranking (no labelled history used)"),
    "supervised": gettext_lazy("Supervised ranking, learned from your labelled analyses"),
}


# --- forms ----------------------------------------------------------------------------------------------------------


class AnalysisForm(forms.Form):
    defect_code = forms.ModelChoiceField(
        label=gettext_lazy("Defect code"), queryset=DefectCode.objects.none(), to_field_name="code"
    )
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=METHODS, initial=Analysis.Method.AUTO)
    start = forms.DateTimeField(label=gettext_lazy("From (UTC)"), required=False, widget=DATETIME_WIDGET)
    end = forms.DateTimeField(label=gettext_lazy("Until (UTC)"), required=False, widget=DATETIME_WIDGET)
    units = forms.CharField(
        label=gettext_lazy("Failed units"),
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text=gettext_lazy("Optional: serial numbers separated by commas, spaces or lines."),
    )
    window_seconds = forms.FloatField(
        label=gettext_lazy("Window before a failure (seconds)"),
        min_value=0.001,
        initial=30.0,
        help_text=gettext_lazy("Per failed unit: how far before the failure its traces are read."),
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["defect_code"].queryset = DefectCode.objects.filter(organization=organization)

    def clean_units(self) -> list[str]:
        return [s for s in re.split(r"[\s,;]+", self.cleaned_data["units"]) if s]


class ChartForm(forms.Form):
    subgroup = forms.IntegerField(
        label=gettext_lazy("Subgroup size"),
        min_value=1,
        max_value=10,
        initial=1,
        required=False,
        help_text=gettext_lazy("1: individuals and moving range; 2 to 10: X-bar and R of consecutive units."),
    )
    machine = forms.ChoiceField(label=gettext_lazy("Machine"), required=False)

    def __init__(self, *args, machines: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        if machines:
            cast(forms.ChoiceField, self.fields["machine"]).choices = [
                ("", _("All machines")),
                *((m, m) for m in machines),
            ]
        else:
            del self.fields["machine"]


class TraceForm(forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Unit serial or lot code"),
        max_length=100,
        help_text=gettext_lazy("A unit: which lots and machines it passed. A lot: which units used it."),
    )


class LabelForm(forms.Form):
    causes = forms.MultipleChoiceField(
        label=gettext_lazy("Confirmed causes"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=gettext_lazy(
            "What the investigation confirmed. Labelled analyses of the same characteristic train the "
            "supervised ranking. Leave all unticked to remove the label."
        ),
    )

    def __init__(self, *args, names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["causes"]).choices = [(n, n) for n in names]


# --- helpers --------------------------------------------------------------------------------------------------------


def _describe(analysis: Analysis) -> Analysis:
    shown: Any = analysis  # display texts for templates, which the model does not declare
    job = analysis.job
    shown.status_text = JOB_STATUS.get(job.status, job.status) if job else JOB_STATUS.get(analysis.status, "")
    shown.state = job.status if job else analysis.status
    shown.is_finished = job.is_finished if job else analysis.status in ("succeeded", "failed")
    shown.verdict_text = VERDICTS.get(analysis.verdict, analysis.verdict)
    shown.method_text = METHOD_NAMES.get((analysis.result or {}).get("method", analysis.method), analysis.method)
    return analysis


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.1f} %"


def _when(text: str | None) -> datetime | None:
    return parse_datetime(text) if text else None


def _line_causes(result: dict) -> list[dict]:
    causes = []
    for c in result.get("causes", [])[:CAUSES_SHOWN]:
        causes.append(
            {
                **c,
                "level_text": LEVELS.get(c["level"], c["level"]),
                "with_text": _percent(c.get("rate_with")),
                "without_text": _percent(c.get("rate_without")),
                "change_at": _when(c.get("change_point")),
            }
        )
    return causes


def _evidence_line(causes: list[dict]) -> list[Chart]:
    """Per top cause: the defect rate of units with it against units without it."""
    charts = []
    for c in causes[:EVIDENCE_CHARTS]:
        if c.get("rate_with") is None or c.get("rate_without") is None:
            continue
        charts.append(
            bar_chart(
                title=_("%(name)s: defect rate with and without it (%%)") % {"name": c["name"]},
                label=_("Units"),
                value_label=_("Defect rate (%)"),
                bars=[
                    (
                        _("with %(name)s (%(n)s units)") % {"name": c["name"], "n": c["units_with"]},
                        100 * c["rate_with"],
                    ),
                    (_("without it"), 100 * c["rate_without"]),
                ],
            )
        )
    return charts


def _evidence_units(result: dict) -> list[Chart]:
    """Per top cause of a per-unit analysis: its score in each failed unit's ranking."""
    charts = []
    for c in result.get("causes", [])[:EVIDENCE_CHARTS]:
        bars = [
            (u["unit"], float(found["score"]))
            for u in result.get("units", [])
            for found in u.get("causes", [])
            if found["name"] == c["name"]
        ]
        if bars:
            charts.append(
                bar_chart(
                    title=_("%(name)s: how unexplained its state was, per failed unit") % {"name": c["name"]},
                    label=_("Failed unit"),
                    value_label=_("Score"),
                    bars=bars[:30],
                )
            )
    return charts


# --- the overview ---------------------------------------------------------------------------------------------------


class Quality(OrgPage, TemplateView):
    template_name = "portal/quality/index.html"
    section = "quality"

    def get_context_data(self, **kwargs):
        org = self.organization
        kwargs.setdefault("analysis_form", AnalysisForm(organization=org, prefix="analysis"))
        stations = list(
            Station.objects.filter(organization=org).prefetch_related(
                "machines", "variables__causes", "characteristics__defect_codes", "characteristics__affected_by"
            )
        )
        analyses = [
            _describe(a) for a in Analysis.objects.filter(organization=org).select_related("defect_code", "job")[:20]
        ]
        return super().get_context_data(
            stations=stations,
            analyses=analyses,
            trace_form=TraceForm(),
            counts={
                "units": Unit.objects.filter(organization=org).count(),
                "lots": Lot.objects.filter(organization=org).count(),
            },
            **kwargs,
        )


class AnalysisCreate(Quality):
    """`POST quality/analyses`: queue the `quality.analyse` job, then follow it on the analysis page."""

    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.JOBS}

    def post(self, request, *args, **kwargs):
        form = AnalysisForm(request.POST, organization=self.organization, prefix="analysis")
        if form.is_valid():
            data = form.cleaned_data
            try:
                analysis = services.analysis_start(
                    organization=self.organization,
                    actor=self.actor,
                    defect_code=data["defect_code"],
                    method=data["method"],
                    start=data["start"],
                    end=data["end"],
                    units=data["units"],
                    window_seconds=data["window_seconds"],
                )
            except ValidationError as exc:
                errors_into(form, exc)
            except BillingRefusal as exc:
                form.add_error(None, str(exc.detail))
            else:
                return redirect("portal:quality-analysis", org_slug=self.organization.slug, pk=analysis.pk)
        return self.render_to_response(self.get_context_data(analysis_form=form), status=400)


# --- SPC charts -----------------------------------------------------------------------------------------------------


def _spc_charts(data: dict, *, name: str) -> tuple[list[Chart], list[dict]]:
    chart = data.get("chart")
    if not chart:
        return [], []
    rules: dict[int, list[str]] = {}
    for v in chart["violations"]:
        rules.setdefault(v["index"], []).append(_("rule %(n)s") % {"n": v["rule"]})
    violations = {i: ", ".join(found) for i, found in rules.items()}
    subgroups = chart["kind"] == "xbar_r"
    labels = [str(i + 1) for i in range(len(chart["points"]))] if subgroups else [str(u) for u in data.get("units", [])]
    x_label = _("Subgroup") if subgroups else _("Unit")
    main = control_chart(
        title=(_("%(name)s: X-bar chart") if subgroups else _("%(name)s: individuals chart")) % {"name": name},
        x_label=x_label,
        y_label=_("Mean") if subgroups else _("Value"),
        points=chart["points"],
        center=chart["center"],
        lcl=chart["lcl"],
        ucl=chart["ucl"],
        violations=violations,
        spec={"LSL": data.get("lsl"), "USL": data.get("usl")},
        labels=labels,
        rules_label=_("Rules broken"),
    )
    ranges = chart["ranges"]
    range_labels = labels if subgroups else labels[1:]
    spread = control_chart(
        title=(_("%(name)s: range chart") if subgroups else _("%(name)s: moving range chart")) % {"name": name},
        x_label=x_label,
        y_label=_("Range"),
        points=ranges,
        center=chart["range_center"],
        lcl=0.0,
        ucl=chart["range_ucl"],
        labels=range_labels,
        rules_label=_("Rules broken"),
    )
    listed = [
        {
            "rule": v["rule"],
            "where": labels[v["index"]] if v["index"] < len(labels) else v["index"] + 1,
            "description": v["description"],
        }
        for v in chart["violations"]
    ]
    return [main, spread], listed


class _ChartPage(OrgPage, TemplateView):
    template_name = "portal/quality/chart.html"
    section = "quality"

    def chart_data(self, obj, params: dict) -> dict:
        raise NotImplementedError

    def get_context_data(self, **kwargs):
        obj = self.get_object()
        machines = self.machines(obj)
        form = ChartForm(self.request.GET or None, machines=machines)
        params: dict = {"subgroup": 1}
        if form.is_valid():
            params["subgroup"] = form.cleaned_data.get("subgroup") or 1
            if form.cleaned_data.get("machine"):
                params["machine"] = self.owned(Machine, code=form.cleaned_data["machine"])
        data = self.chart_data(obj, params)
        charts, violations = _spc_charts(data, name=self.name(obj))
        return super().get_context_data(
            subject=obj, form=form, data=data, charts=charts, violations=violations, **kwargs
        )

    def machines(self, obj) -> list[str]:
        return []


class VariableChart(_ChartPage):
    model = ProcessVariable

    def get_object(self) -> ProcessVariable:
        return self.owned(ProcessVariable.objects.select_related("station"), pk=self.kwargs["pk"])

    def name(self, obj) -> str:
        return obj.name + (f" ({obj.unit})" if obj.unit else "")

    def machines(self, obj) -> list[str]:
        return list(obj.station.machines.values_list("code", flat=True))

    def chart_data(self, obj, params: dict) -> dict:
        return selectors.variable_chart(organization=self.organization, variable=obj, **params)


class CharacteristicChart(_ChartPage):
    model = Characteristic

    def get_object(self) -> Characteristic:
        return self.owned(Characteristic.objects.select_related("station"), pk=self.kwargs["pk"])

    def name(self, obj) -> str:
        return obj.code + (f" ({obj.unit})" if obj.unit else "")

    def chart_data(self, obj, params: dict) -> dict:
        params.pop("machine", None)
        return selectors.characteristic_chart(organization=self.organization, characteristic=obj, **params)


# --- analyses -------------------------------------------------------------------------------------------------------


def analysis_evidence(analysis: Analysis) -> dict:
    """What the ranked-causes section (`portal/quality/_causes.html`) shows of a finished analysis: the causes with
    their evidence and a chart per top cause; shared by the analysis page and its investigation's page."""
    result = analysis.result or {}
    method = result.get("method", analysis.method)
    causes = _line_causes(result) if method == Analysis.Method.LINE else result.get("causes", [])[:CAUSES_SHOWN]
    return {
        "result": result,
        "method": method,
        "causes": causes,
        "evidence": _evidence_line(causes) if method == Analysis.Method.LINE else _evidence_units(result),
        "unit_rankings": result.get("units", []) if method == Analysis.Method.UNIT else [],
        "supervised": result.get("supervised"),
        "ranking_text": RANKINGS.get(result.get("ranking", "unsupervised"), ""),
    }


class AnalysisDetail(LiveFragment, OrgPage, TemplateView):
    """An analysis: progress while its job runs (portal.js polls the fragment), then the ranked causes with their
    evidence, an evidence chart per top cause, and the confirmed-cause label."""

    template_name = "portal/quality/analysis.html"
    fragment_template = "portal/quality/analysis_live.html"
    section = "quality"
    model = Analysis  # what `pk` addresses (the isolation sweep reads it)

    def get_context_data(self, **kwargs):
        analysis = _describe(
            self.owned(Analysis.objects.select_related("defect_code__characteristic", "job"), pk=self.kwargs["pk"])
        )
        result = analysis.result or {}
        names = [c["name"] for c in result.get("causes", [])]
        kwargs.setdefault(
            "label_form",
            LabelForm(names=names, initial={"causes": analysis.confirmed_causes}, prefix="label"),
        )
        events = list(analysis.job.events.order_by("-created_at", "-id")[:50]) if analysis.job else []
        return super().get_context_data(
            analysis=analysis,
            **analysis_evidence(analysis),
            events=events,
            **kwargs,
        )


class AnalysisLabel(AnalysisDetail):
    """`POST quality/analyses/{id}/label`: store the confirmed causes (the supervised ranking learns from them)."""

    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}

    def post(self, request, *args, **kwargs):
        analysis = self.owned(Analysis, pk=self.kwargs["pk"])
        names = [c["name"] for c in (analysis.result or {}).get("causes", [])]
        form = LabelForm(request.POST, names=names, prefix="label")
        if form.is_valid():
            try:
                services.analysis_label(analysis=analysis, causes=form.cleaned_data["causes"], actor=self.actor)
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(request, _("The confirmed causes are stored."))
                return redirect("portal:quality-analysis", org_slug=self.organization.slug, pk=analysis.pk)
        return self.render_to_response(self.get_context_data(label_form=form), status=400)


# --- genealogy ------------------------------------------------------------------------------------------------------


class Trace(OrgPage, TemplateView):
    """`GET quality/trace?q=`: a unit serial opens its trace back, a lot code its trace forward."""

    template_name = "portal/quality/trace.html"
    section = "quality"

    def get(self, request, *args, **kwargs):
        form = TraceForm(request.GET or None)
        if form.is_valid():
            q = form.cleaned_data["q"].strip()
            unit = Unit.objects.filter(organization=self.organization, serial=q).first()
            if unit is not None:
                return redirect("portal:quality-unit", org_slug=self.organization.slug, pk=unit.pk)
            lot = Lot.objects.filter(organization=self.organization, code=q).first()
            if lot is not None:
                return redirect("portal:quality-lot", org_slug=self.organization.slug, pk=lot.pk)
            form.add_error("q", _("No unit and no lot is called %(q)s.") % {"q": q})
        return self.render_to_response(self.get_context_data(trace_form=form))


class UnitTrace(OrgPage, TemplateView):
    template_name = "portal/quality/unit.html"
    section = "quality"
    model = Unit

    def get_context_data(self, **kwargs):
        unit = self.owned(Unit, pk=self.kwargs["pk"])
        trace = selectors.unit_trace_back(organization=self.organization, unit=unit)
        for step in trace["steps"]:
            step["first_at"], step["last_at"] = _when(step["first"]), _when(step["last"])
        for inspection in trace["inspections"]:
            inspection["at"] = _when(inspection["ts"])
        lots = dict(Lot.objects.filter(organization=self.organization, units=unit).values_list("code", "pk"))
        for lot in trace["lots"]:
            lot["pk"] = lots.get(lot["code"])
        return super().get_context_data(
            unit=unit,
            trace=trace,
            status_text=UNIT_STATUS.get(unit.status, unit.status),
            trace_form=TraceForm(),
            **kwargs,
        )


class LotTrace(OrgPage, TemplateView):
    template_name = "portal/quality/lot.html"
    section = "quality"
    model = Lot

    def get_context_data(self, **kwargs):
        lot = self.owned(Lot, pk=self.kwargs["pk"])
        trace = selectors.lot_trace_forward(organization=self.organization, lot=lot)
        pks = dict(Unit.objects.filter(organization=self.organization, lots=lot).values_list("serial", "pk"))
        for unit in trace["units"]:
            unit["pk"] = pks.get(unit["serial"])
            unit["status_text"] = UNIT_STATUS.get(unit["status"], unit["status"])
        by_status = [(UNIT_STATUS.get(s, s), n) for s, n in sorted(trace["by_status"].items())]
        return super().get_context_data(lot=lot, trace=trace, by_status=by_status, trace_form=TraceForm(), **kwargs)


urlpatterns = [
    path("quality", Quality.as_view(), name="quality"),
    path("quality/analyses", AnalysisCreate.as_view(), name="quality-analysis-create"),
    path("quality/analyses/<uuid:pk>", AnalysisDetail.as_view(), name="quality-analysis"),
    path("quality/analyses/<uuid:pk>/label", AnalysisLabel.as_view(), name="quality-analysis-label"),
    path("quality/variables/<int:pk>", VariableChart.as_view(), name="quality-variable"),
    path("quality/characteristics/<int:pk>", CharacteristicChart.as_view(), name="quality-characteristic"),
    path("quality/trace", Trace.as_view(), name="quality-trace"),
    path("quality/units/<int:pk>", UnitTrace.as_view(), name="quality-unit"),
    path("quality/lots/<int:pk>", LotTrace.as_view(), name="quality-lot"),
]
