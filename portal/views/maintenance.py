"""Predictive maintenance: asset types and assets, telemetry uploads and run-to-failure imports, training and
scoring jobs followed live, and per asset its telemetry, health, remaining useful life, anomalies,
recommendations and work orders.

Every action calls what the REST API calls (`automation.maintenance.services`, `.telemetry`, `.importing`,
`jobs.services.job_cancel`); the views only turn forms into those calls and results into pages.
"""

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.urls import path
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from automation.maintenance import importing, services, telemetry
from automation.maintenance.conf import MAX_UPLOAD_BYTES, SCORE_JOB_KIND, TRAIN_JOB_KIND
from automation.maintenance.engine.kinematics import ISO_ZONE_LIMITS
from automation.maintenance.models import (
    Asset,
    AssetEvent,
    AssetType,
    Recommendation,
    TrainedModel,
    VibrationCapture,
    WorkOrder,
)
from automation.maintenance.selectors import (
    health_history,
    latest_health,
    telemetry_series,
    telemetry_span,
    vibration_trend,
)
from automation.maintenance.vibration import kinematics_of
from billing.errors import BillingRefusal
from jobs.models import Job
from jobs.services import job_cancel
from tenants.roles import Scope

from ..access import OrgPage, errors_into
from ..charts import line_chart, spectrum_chart, zoned_line_chart
from ..pages import DATETIME_WIDGET, JOB_STATUS, LiveFragment

JOB_KINDS = (TRAIN_JOB_KIND, SCORE_JOB_KIND)
POINTS_PER_CHART = 400  # telemetry is averaged into buckets so that a chart has at most about this many points
ACTIVE_WORK_ORDERS = (WorkOrder.Status.OPEN, WorkOrder.Status.ACKNOWLEDGED)

JOB_NAMES = {TRAIN_JOB_KIND: gettext_lazy("Model training"), SCORE_JOB_KIND: gettext_lazy("Scoring")}
WORK_ORDER_STATUS = {
    WorkOrder.Status.OPEN: gettext_lazy("Open"),
    WorkOrder.Status.ACKNOWLEDGED: gettext_lazy("Acknowledged"),
    WorkOrder.Status.CLOSED: gettext_lazy("Closed"),
}
PRIORITIES: dict[str, Promise] = {
    Recommendation.Priority.LOW: gettext_lazy("Low"),
    Recommendation.Priority.MEDIUM: gettext_lazy("Medium"),
    Recommendation.Priority.HIGH: gettext_lazy("High"),
    Recommendation.Priority.URGENT: gettext_lazy("Urgent"),
}
ACTIONS: dict[str, Promise] = {
    Recommendation.Action.INSPECT: gettext_lazy("Inspect"),
    Recommendation.Action.REPLACE: gettext_lazy("Replace"),
}
EXPLANATION_STATUS: dict[str, Promise] = {
    Recommendation.ExplanationStatus.PENDING: gettext_lazy(
        "Explanation pending: no answer from your model yet; it is asked again later."
    ),
    Recommendation.ExplanationStatus.READY: gettext_lazy("Explained by your model"),
    Recommendation.ExplanationStatus.FAILED: gettext_lazy(
        "No explanation: your model did not answer after repeated attempts."
    ),
}
EVENT_KINDS = [
    (AssetEvent.Kind.FAILURE, gettext_lazy("Failure")),
    (AssetEvent.Kind.REPAIR, gettext_lazy("Repair (as good as new)")),
    (AssetEvent.Kind.REPLACEMENT, gettext_lazy("Replacement")),
    (AssetEvent.Kind.INSPECTION, gettext_lazy("Inspection")),
]
YES = {"yes", "y", "true", "1", "setting", "ja", "예"}
NO = {"", "no", "n", "false", "0", "nein", "아니요"}


# --- forms ----------------------------------------------------------------------------------------------------------


class AssetTypeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Type code"),
        max_length=64,
        help_text=gettext_lazy("For example pump; imports and the API name the type by it."),
    )
    name = forms.CharField(label=gettext_lazy("Type name"), max_length=200, required=False)
    cycle_seconds = forms.IntegerField(
        label=gettext_lazy("Cycle length (seconds)"),
        min_value=1,
        initial=3600,
        help_text=gettext_lazy("Telemetry is averaged per cycle, and remaining useful life is counted in cycles."),
    )
    channels = forms.CharField(
        label=gettext_lazy("Channels"),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text=gettext_lazy(
            "One channel a line: name, unit, minimum, maximum, component, setting. Only the name "
            "is required. Readings outside minimum and maximum are refused; the component is "
            "what wears when the channel drifts; setting is yes for operating conditions such "
            "as load. Example: vibration, mm/s, 0, 10, spindle bearing"
        ),
    )

    def clean_channels(self) -> list[dict]:
        """The channel lines as the service's dicts; `self.channel_lines` maps each to its line number."""
        channels, problems, self.channel_lines = [], [], []
        for number, record in enumerate(csv.reader(io.StringIO(self.cleaned_data["channels"])), start=1):
            cells = [cell.strip() for cell in record]
            if not any(cells) or cells[0].startswith("#") or (number == 1 and cells[0].lower() == "name"):
                continue
            if len(cells) > 6:
                problems.append(
                    _("Line %(n)s: at most 6 values (name, unit, minimum, maximum, component, setting).")
                    % {"n": number}
                )
                continue
            cells += [""] * (6 - len(cells))
            name, unit, low, high, component, setting = cells
            channel: dict[str, Any] = {"name": name, "unit": unit, "component": component}
            for key, text, label in (("min_value", low, _("minimum")), ("max_value", high, _("maximum"))):
                try:
                    channel[key] = float(text) if text else None
                    if channel[key] is not None and not math.isfinite(channel[key]):
                        raise ValueError
                except ValueError:
                    problems.append(
                        _("Line %(n)s: the %(what)s %(value)s is not a number.")
                        % {"n": number, "what": label, "value": repr(text)}
                    )
            if setting.lower() not in YES | NO:
                problems.append(
                    _("Line %(n)s: setting is yes or no, not %(value)s.") % {"n": number, "value": repr(setting)}
                )
            channel["is_setting"] = setting.lower() in YES
            channels.append(channel)
            self.channel_lines.append(number)
        if problems:
            raise ValidationError(problems)
        if not channels:
            raise ValidationError(_("Name at least one channel."))
        return channels


class AssetForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Asset code"),
        max_length=64,
        help_text=gettext_lazy("Unique in your organisation; telemetry files name the asset by it."),
    )
    name = forms.CharField(label=gettext_lazy("Asset name"), max_length=200, required=False)
    asset_type = forms.ModelChoiceField(
        label=gettext_lazy("Type of asset"), queryset=AssetType.objects.none(), to_field_name="code"
    )
    site = forms.CharField(label=gettext_lazy("Site"), max_length=200, required=False)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset_type"].queryset = AssetType.objects.filter(organization=organization)


class TelemetryForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Telemetry CSV file"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        help_text=gettext_lazy(
            "Either one reading a line, with the header asset,channel,ts,value, or one timestamp "
            "a line, with the header asset,ts followed by channel names. Timestamps in ISO 8601 "
            "with a time zone (2025-01-01T08:00:00Z) or Unix seconds."
        ),
    )


class HistoryForm(forms.Form):
    asset_type = forms.ModelChoiceField(
        label=gettext_lazy("Type of the failed assets"), queryset=AssetType.objects.none(), to_field_name="code"
    )
    file = forms.FileField(
        label=gettext_lazy("History file"),
        help_text=gettext_lazy(
            "CSV with the header asset,cycle followed by channel names, one "
            "line per asset and cycle; each asset failed at its last cycle. "
            "Or NASA C-MAPSS text."
        ),
    )
    format = forms.ChoiceField(
        label=gettext_lazy("File format"),
        initial="csv",
        choices=[("csv", gettext_lazy("CSV (asset, cycle, channels…)")), ("cmapss", gettext_lazy("C-MAPSS text"))],
    )
    asset_prefix = forms.CharField(
        label=gettext_lazy("Unit prefix (C-MAPSS)"), max_length=40, initial="unit-", required=False
    )
    columns = forms.CharField(
        label=gettext_lazy("Channel of each column (C-MAPSS)"),
        required=False,
        max_length=2000,
        help_text=gettext_lazy("Comma-separated; empty: setting_1..3, sensor_1..21."),
    )
    site = forms.CharField(label=gettext_lazy("Site of the imported assets"), max_length=200, required=False)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset_type"].queryset = AssetType.objects.filter(organization=organization)


class EventForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What happened"), choices=EVENT_KINDS)
    occurred_at = forms.DateTimeField(label=gettext_lazy("When (UTC)"), widget=DATETIME_WIDGET)
    component = forms.CharField(label=gettext_lazy("Component"), max_length=100, required=False)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


# --- helpers --------------------------------------------------------------------------------------------------------


def _rejected(exc: telemetry.TelemetryRejected) -> dict:
    return {
        "summary": str(exc),
        "errors": [(where, message) for where, found in exc.errors.items() for message in found],
    }


def _describe_job(job: Job) -> Job:
    shown: Any = job  # display texts for templates, which the model does not declare
    shown.kind_text = JOB_NAMES.get(job.kind, job.kind)
    shown.status_text = JOB_STATUS.get(job.status, job.status)
    return job


def _describe_recommendation(recommendation: Recommendation) -> Recommendation:
    shown: Any = recommendation  # display texts for templates, which the model does not declare
    shown.action_text = ACTIONS.get(recommendation.action, recommendation.action)
    shown.priority_text = PRIORITIES.get(recommendation.priority, recommendation.priority)
    shown.explanation_text = EXPLANATION_STATUS.get(recommendation.explanation_status, "")
    work_order = getattr(recommendation, "work_order", None)
    if work_order is not None:
        work_order.status_text = WORK_ORDER_STATUS.get(work_order.status, work_order.status)
    return recommendation


def _when(x: float) -> str:
    return datetime.fromtimestamp(x, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _bucket_seconds(span: timedelta, cycle_seconds: int) -> int:
    """Whole cycles, enough of them that the span fits in POINTS_PER_CHART buckets."""
    cycles = max(1, math.ceil(span.total_seconds() / cycle_seconds / POINTS_PER_CHART))
    return cycles * cycle_seconds


# --- the overview ---------------------------------------------------------------------------------------------------


class Maintenance(OrgPage, TemplateView):
    template_name = "portal/maintenance/index.html"
    section = "maintenance"

    def get_context_data(self, **kwargs):
        org = self.organization
        kwargs.setdefault("asset_type_form", AssetTypeForm(prefix="type"))
        kwargs.setdefault("asset_form", AssetForm(organization=org, prefix="asset"))
        kwargs.setdefault("telemetry_form", TelemetryForm(prefix="telemetry"))
        kwargs.setdefault("history_form", HistoryForm(organization=org, prefix="history"))
        active = Count("work_orders", filter=Q(work_orders__status__in=ACTIVE_WORK_ORDERS))
        assets = list(
            Asset.objects.filter(organization=org)
            .select_related("asset_type")
            .annotate(active_work_orders=active)
            .order_by("code")
        )
        health = latest_health(assets=Asset.objects.filter(organization=org))
        for asset in assets:
            asset.latest = health.get(asset.pk)
        models = {
            m.asset_type_id: m
            for m in TrainedModel.objects.filter(organization=org, is_current=True).defer("artefact", "baseline")
        }
        asset_types = list(
            AssetType.objects.filter(organization=org)
            .prefetch_related("channels")
            .annotate(asset_count=Count("assets"))
            .order_by("code")
        )
        for asset_type in asset_types:
            asset_type.current_model = models.get(asset_type.pk)
        work_orders = (
            WorkOrder.objects.filter(organization=org, status__in=ACTIVE_WORK_ORDERS)
            .select_related("asset", "recommendation")
            .order_by("recommendation__due_by")[:100]
        )
        for work_order in work_orders:
            _describe_recommendation(work_order.recommendation)
            work_order.status_text = WORK_ORDER_STATUS.get(work_order.status, work_order.status)
        jobs = [
            _describe_job(job)
            for job in Job.objects.filter(organization=org, kind__in=JOB_KINDS).order_by("-created_at")[:10]
        ]
        return super().get_context_data(
            assets=assets,
            asset_types=asset_types,
            work_orders=work_orders,
            jobs=jobs,
            max_upload_mib=MAX_UPLOAD_BYTES // 2**20,
            **kwargs,
        )


class _Write(Maintenance):
    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}

    def refused(self, status: int = 400, **forms_and_errors):
        return self.render_to_response(self.get_context_data(**forms_and_errors), status=status)


class AssetTypeCreate(_Write):
    def post(self, request, *args, **kwargs):
        form = AssetTypeForm(request.POST, prefix="type")
        if form.is_valid():
            data = form.cleaned_data
            try:
                asset_type = services.asset_type_create(
                    organization=self.organization,
                    code=data["code"],
                    name=data["name"],
                    cycle_seconds=data["cycle_seconds"],
                    channels=data["channels"],
                )
            except ValidationError as exc:
                self._errors_into(form, exc)
            else:
                messages.success(
                    request,
                    _("Asset type %(code)s registered with %(n)s channels.")
                    % {"code": asset_type.code, "n": len(data["channels"])},
                )
                return redirect("portal:maintenance", org_slug=self.organization.slug)
        return self.refused(asset_type_form=form)

    @staticmethod
    def _errors_into(form: AssetTypeForm, exc: ValidationError) -> None:
        """The service names a bad channel by position ("channels[2]"); people know it by its line."""
        for field, found in getattr(exc, "message_dict", {None: exc.messages}).items():
            if field and field.startswith("channels["):
                position = int(field[len("channels[") : -1])
                line = form.channel_lines[position] if position < len(form.channel_lines) else position + 1
                for message in found:
                    form.add_error("channels", _("Line %(n)s: %(message)s") % {"n": line, "message": message})
            else:
                errors_into(form, ValidationError({field: found}) if field else ValidationError(found))


class AssetCreate(_Write):
    def post(self, request, *args, **kwargs):
        form = AssetForm(request.POST, organization=self.organization, prefix="asset")
        if form.is_valid():
            try:
                asset = services.asset_create(organization=self.organization, **form.cleaned_data)
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(request, _("Asset %(code)s registered.") % {"code": asset.code})
                return redirect("portal:maintenance-asset", org_slug=self.organization.slug, pk=asset.pk)
        return self.refused(asset_form=form)


class TelemetryUpload(_Write):
    """`POST maintenance/telemetry` with a CSV file: all or nothing, every bad line named."""

    def post(self, request, *args, **kwargs):
        form = TelemetryForm(request.POST, request.FILES, prefix="telemetry")
        if not form.is_valid():
            return self.refused(telemetry_form=form)
        upload = form.cleaned_data["file"]
        try:
            content = upload.read(MAX_UPLOAD_BYTES + 1)
            if len(content) > MAX_UPLOAD_BYTES:
                raise telemetry.TelemetryRejected(
                    {"file": [_("Larger than %(mib)s MiB; split it.") % {"mib": MAX_UPLOAD_BYTES // 2**20}]}
                )
            result = telemetry.telemetry_ingest(
                organization=self.organization, readings=telemetry.readings_from_csv(content)
            )
        except telemetry.TelemetryRejected as exc:
            return self.refused(telemetry_rejected=_rejected(exc))
        messages.success(
            request,
            _("%(stored)s readings stored for %(assets)s assets (%(duplicates)s already there).") % result.as_dict(),
        )
        return redirect("portal:maintenance", org_slug=self.organization.slug)


class HistoryImport(_Write):
    """`POST maintenance/imports/run-to-failure`: assets, their telemetry and a failure at each one's end."""

    def post(self, request, *args, **kwargs):
        form = HistoryForm(request.POST, request.FILES, organization=self.organization, prefix="history")
        if not form.is_valid():
            return self.refused(history_form=form)
        data = form.cleaned_data
        upload = data["file"]
        columns = [c.strip() for c in data["columns"].split(",") if c.strip()] or None
        try:
            if upload.size > MAX_UPLOAD_BYTES:
                raise telemetry.TelemetryRejected(
                    {"file": [_("Larger than %(mib)s MiB.") % {"mib": MAX_UPLOAD_BYTES // 2**20}]}
                )
            result = importing.run_to_failure_import(
                organization=self.organization,
                asset_type=data["asset_type"],
                content=upload.read(),
                file_format=data["format"],
                columns=columns,
                asset_prefix=data["asset_prefix"] or "unit-",
                site=data["site"],
            )
        except telemetry.TelemetryRejected as exc:
            return self.refused(history_form=form, history_rejected=_rejected(exc))
        messages.success(
            request,
            _(
                "History imported: %(assets_created)s new assets, %(readings_stored)s readings, "
                "%(failures_recorded)s failures."
            )
            % result.as_dict(),
        )
        return redirect("portal:maintenance", org_slug=self.organization.slug)


class _StartJob(OrgPage, TemplateView):
    """Train or score one asset type (`POST maintenance/models/train|score`), then follow the job."""

    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.JOBS}

    def start(self, asset_type: AssetType) -> Job:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        asset_type = self.owned(AssetType, code=request.POST.get("asset_type", ""))
        try:
            job = self.start(asset_type)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except BillingRefusal as exc:
            messages.error(request, str(exc.detail))
        else:
            return redirect("portal:maintenance-job", org_slug=self.organization.slug, pk=job.pk)
        return redirect("portal:maintenance", org_slug=self.organization.slug)


class Train(_StartJob):
    def start(self, asset_type: AssetType) -> Job:
        return services.training_start(organization=self.organization, asset_type=asset_type, actor=self.actor)


class Score(_StartJob):
    def start(self, asset_type: AssetType) -> Job:
        return services.scoring_start(organization=self.organization, asset_type=asset_type, actor=self.actor)


# --- one asset ------------------------------------------------------------------------------------------------------


class AssetDetail(OrgPage, TemplateView):
    template_name = "portal/maintenance/asset.html"
    section = "maintenance"
    queryset = Asset.objects.select_related("asset_type")

    def get_context_data(self, **kwargs):
        asset = kwargs.pop("asset_object", None) or self.owned(self.queryset, pk=self.kwargs["pk"])
        asset_type = asset.asset_type
        channels = list(asset_type.channels.all())
        telemetry_charts, span = [], telemetry_span(asset=asset, channels=channels)
        if span is not None:
            first, last = span
            bucket = _bucket_seconds(last - first, asset_type.cycle_seconds)
            for series in telemetry_series(
                asset=asset, channels=channels, start=first, end=last + timedelta(seconds=1), bucket_seconds=bucket
            ):
                title = f"{series['channel']} ({series['unit']})" if series["unit"] else series["channel"]
                telemetry_charts.append(
                    line_chart(
                        title=title,
                        x_label=_("Time (UTC)"),
                        x_format=_when,
                        series={_("Mean"): [(p["ts"].timestamp(), round(p["mean"], 4)) for p in series["points"]]},
                    )
                )
        history = health_history(asset=asset)
        health_chart = rul_chart = None
        if len(history) >= 2:  # one scoring is a point, not a line: the figures above say it all
            health_chart = line_chart(
                title=_("Health index (0-100)"),
                x_label=_("Scored up to (UTC)"),
                x_format=_when,
                series={_("Health"): [(h.as_of.timestamp(), h.health_score) for h in history]},
            )
            rul = {_("Predicted"): "rul_cycles", _("Low end (10 %)"): "rul_low", _("High end (90 %)"): "rul_high"}
            rul_chart = line_chart(
                title=_("Remaining useful life (cycles)"),
                x_label=_("Scored up to (UTC)"),
                x_format=_when,
                series={
                    label: [(h.as_of.timestamp(), getattr(h, field)) for h in history if getattr(h, field) is not None]
                    for label, field in rul.items()
                },
            )
        recommendations = [
            _describe_recommendation(r)
            for r in asset.recommendations.select_related("work_order").order_by("-created_at")[:50]
        ]
        captures = list(asset.vibration_captures.order_by("-captured_at")[:20])
        for capture in captures:
            capture.status_text = CAPTURE_STATUS.get(capture.status, capture.status)
        events = list(asset.events.all()[:50])
        for event in events:
            event.kind_text = dict(EVENT_KINDS).get(event.kind, event.kind)
        kwargs.setdefault("event_form", EventForm())
        return super().get_context_data(
            asset=asset,
            asset_type=asset_type,
            channels=channels,
            span=span,
            telemetry_charts=telemetry_charts,
            latest=history[-1] if history else None,
            health_chart=health_chart,
            rul_chart=rul_chart,
            anomalies=asset.anomalies.order_by("-starts_at")[:50],
            recommendations=recommendations,
            captures=captures,
            events=events,
            **kwargs,
        )


# --- vibration captures -----------------------------------------------------------------------------------------------

CAPTURE_STATUS = {
    VibrationCapture.Status.RECEIVED: gettext_lazy("Waiting for analysis"),
    VibrationCapture.Status.ANALYSED: gettext_lazy("Analysed"),
    VibrationCapture.Status.FAILED: gettext_lazy("Analysis failed"),
}
# Colour index per kind of line (portal.charts.PALETTE, shifted by one: the spectrum itself is the first colour).
MARK_COLOURS = {"bpfo": 0, "bpfi": 1, "bsf": 2, "ftf": 3, "shaft": 4, "mesh": 2}
MARK_HARMONICS = 3


class CaptureDetail(OrgPage, TemplateView):
    """One vibration capture: its spectrum and envelope spectrum with the fault frequencies marked, its
    indicators, its diagnoses with the peaks that matched, and the velocity trend of each sensor's component
    over the ISO 20816 zones of the machine's class."""

    template_name = "portal/maintenance/capture.html"
    section = "maintenance"
    queryset = VibrationCapture.objects.select_related("asset__asset_type", "asset__kinematics")

    def get_context_data(self, **kwargs):
        capture = self.owned(self.queryset, pk=self.kwargs["pk"])
        capture.status_text = CAPTURE_STATUS.get(capture.status, capture.status)
        asset = capture.asset
        kinematics = kinematics_of(asset)
        plots = capture.plots or {}
        frequencies = plots.get("frequencies", [])
        try:
            sensor_bearing = kinematics.sensor(capture.sensor).bearing if kinematics else None
        except KeyError:
            sensor_bearing = None
        bearing_marks, shaft_marks = [], []
        for f in frequencies:
            for h in range(1, MARK_HARMONICS + 1):
                label = f"{f['label']} {h}x" if f["kind"] != "shaft" else f"{f['component']} {h}x"
                mark = (f["hz"] * h, label, MARK_COLOURS.get(f["kind"], 5))
                if f["kind"] in ("shaft", "mesh"):
                    shaft_marks.append(mark)
                if f["kind"] in ("bpfo", "bpfi", "bsf", "ftf") and sensor_bearing in (None, f["component"]):
                    bearing_marks.append(mark)
        charts = []
        if plots.get("spectrum"):
            charts.append(
                spectrum_chart(
                    title=_("Spectrum (acceleration, g)"),
                    x_label=_("Frequency (Hz)"),
                    y_label=_("Amplitude (g)"),
                    points=list(zip(plots["spectrum"]["hz"], plots["spectrum"]["g"], strict=False)),
                    markers=shaft_marks,
                )
            )
        if plots.get("envelope"):
            band = ((capture.indicators or {}).get("axes") or {}).values()
            band_hz = next(iter(band), {}).get("envelope_band_hz") if band else None
            title = _("Envelope spectrum")
            if band_hz:
                title = _("Envelope spectrum (band %(low)s-%(high)s Hz)") % {"low": band_hz[0], "high": band_hz[1]}
            charts.append(
                spectrum_chart(
                    title=title,
                    x_label=_("Frequency (Hz)"),
                    y_label=_("Amplitude"),
                    points=list(zip(plots["envelope"]["hz"], plots["envelope"]["amplitude"], strict=False)),
                    markers=bearing_marks + [m for m in shaft_marks if m[1].endswith(("1x", "2x", "3x"))][:3],
                )
            )
        diagnoses = list(capture.diagnoses.order_by("-confidence"))
        for diagnosis in diagnoses:
            diagnosis.explanation_text = EXPLANATION_STATUS.get(diagnosis.explanation_status, "")
        trends = []
        if kinematics is not None:
            ab, bc, cd = ISO_ZONE_LIMITS.get(kinematics.machine_class, ISO_ZONE_LIMITS["II"])
            zones = [("A", 0.0, ab), ("B", ab, bc), ("C", bc, cd), ("D", cd, float("inf"))]
            for sensor in kinematics.sensors:
                points = vibration_trend(asset=asset, sensor=sensor.name)
                if not points:
                    continue
                component = sensor.bearing or kinematics.shafts[0].name
                trends.append(
                    zoned_line_chart(
                        title=_("%(component)s (sensor %(sensor)s): velocity RMS, mm/s")
                        % {"component": component, "sensor": sensor.name},
                        x_label=_("Captured (UTC)"),
                        x_format=_when,
                        series={_("Velocity RMS"): [(at.timestamp(), v) for at, v, _zone in points]},
                        zones=zones,
                    )
                )
        return super().get_context_data(
            capture=capture,
            asset=asset,
            machine_class=kinematics.machine_class if kinematics else "",
            charts=charts,
            axes=(capture.indicators or {}).get("axes", {}),
            learned=(capture.indicators or {}).get("learned"),
            diagnoses=diagnoses,
            trends=trends,
            **kwargs,
        )


class AssetEventCreate(AssetDetail):
    """Failure history (`POST maintenance/events`): failures end the run-to-failure lives models train on."""

    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}

    def post(self, request, *args, **kwargs):
        asset = self.owned(self.queryset, pk=self.kwargs["pk"])
        form = EventForm(request.POST)
        if form.is_valid():
            try:
                services.asset_event_create(organization=self.organization, asset=asset, **form.cleaned_data)
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(request, _("Recorded."))
                return redirect("portal:maintenance-asset", org_slug=self.organization.slug, pk=asset.pk)
        return self.render_to_response(self.get_context_data(asset_object=asset, event_form=form), status=400)


class WorkOrderMove(OrgPage, TemplateView):
    """Acknowledge or close a work order (`POST maintenance/work-orders/{id}/acknowledge|close`)."""

    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}
    queryset = WorkOrder.objects.select_related("asset")

    def post(self, request, *args, **kwargs):
        work_order = self.owned(self.queryset, pk=self.kwargs["pk"])
        action = request.POST.get("action")
        try:
            if action == "acknowledge":
                services.work_order_acknowledge(work_order=work_order, actor=self.actor)
                messages.success(request, _("Work order acknowledged."))
            elif action == "close":
                services.work_order_close(
                    work_order=work_order, actor=self.actor, resolution=request.POST.get("resolution", "")[:4000]
                )
                messages.success(request, _("Work order closed."))
            else:
                messages.error(request, _("Choose acknowledge or close."))
        except services.WorkOrderTransitionRefused as exc:
            messages.error(request, str(exc))
        if request.POST.get("back") == "asset":
            return redirect("portal:maintenance-asset", org_slug=self.organization.slug, pk=work_order.asset_id)
        return redirect("portal:maintenance", org_slug=self.organization.slug)


# --- one job --------------------------------------------------------------------------------------------------------


class JobDetail(LiveFragment, OrgPage, TemplateView):
    """A training or scoring job; with `X-Fragment: 1` only its live part, which portal.js polls until it ends."""

    template_name = "portal/maintenance/job.html"
    fragment_template = "portal/maintenance/job_live.html"
    section = "maintenance"
    queryset = Job.objects.filter(kind__in=JOB_KINDS)

    def get_context_data(self, **kwargs):
        job = _describe_job(self.owned(self.queryset, pk=self.kwargs["pk"]))
        result = job.result or {}
        asset_type = AssetType.objects.filter(
            organization=self.organization, pk=job.params.get("asset_type_id")
        ).first()
        scored = []
        if job.kind == SCORE_JOB_KIND and result.get("assets"):
            pks = dict(
                Asset.objects.filter(
                    organization=self.organization, code__in=[a["asset"] for a in result["assets"]]
                ).values_list("code", "pk")
            )
            scored = [{**a, "pk": pks.get(a["asset"])} for a in result["assets"]]
        return super().get_context_data(
            job=job,
            result=result,
            asset_type=asset_type,
            scored=scored,
            events=list(job.events.order_by("-created_at", "-id")[:50]),
            **kwargs,
        )


class JobCancel(OrgPage, TemplateView):
    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.JOBS}
    queryset = Job.objects.filter(kind__in=JOB_KINDS)

    def post(self, request, *args, **kwargs):
        job = self.owned(self.queryset, pk=self.kwargs["pk"])
        try:
            job_cancel(job=job, actor=self.actor)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Cancellation requested."))
        return redirect("portal:maintenance-job", org_slug=self.organization.slug, pk=job.pk)


urlpatterns = [
    path("maintenance", Maintenance.as_view(), name="maintenance"),
    path("maintenance/asset-types", AssetTypeCreate.as_view(), name="maintenance-asset-type-create"),
    path("maintenance/assets", AssetCreate.as_view(), name="maintenance-asset-create"),
    path("maintenance/telemetry", TelemetryUpload.as_view(), name="maintenance-telemetry"),
    path("maintenance/history", HistoryImport.as_view(), name="maintenance-history"),
    path("maintenance/train", Train.as_view(), name="maintenance-train"),
    path("maintenance/score", Score.as_view(), name="maintenance-score"),
    path("maintenance/assets/<uuid:pk>", AssetDetail.as_view(), name="maintenance-asset"),
    path("maintenance/assets/<uuid:pk>/events", AssetEventCreate.as_view(), name="maintenance-asset-event"),
    path("maintenance/work-orders/<uuid:pk>", WorkOrderMove.as_view(), name="maintenance-work-order"),
    path("maintenance/captures/<uuid:pk>", CaptureDetail.as_view(), name="maintenance-capture"),
    path("maintenance/jobs/<uuid:pk>", JobDetail.as_view(), name="maintenance-job"),
    path("maintenance/jobs/<uuid:pk>/cancel", JobCancel.as_view(), name="maintenance-job-cancel"),
]
