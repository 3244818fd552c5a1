"""Quality API under /api/v1/orgs/{org_slug}/quality/.

Reads need org:read, writes org:write; starting an analysis needs `jobs`. Ingestion takes JSON
(`{"steps": [...]}`), a multipart CSV (`file`) or a text/csv body, all or nothing; a refusal names every problem
by file and line.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from foundation.api.downloads import attachment
from foundation.api.errors import rejected_response
from foundation.api.pagination import CreatedCursorPagination
from foundation.api.parsers import CsvBodyParser
from foundation.api.webhooks import IngestionKeyViewMixin, WebhookEndpointViewMixin
from tenants.models import User
from tenants.roles import Scope
from tenants.scoping import ADMIN_WRITES, OrganizationScopedViewMixin

from . import ingest, report8d, selectors, serializers, services
from .conf import MAX_UPLOAD_BYTES
from .models import (
    Alarm,
    Analysis,
    Characteristic,
    ContainmentAction,
    CorrectiveAction,
    IngestionKey,
    Investigation,
    Lot,
    Machine,
    ProcessVariable,
    Report8D,
    Station,
    Unit,
    WebhookDelivery,
    WebhookEndpoint,
)


class CsvParser(CsvBodyParser):
    max_bytes = MAX_UPLOAD_BYTES


class RoutingOrderPagination(CreatedCursorPagination):
    ordering = ("position", "id")


class StationViewSet(OrganizationScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Stations in routing order (`position`, upstream first)."""

    queryset = Station.objects.all()
    pagination_class = RoutingOrderPagination
    serializer_class = serializers.QualityStationSerializer

    def perform_create(self, serializer):
        serializer.instance = services.station_create(organization=self.organization, **serializer.validated_data)


class MachineViewSet(OrganizationScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Machine.objects.select_related("station")
    serializer_class = serializers.QualityMachineSerializer
    list_filters = {"station": "station__code"}

    def perform_create(self, serializer):
        serializer.instance = services.machine_create(organization=self.organization, **serializer.validated_data)


class ProcessVariableViewSet(OrganizationScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Process variables; `causes` names the variables that drive this one (the causal prior)."""

    queryset = ProcessVariable.objects.select_related("station").prefetch_related("causes")
    serializer_class = serializers.QualityProcessVariableSerializer
    list_filters = {"station": "station__code"}

    def perform_create(self, serializer):
        serializer.instance = services.variable_create(organization=self.organization, **serializer.validated_data)

    @extend_schema(
        parameters=[serializers.QualityChartQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
        operation_id="quality_chart",
    )
    @action(detail=True, methods=["get"])
    def chart(self, request, *args, **kwargs):
        """Control chart (I-MR, or X-bar/R with `subgroup` > 1) of per-unit values, rule violations, Cp/Cpk."""
        variable = self.get_object()
        query = serializers.QualityChartQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        machine = None
        if params.pop("machine", None):
            machine = Machine.objects.filter(
                organization=self.organization, code=request.query_params["machine"]
            ).first()
            if machine is None:
                raise DjangoValidationError({"machine": ["No such machine."]})
        return Response(
            selectors.variable_chart(organization=self.organization, variable=variable, machine=machine, **params)
        )


class CharacteristicViewSet(OrganizationScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Inspection characteristics with their defect codes; `affected_by` names the variables they depend on."""

    queryset = Characteristic.objects.select_related("station").prefetch_related("affected_by", "defect_codes")
    serializer_class = serializers.QualityCharacteristicSerializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data["defect_codes"] = [dict(d) for d in data.get("defect_codes", [])]
        serializer.instance = services.characteristic_create(organization=self.organization, **data)

    @extend_schema(
        parameters=[serializers.QualityChartQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
        operation_id="quality_characteristic_chart",
    )
    @action(detail=True, methods=["get"])
    def chart(self, request, *args, **kwargs):
        """Control chart of the inspected values (I-MR, or X-bar/R with `subgroup` > 1), rule violations, Cp/Cpk."""
        characteristic = self.get_object()
        query = serializers.QualityChartQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        params.pop("machine", None)
        return Response(
            selectors.characteristic_chart(organization=self.organization, characteristic=characteristic, **params)
        )


class LotViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Material lots (`?code=`); `trace` lists every unit that used the lot (trace forward)."""

    queryset = Lot.objects.all()
    serializer_class = serializers.QualityLotSerializer
    list_filters = {"code": "code"}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def trace(self, request, *args, **kwargs):
        return Response(selectors.lot_trace_forward(organization=self.organization, lot=self.get_object()))


class UnitViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Units (`?serial=`, `?lot=`, `?status=`); `trace` shows its lots, machines and inspections (trace back)."""

    queryset = Unit.objects.prefetch_related("lots")
    serializer_class = serializers.QualityUnitSerializer
    list_filters = {"serial": "serial", "status": "status", "lot": "lots__code"}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def trace(self, request, *args, **kwargs):
        return Response(selectors.unit_trace_back(organization=self.organization, unit=self.get_object()))


class IngestView(OrganizationScopedViewMixin, GenericAPIView):
    """Units (`unit,lots,status`), step records (`unit,station,machine,ts,variable,value`) or inspection results
    (`unit,characteristic,ts,value,defect_code`): JSON, multipart CSV or a text/csv body; all or nothing."""

    parser_classes = [JSONParser, MultiPartParser, CsvParser]
    serializer_class = serializers.QualityIngestResultSerializer
    kind = ""

    @extend_schema(
        request={
            "application/json": OpenApiTypes.OBJECT,
            "multipart/form-data": OpenApiTypes.OBJECT,
            "text/csv": OpenApiTypes.STR,
        },
        responses={201: serializers.QualityIngestResultSerializer},
    )
    def post(self, request, org_slug):
        try:
            rows = self._rows(request)
            result = ingest.ingest(organization=self.organization, kind=self.kind, rows=rows)
        except ingest.IngestRejected as rejected:
            return rejected_response(rejected)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)

    def _rows(self, request):
        content_type = request.content_type or ""
        if content_type.startswith("text/csv"):
            return ingest.rows_from_csv(
                kind=self.kind, content=self._limited(request.data), filename=f"{self.kind}.csv"
            )
        if content_type.startswith("multipart/"):
            upload = request.FILES.get("file")
            if upload is None:
                raise ingest.IngestRejected({"file": ["Send the CSV file in the field `file`."]})
            return ingest.rows_from_csv(
                kind=self.kind, content=self._limited(upload.read(MAX_UPLOAD_BYTES + 1)), filename=upload.name or "file"
            )
        return ingest.rows_from_json(kind=self.kind, document=request.data)

    @staticmethod
    def _limited(content: bytes) -> bytes:
        if len(content) > MAX_UPLOAD_BYTES:
            raise ingest.IngestRejected({"file": [f"Larger than {MAX_UPLOAD_BYTES // 2**20} MiB; split it."]})
        return content


class UnitIngestView(IngestView):
    kind = "units"


class StepIngestView(IngestView):
    kind = "steps"


class InspectionIngestView(IngestView):
    kind = "inspections"


@extend_schema(parameters=[OpenApiParameter("defect_code", str), OpenApiParameter("verdict", str)])
class AnalysisViewSet(OrganizationScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Root-cause analyses. Creating one starts the `quality.analyse` job (scope `jobs`); follow it under /jobs
    or here (`status`, `verdict`, `result` with the ranked causes and their evidence, and `ranking`: whether the
    supervised ranking learned from labelled analyses leads). `label` stores the confirmed causes."""

    queryset = Analysis.objects.select_related("defect_code")
    serializer_class = serializers.QualityAnalysisSerializer
    action_scopes = {"create": Scope.JOBS}
    list_filters = {"defect_code": "defect_code__code", "verdict": "verdict"}

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.analysis_start(
            organization=self.organization,
            actor=self.actor,
            defect_code=data["defect_code"],
            method=data.get("method", Analysis.Method.AUTO),
            start=data.get("start"),
            end=data.get("end"),
            units=data.get("units", []),
            candidates=data.get("candidates", []),
            window_seconds=data.get("window_seconds", 30.0),
        )

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        response.status_code = status.HTTP_202_ACCEPTED
        return response

    @extend_schema(
        request=serializers.QualityAnalysisLabelSerializer, responses={200: serializers.QualityAnalysisSerializer}
    )
    @action(detail=True, methods=["post"])
    def label(self, request, *args, **kwargs):
        """Store the cause(s) the investigation confirmed (scope org:write). Labelled analyses of a characteristic
        are the history its supervised ranking learns from."""
        analysis = self.get_object()
        body = serializers.QualityAnalysisLabelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.analysis_label(
            analysis=analysis,
            causes=body.validated_data["causes"],
            unit=body.validated_data.get("unit"),
            actor=self.actor,
        )
        return Response(self.get_serializer(analysis).data)


class AlarmViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """SPC alarms (`?status=open`, `?variable=`, `?machine=`, `?characteristic=`, `?rule=`): one open alarm per
    series and rule; `acknowledge` and `close` (org:write) with an optional `note`."""

    queryset = Alarm.objects.select_related("variable", "machine", "characteristic", "acknowledged_by")
    serializer_class = serializers.QualityAlarmSerializer
    list_filters = {
        "status": "status",
        "variable": "variable__name",
        "machine": "machine__code",
        "characteristic": "characteristic__code",
        "rule": "rule",
    }
    action_scopes = {"acknowledge": Scope.ORG_WRITE, "close": Scope.ORG_WRITE}

    def _note(self, request) -> str:
        form = serializers.QualityAlarmNoteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return form.validated_data["note"]

    @extend_schema(request=serializers.QualityAlarmNoteSerializer, responses={200: serializers.QualityAlarmSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        alarm = services.alarm_acknowledge(alarm=self.get_object(), actor=self.actor, note=self._note(request))
        return Response(self.get_serializer(alarm).data)

    @extend_schema(request=serializers.QualityAlarmNoteSerializer, responses={200: serializers.QualityAlarmSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, *args, **kwargs):
        alarm = services.alarm_close(alarm=self.get_object(), note=self._note(request))
        return Response(self.get_serializer(alarm).data)


@extend_schema_view(create=extend_schema(responses={201: serializers.QualityIngestionKeyCreatedSerializer}))
class IngestionKeyViewSet(IngestionKeyViewMixin, OrganizationScopedViewMixin, viewsets.GenericViewSet):
    """Device keys for MQTT step records: the secret is shown once; DELETE revokes."""

    queryset = IngestionKey.objects.select_related("machine")
    serializer_class = serializers.QualityIngestionKeySerializer
    created_serializer_class = serializers.QualityIngestionKeyCreatedSerializer
    services = services
    action_scopes = ADMIN_WRITES


@extend_schema_view(create=extend_schema(responses={201: serializers.QualityWebhookEndpointCreatedSerializer}))
class WebhookEndpointViewSet(WebhookEndpointViewMixin, OrganizationScopedViewMixin, viewsets.ModelViewSet):
    """Where `quality.alarm` and `quality.analysis.finished` are POSTed, signed (`Lightsout-Signature: t=...,v1=...`);
    the secret is shown once."""

    queryset = WebhookEndpoint.objects.all()
    serializer_class = serializers.QualityWebhookEndpointSerializer
    created_serializer_class = serializers.QualityWebhookEndpointCreatedSerializer
    services = services
    action_scopes = ADMIN_WRITES


class WebhookDeliveryViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = WebhookDelivery.objects.all()
    serializer_class = serializers.QualityWebhookDeliverySerializer
    list_filters = {"endpoint": "endpoint_id", "status": "status", "event": "event"}


def _member_by_email(organization, email: str | None):
    if email is None:
        return None
    user = User.objects.filter(email__iexact=email, memberships__organization=organization).first()
    if user is None:
        raise DjangoValidationError({"assignee": [f"No member with the e-mail address {email}."]})
    return user


class InvestigationViewSet(
    OrganizationScopedViewMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Investigations of a defect code, optionally from an analysis (its first significant cause and window);
    `suspects` are the units and lots that share the cause (still in the plant or shipped); containment and
    corrective actions; the 8D `report` (GET, PATCH sections, POST `report/draft`, `report/markdown`, `report/pdf`).
    """

    queryset = Investigation.objects.select_related("defect_code", "report").prefetch_related(
        "containment_actions", "corrective_actions__assignee"
    )
    serializer_class = serializers.QualityInvestigationSerializer
    list_filters = {"status": "status", "defect_code": "defect_code__code"}

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        analysis = None
        if data.get("analysis_id"):
            analysis = Analysis.objects.filter(organization=self.organization, pk=data["analysis_id"]).first()
            if analysis is None:
                raise DjangoValidationError({"analysis": ["No such analysis."]})
        serializer.instance = services.investigation_open(
            organization=self.organization,
            actor=self.actor,
            defect_code=data.get("defect_code"),
            analysis=analysis,
            title=data.get("title", ""),
            description=data.get("description", ""),
            cause_level=data.get("cause_level", ""),
            cause_name=data.get("cause_name", ""),
            window_start=data.get("window_start"),
            window_end=data.get("window_end"),
        )

    def perform_update(self, serializer):
        data = {k: v for k, v in serializer.validated_data.items() if k in ("title", "description", "status")}
        serializer.instance = services.investigation_update(investigation=serializer.instance, data=data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def suspects(self, request, *args, **kwargs):
        return Response(selectors.investigation_suspects(investigation=self.get_object()))

    @extend_schema(
        request=serializers.QualityContainmentActionSerializer,
        responses={201: serializers.QualityContainmentActionSerializer},
    )
    @action(detail=True, methods=["post"], url_path="containment-actions")
    def containment_actions(self, request, *args, **kwargs):
        investigation = self.get_object()
        form = serializers.QualityContainmentActionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        action_ = services.containment_add(investigation=investigation, description=form.validated_data["description"])
        return Response(serializers.QualityContainmentActionSerializer(action_).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.QualityCorrectiveActionSerializer,
        responses={201: serializers.QualityCorrectiveActionSerializer},
    )
    @action(detail=True, methods=["post"], url_path="corrective-actions")
    def corrective_actions(self, request, *args, **kwargs):
        investigation = self.get_object()
        form = serializers.QualityCorrectiveActionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        action_ = services.corrective_add(
            investigation=investigation,
            description=data["description"],
            assignee=_member_by_email(self.organization, data.get("assignee", {}).get("email")),
            due_date=data.get("due_date"),
        )
        return Response(serializers.QualityCorrectiveActionSerializer(action_).data, status=status.HTTP_201_CREATED)

    def _report(self):
        investigation = self.get_object()
        report = Report8D.objects.filter(investigation=investigation).first()
        if report is None:
            raise NotFound("No 8D report yet: POST report/draft to draft one.")
        return report

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={200: serializers.QualityReportSerializer},
        operation_id="quality_report",
    )
    @extend_schema(
        methods=["PATCH"],
        request=serializers.QualityReportSerializer,
        responses={200: serializers.QualityReportSerializer},
        operation_id="quality_report_edit",
    )
    @action(detail=True, methods=["get", "patch"])
    def report(self, request, *args, **kwargs):
        report = self._report()
        if request.method == "PATCH":
            form = serializers.QualityReportSerializer(report, data=request.data, partial=True)
            form.is_valid(raise_exception=True)
            report = report8d.report_edit(report=report, sections=dict(form.validated_data.get("sections", {})))
        return Response(serializers.QualityReportSerializer(report).data)

    @extend_schema(request=None, responses={202: serializers.QualityReportSerializer})
    @action(detail=True, methods=["post"], url_path="report/draft")
    def report_draft(self, request, *args, **kwargs):
        report = report8d.report_request(investigation=self.get_object())
        return Response(serializers.QualityReportSerializer(report).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "text/markdown"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="report/markdown")
    def report_markdown(self, request, *args, **kwargs):
        report = self._report()
        return attachment(
            report8d.report_markdown(report),
            filename=f"8d-{report.investigation_id}.md",
            content_type="text/markdown; charset=utf-8",
        )

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="report/pdf")
    def report_pdf(self, request, *args, **kwargs):
        report = self._report()
        return attachment(
            report8d.report_pdf(report), filename=f"8d-{report.investigation_id}.pdf", content_type="application/pdf"
        )


class ContainmentActionViewSet(OrganizationScopedViewMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Containment actions of investigations: PATCH `status` (`open`, `done`) or `description`."""

    queryset = ContainmentAction.objects.all()
    serializer_class = serializers.QualityContainmentActionSerializer
    list_filters = {"investigation": "investigation_id", "status": "status"}

    def perform_update(self, serializer):
        serializer.instance = services.containment_update(
            action=serializer.instance, data=dict(serializer.validated_data)
        )


class CorrectiveActionViewSet(OrganizationScopedViewMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Corrective actions: PATCH `assignee` (a member's e-mail), `due_date`, `description`, `status: implemented`
    or `implemented_at`; POST `check` runs the effectiveness check (closes as `effective`, reopens, or says there is
    not enough data yet)."""

    queryset = CorrectiveAction.objects.select_related("assignee", "investigation__defect_code")
    serializer_class = serializers.QualityCorrectiveActionSerializer
    list_filters = {"investigation": "investigation_id", "status": "status"}

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "assignee" in data:
            data["assignee"] = _member_by_email(self.organization, (data["assignee"] or {}).get("email"))
        serializer.instance = services.corrective_update(action=serializer.instance, data=data)

    @extend_schema(request=None, responses={200: serializers.QualityCorrectiveActionSerializer})
    @action(detail=True, methods=["post"])
    def check(self, request, *args, **kwargs):
        return Response(self.get_serializer(services.corrective_check(action=self.get_object())).data)
