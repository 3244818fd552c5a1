"""Predictive-maintenance API under /api/v1/orgs/{org_slug}/maintenance/.

Reads need org:read, writes org:write; starting training or scoring needs `jobs`; device keys and webhooks
(which hand out secrets) need org:admin. Telemetry batches are JSON, multipart CSV (`file`) or a text/csv body.
"""

from datetime import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from foundation.api.errors import ApiError, error_body, rejected_response
from foundation.api.parsers import CsvBodyParser
from foundation.api.webhooks import IngestionKeyViewMixin, WebhookEndpointViewMixin
from tenants.roles import Scope
from tenants.scoping import ADMIN_WRITES, OrganizationScopedViewMixin

from . import importing, serializers, services, telemetry, vibration
from .conf import MAX_BATCH_CAPTURES, MAX_UPLOAD_BYTES
from .engine.kinematics import BEARING_CATALOGUE
from .models import (
    Anomaly,
    Asset,
    AssetEvent,
    AssetHealth,
    AssetType,
    IngestionKey,
    Recommendation,
    TrainedModel,
    VibrationCapture,
    VibrationDiagnosis,
    WebhookDelivery,
    WebhookEndpoint,
    WorkOrder,
)
from .selectors import telemetry_series


class CsvParser(CsvBodyParser):
    max_bytes = MAX_UPLOAD_BYTES


class AssetTypeViewSet(OrganizationScopedViewMixin, viewsets.ModelViewSet):
    queryset = AssetType.objects.prefetch_related("channels")
    serializer_class = serializers.AssetTypeSerializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.asset_type_create(
            organization=self.organization, channels=[dict(c) for c in data.pop("channels")], **data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "channels" in data:
            data["channels"] = [dict(c) for c in data["channels"]]
        serializer.instance = services.asset_type_update(asset_type=serializer.instance, data=data)

    def perform_destroy(self, instance):
        services.asset_type_delete(asset_type=instance)


class AssetViewSet(OrganizationScopedViewMixin, viewsets.ModelViewSet):
    queryset = Asset.objects.select_related("asset_type")
    serializer_class = serializers.AssetSerializer
    list_filters = {"asset_type": "asset_type__code", "site": "site"}

    def perform_create(self, serializer):
        serializer.instance = services.asset_create(organization=self.organization, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.asset_update(asset=serializer.instance, data=serializer.validated_data)

    def perform_destroy(self, instance):
        services.asset_delete(asset=instance)

    @extend_schema(parameters=[serializers.TelemetryQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def telemetry(self, request, *args, **kwargs):
        """The asset's readings in [start, end) per channel, raw or downsampled (`bucket_seconds`)."""
        asset = self.get_object()
        query = serializers.TelemetryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        channels = list(asset.asset_type.channels.all())
        if params.get("channels"):
            wanted = [name.strip() for name in params["channels"].split(",") if name.strip()]
            unknown = sorted(set(wanted) - {c.name for c in channels})
            if unknown:
                raise DjangoValidationError(
                    {"channels": [f"{asset.asset_type.code} has no channel {n!r}." for n in unknown]}
                )
            channels = [c for c in channels if c.name in wanted]
        try:
            series = telemetry_series(
                asset=asset,
                channels=channels,
                start=params["start"],
                end=params["end"],
                bucket_seconds=params.get("bucket_seconds"),
            )
        except ValueError as exc:
            raise ApiError(str(exc), code="too_many_points") from exc
        return Response(
            {
                "asset": asset.code,
                "start": params["start"],
                "end": params["end"],
                "bucket_seconds": params.get("bucket_seconds"),
                "channels": series,
            }
        )

    @extend_schema(methods=["GET"], responses={200: serializers.KinematicsSerializer}, summary="The asset's kinematics")
    @extend_schema(
        methods=["PUT"],
        request=serializers.KinematicsSerializer,
        responses={200: serializers.KinematicsSerializer},
        summary="Describe what rotates in the asset",
    )
    @action(detail=True, methods=["get", "put"], serializer_class=serializers.KinematicsSerializer)
    def kinematics(self, request, *args, **kwargs):
        """Shafts, bearings (catalogue `model` or geometry), gears and sensors; PUT replaces them and adds the
        sensors' indicator channels to the asset type."""
        asset = self.get_object()
        if request.method == "PUT":
            form = serializers.KinematicsSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            record = vibration.kinematics_set(asset=asset, data=dict(form.validated_data))
        else:
            record = getattr(asset, "kinematics", None)
            if record is None:
                raise ApiError(f"{asset.code} has no kinematics yet.", code="not_found", status_code=404)
        return Response(serializers.KinematicsSerializer({**record.as_dict(), "updated_at": record.updated_at}).data)


class TelemetryIngestView(OrganizationScopedViewMixin, GenericAPIView):
    """A batch of readings, all or nothing: JSON `{"readings": [...]}`, a CSV file (multipart field `file`) or
    a text/csv body. CSV is long (asset,channel,ts,value) or wide (asset,ts,<channel>...). Errors name each bad
    line or index; nothing of a rejected batch is stored."""

    parser_classes = [JSONParser, MultiPartParser, CsvParser]
    serializer_class = serializers.IngestResultSerializer

    @extend_schema(
        request={
            "application/json": OpenApiTypes.OBJECT,
            "multipart/form-data": OpenApiTypes.OBJECT,
            "text/csv": OpenApiTypes.STR,
        },
        responses={201: serializers.IngestResultSerializer},
    )
    def post(self, request, org_slug):
        try:
            readings = self._readings(request)
            result = telemetry.telemetry_ingest(organization=self.organization, readings=readings)
        except telemetry.TelemetryRejected as rejected:
            return rejected_response(rejected)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)

    def _readings(self, request) -> list:
        content_type = request.content_type or ""
        if content_type.startswith("text/csv"):
            return telemetry.readings_from_csv(self._limited(request.data))
        if content_type.startswith("multipart/"):
            upload = request.FILES.get("file")
            if upload is None:
                raise telemetry.TelemetryRejected({"file": ["Send the CSV file in the field `file`."]})
            return telemetry.readings_from_csv(self._limited(upload.read(MAX_UPLOAD_BYTES + 1)))
        return telemetry.readings_from_json(request.data)

    @staticmethod
    def _limited(content: bytes) -> bytes:
        if len(content) > MAX_UPLOAD_BYTES:
            raise telemetry.TelemetryRejected({"file": [f"Larger than {MAX_UPLOAD_BYTES // 2**20} MiB; split it."]})
        return content


class RunToFailureImportView(OrganizationScopedViewMixin, GenericAPIView):
    """Historical run-to-failure data (C-MAPSS text or CSV) for one asset type: creates the assets, their telemetry
    and a failure at each one's last cycle, all or nothing."""

    parser_classes = [MultiPartParser]
    serializer_class = serializers.ImportRequestSerializer

    @extend_schema(
        request={"multipart/form-data": serializers.ImportRequestSerializer}, responses={201: OpenApiTypes.OBJECT}
    )
    def post(self, request, org_slug):
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        upload = data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            return rejected_response(
                telemetry.TelemetryRejected({"file": [f"Larger than {MAX_UPLOAD_BYTES // 2**20} MiB."]})
            )
        columns = [c.strip() for c in data["columns"].split(",")] if data.get("columns") else None
        try:
            result = importing.run_to_failure_import(
                organization=self.organization,
                asset_type=data["asset_type"],
                content=upload.read(),
                file_format=data["format"],
                columns=columns,
                asset_prefix=data["asset_prefix"],
                start=data.get("start"),
                site=data["site"],
            )
        except telemetry.TelemetryRejected as rejected:
            return rejected_response(rejected)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)


class AssetEventViewSet(
    OrganizationScopedViewMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Failure history: failures and maintenance actions (repair, replacement, inspection)."""

    queryset = AssetEvent.objects.select_related("asset")
    serializer_class = serializers.AssetEventSerializer
    list_filters = {"asset": "asset__code", "kind": "kind"}

    def perform_create(self, serializer):
        serializer.instance = services.asset_event_create(organization=self.organization, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.asset_event_delete(event=instance)


def _job_started(job) -> Response:
    return Response({"job": str(job.pk), "kind": job.kind, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class TrainedModelViewSet(
    OrganizationScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """RUL models with their cross-validation metrics; `train` and `score` start jobs (follow them under /jobs)."""

    queryset = TrainedModel.objects.select_related("asset_type").defer("artefact", "baseline")
    serializer_class = serializers.TrainedModelSerializer
    action_scopes = {"train": Scope.JOBS, "score": Scope.JOBS}
    list_filters = {"asset_type": "asset_type__code"}

    @extend_schema(request=serializers.TrainRequestSerializer, responses={202: serializers.JobStartedSerializer})
    @action(detail=False, methods=["post"])
    def train(self, request, *args, **kwargs):
        form = serializers.TrainRequestSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        job = services.training_start(
            organization=self.organization,
            asset_type=form.validated_data["asset_type"],
            actor=self.actor,
            asset_codes=form.validated_data.get("assets"),
        )
        return _job_started(job)

    @extend_schema(request=serializers.ScoreRequestSerializer, responses={202: serializers.JobStartedSerializer})
    @action(detail=False, methods=["post"])
    def score(self, request, *args, **kwargs):
        form = serializers.ScoreRequestSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        job = services.scoring_start(
            organization=self.organization, asset_type=form.validated_data["asset_type"], actor=self.actor
        )
        return _job_started(job)


_ASSET_FILTER = [OpenApiParameter("asset", str, description="An asset's code.")]


@extend_schema(parameters=_ASSET_FILTER)
class AssetHealthViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = AssetHealth.objects.select_related("asset")
    serializer_class = serializers.AssetHealthSerializer
    list_filters = {"asset": "asset__code"}


class AnomalyViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Anomaly.objects.select_related("asset")
    serializer_class = serializers.AnomalySerializer
    list_filters = {"asset": "asset__code", "channel": "channel", "ongoing": "ongoing"}


class RecommendationViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Recommendation.objects.select_related("asset", "work_order")
    serializer_class = serializers.RecommendationSerializer
    list_filters = {"asset": "asset__code", "explanation_status": "explanation_status"}


class WorkOrderViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Work orders from recommendations: open -> acknowledged -> closed (or straight to closed)."""

    queryset = WorkOrder.objects.select_related("asset", "recommendation__asset", "recommendation__work_order")
    serializer_class = serializers.WorkOrderSerializer
    list_filters = {"asset": "asset__code", "status": "status"}

    def _moved(self, move) -> Response:
        work_order = self.get_object()
        try:
            work_order = move(work_order)
        except services.WorkOrderTransitionRefused as exc:
            raise ApiError(str(exc), code="invalid_transition", status_code=status.HTTP_409_CONFLICT) from exc
        return Response(self.get_serializer(work_order).data)

    @extend_schema(request=None, responses={200: serializers.WorkOrderSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        return self._moved(lambda w: services.work_order_acknowledge(work_order=w, actor=self.actor))

    @extend_schema(request=serializers.WorkOrderCloseSerializer, responses={200: serializers.WorkOrderSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, *args, **kwargs):
        form = serializers.WorkOrderCloseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._moved(
            lambda w: services.work_order_close(
                work_order=w, actor=self.actor, resolution=form.validated_data["resolution"]
            )
        )


@extend_schema_view(create=extend_schema(responses={201: serializers.IngestionKeyCreatedSerializer}))
class IngestionKeyViewSet(IngestionKeyViewMixin, OrganizationScopedViewMixin, viewsets.GenericViewSet):
    """Device keys for MQTT telemetry: the secret is shown once; DELETE revokes."""

    queryset = IngestionKey.objects.select_related("asset")
    serializer_class = serializers.IngestionKeySerializer
    created_serializer_class = serializers.IngestionKeyCreatedSerializer
    services = services
    action_scopes = ADMIN_WRITES


@extend_schema_view(create=extend_schema(responses={201: serializers.WebhookEndpointCreatedSerializer}))
class WebhookEndpointViewSet(WebhookEndpointViewMixin, OrganizationScopedViewMixin, viewsets.ModelViewSet):
    """Where new recommendations are POSTed, signed (`Lightsout-Signature: t=...,v1=...`); the secret is shown
    once."""

    queryset = WebhookEndpoint.objects.all()
    serializer_class = serializers.WebhookEndpointSerializer
    created_serializer_class = serializers.WebhookEndpointCreatedSerializer
    services = services
    action_scopes = ADMIN_WRITES


class WebhookDeliveryViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = WebhookDelivery.objects.all()
    serializer_class = serializers.WebhookDeliverySerializer
    list_filters = {"endpoint": "endpoint_id", "status": "status"}


class BearingCatalogueView(OrganizationScopedViewMixin, GenericAPIView):
    """The built-in bearing catalogue: geometry and defect frequencies as multiples of shaft speed."""

    serializer_class = serializers.BearingCatalogueSerializer
    pagination_class = None

    @extend_schema(responses={200: serializers.BearingCatalogueSerializer(many=True)})
    def get(self, request, org_slug):
        rows = [
            {
                "model": name,
                "elements": g.elements,
                "ball_diameter_mm": g.ball_diameter_mm,
                "pitch_diameter_mm": g.pitch_diameter_mm,
                "contact_angle_deg": g.contact_angle_deg,
                "bpfo": round(g.bpfo, 5),
                "bpfi": round(g.bpfi, 5),
                "bsf": round(g.bsf, 5),
                "ftf": round(g.ftf, 5),
            }
            for name, g in BEARING_CATALOGUE.items()
        ]
        return Response(serializers.BearingCatalogueSerializer(rows, many=True).data)


_EXTENSIONS = {".npy": "npy", ".wav": "wav", ".csv": "csv", ".f32": "float32", ".bin": "float32", ".raw": "float32"}


def _format_of(name: str | None) -> str | None:
    name = (name or "").lower()
    return next((f for ext, f in _EXTENSIONS.items() if name.endswith(ext)), None)


def _batch_items(data: dict, files: list) -> tuple[list[vibration.CaptureInput], datetime | None]:
    """The captures of a batch upload: one per file, or the captures of one .npy stack; each with its fields
    (given once for all, or once per capture). Raises CaptureRejected."""
    formats = [data.get("format") or _format_of(f.name) for f in files]
    stacked = None
    if len(files) == 1 and formats[0] == "npy":
        stacked = vibration.waveforms_unstack(content=files[0].read())
        count = len(stacked)
    else:
        count = len(files)
        unknown = {
            f"captures[{i}].format": ["Give the format (float32, npy, wav, csv)."]
            for i, f in enumerate(formats)
            if f is None
        }
        if unknown:
            raise vibration.CaptureRejected(unknown)
    if not 1 <= count <= MAX_BATCH_CAPTURES:
        raise vibration.CaptureRejected({"file": [f"{count} captures; a batch holds 1 to {MAX_BATCH_CAPTURES}"]})
    per_capture = {}
    for field in ("sensor", "sample_rate", "shaft_rpm", "captured_at", "label"):
        values = data.get(field) or []
        if len(values) not in (0, 1, count):
            raise vibration.CaptureRejected(
                {field: [f"{len(values)} values for {count} captures: give it once, or once per capture"]}
            )
        per_capture[field] = values
    start = None
    if len(per_capture["captured_at"]) == 1 and count > 1:
        start, per_capture["captured_at"] = per_capture["captured_at"][0], []  # the others follow back to back
    items = []
    for i in range(count):
        given = {
            name: (values[i] if len(values) == count else values[0] if values else None)
            for name, values in per_capture.items()
        }
        items.append(
            vibration.CaptureInput(
                sensor=given["sensor"] or "",
                content=b"" if stacked is not None else files[i].read(),
                fmt="npy" if stacked is not None else formats[i] or "",
                samples=stacked[i] if stacked is not None else None,
                sample_rate=given["sample_rate"],
                shaft_rpm=given["shaft_rpm"],
                captured_at=given["captured_at"],
                label=given["label"] or "",
            )
        )
    return items, start


class CaptureViewSet(
    OrganizationScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Vibration captures: upload (multipart) one waveform of one sensor, all or nothing; its analysis runs as a
    job on the maintenance queue. The detail carries the plot data (spectrum, envelope, orders, fault lines)."""

    queryset = VibrationCapture.objects.select_related("asset")
    serializer_class = serializers.CaptureSerializer
    parser_classes = [MultiPartParser]
    list_filters = {"asset": "asset__code", "sensor": "sensor", "status": "status", "label": "label"}
    action_scopes = {"train": Scope.JOBS}

    def get_serializer_class(self):
        if self.action == "retrieve":
            return serializers.CaptureDetailSerializer
        if self.action == "create":
            return serializers.CaptureUploadSerializer
        return serializers.CaptureSerializer

    @extend_schema(
        request={"multipart/form-data": serializers.CaptureUploadSerializer},
        responses={201: serializers.CaptureSerializer},
    )
    def create(self, request, *args, **kwargs):
        form = serializers.CaptureUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        upload = data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ApiError(f"Larger than {MAX_UPLOAD_BYTES // 2**20} MiB.", code="too_large", status_code=413)
        fmt = data.get("format") or _format_of(upload.name)
        if not fmt:
            raise DjangoValidationError({"format": ["Give the format (float32, npy, wav, csv)."]})
        asset = self._capture_asset(data["asset"])
        try:
            capture = vibration.capture_create(
                organization=self.organization,
                asset=asset,
                sensor=data["sensor"],
                content=upload.read(),
                fmt=fmt,
                sample_rate=data.get("sample_rate"),
                shaft_rpm=data.get("shaft_rpm"),
                unit=data["unit"],
                captured_at=data.get("captured_at"),
                label=data.get("label", ""),
                scale=data.get("scale"),
                actor=self.actor,
            )
        except vibration.CaptureRejected as exc:
            return Response(
                error_body(
                    code="invalid",
                    message="The capture was refused; nothing was stored.",
                    fields=exc.message_dict,
                ),
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(serializers.CaptureSerializer(capture).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": serializers.CaptureBatchUploadSerializer},
        responses={201: serializers.CaptureBatchSerializer},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser])
    def batch(self, request, *args, **kwargs):
        """Several captures of one asset in one request, all or nothing: one bad capture refuses the batch, naming
        it by index (`captures[3].file`), and nothing is stored. One analysis job analyses the batch."""
        form = serializers.CaptureBatchUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        files = data["file"]
        if sum(f.size for f in files) > MAX_UPLOAD_BYTES:
            raise ApiError(f"Larger than {MAX_UPLOAD_BYTES // 2**20} MiB.", code="too_large", status_code=413)
        asset = self._capture_asset(data["asset"])
        try:
            items, start = _batch_items(data, files)
            captures = vibration.captures_create(
                organization=self.organization,
                asset=asset,
                items=items,
                start=start,
                unit=data["unit"],
                scale=data.get("scale"),
                actor=self.actor,
            )
        except vibration.CaptureRejected as exc:
            return Response(
                error_body(
                    code="invalid", message="The batch was refused; nothing was stored.", fields=exc.message_dict
                ),
                status=status.HTTP_400_BAD_REQUEST,
            )
        body = {"job": captures[0].job_id, "count": len(captures), "captures": captures}
        return Response(serializers.CaptureBatchSerializer(body).data, status=status.HTTP_201_CREATED)

    def _capture_asset(self, code: str) -> Asset:
        asset = Asset.objects.select_related("kinematics").filter(organization=self.organization, code=code).first()
        if asset is None:
            raise DjangoValidationError({"asset": [f"No asset with the code {code!r}."]})
        return asset

    def perform_destroy(self, instance):
        vibration.capture_delete(capture=instance)

    @extend_schema(request=serializers.ScoreRequestSerializer, responses={202: serializers.JobStartedSerializer})
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    def train(self, request, *args, **kwargs):
        """Learn a classifier from the asset type's labelled captures (a `maintenance.vibration_train` job)."""
        form = serializers.ScoreRequestSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        job = vibration.vibration_training_start(
            organization=self.organization, asset_type=form.validated_data["asset_type"], actor=self.actor
        )
        return _job_started(job)


class DiagnosisViewSet(OrganizationScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = VibrationDiagnosis.objects.select_related("asset")
    serializer_class = serializers.DiagnosisSerializer
    list_filters = {"asset": "asset__code", "fault": "fault", "capture": "capture_id", "component": "component"}
