"""Quality API under /api/v1/orgs/{org_slug}/quality/.

Reads need org:read, writes org:write; starting an analysis needs `jobs`. Ingestion takes JSON
(`{"steps": [...]}`), a multipart CSV (`file`) or a text/csv body, all or nothing; a refusal names every problem
by file and line.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from foundation.api.errors import rejected_response
from foundation.api.pagination import CreatedCursorPagination
from foundation.api.parsers import CsvBodyParser
from tenants.roles import Scope
from tenants.scoping import OrganizationScopedViewMixin

from . import ingest, selectors, serializers, services
from .conf import MAX_UPLOAD_BYTES
from .models import Analysis, Characteristic, Lot, Machine, ProcessVariable, Station, Unit


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
