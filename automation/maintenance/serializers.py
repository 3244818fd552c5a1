"""Translation between the maintenance API's JSON and the services; references are by code within the caller's
organisation (another tenant's asset "does not exist")."""

from typing import Any

from rest_framework import serializers

from foundation.api.webhooks import ingestion_key_serializers, webhook_serializers
from tenants.scoping import CodeRelatedField

from .conf import WEBHOOK_EVENTS
from .models import (
    Anomaly,
    Asset,
    AssetEvent,
    AssetHealth,
    AssetType,
    Channel,
    IngestionKey,
    Recommendation,
    TrainedModel,
    VibrationCapture,
    VibrationDiagnosis,
    WebhookDelivery,
    WebhookEndpoint,
    WorkOrder,
)


class ChannelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Channel
        fields = ["name", "unit", "min_value", "max_value", "component", "is_setting"]
        extra_kwargs: dict[str, dict[str, Any]] = {"name": {"validators": []}}


class AssetTypeSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(read_only=True)
    channels = ChannelSerializer(many=True)
    created_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = AssetType
        fields = ["id", "code", "name", "cycle_seconds", "rul_cap", "explainer_model", "channels", "created_at"]
        validators: list[Any] = []  # uniqueness per organisation is the service's (the model's constraint)


class AssetSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(read_only=True)
    asset_type = CodeRelatedField(AssetType)
    created_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Asset
        fields = ["id", "code", "name", "asset_type", "site", "created_at"]
        validators: list[Any] = []


class AssetEventSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(read_only=True)
    asset = CodeRelatedField(Asset)
    created_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = AssetEvent
        fields = ["id", "asset", "kind", "occurred_at", "component", "description", "created_at"]


class TelemetryQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Inclusive, ISO 8601 with a time zone.")
    end = serializers.DateTimeField(help_text="Exclusive.")
    channels = serializers.CharField(required=False, help_text="Comma-separated channel names; default all.")
    bucket_seconds = serializers.IntegerField(
        required=False, min_value=1, max_value=366 * 86400, help_text="Downsample: mean, min, max and count per bucket."
    )

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        return attrs


class IngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Readings already stored (a re-sent batch): not stored again.")
    assets = serializers.IntegerField()


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField()
    asset_type = CodeRelatedField(AssetType)
    format = serializers.ChoiceField(choices=["cmapss", "csv"], default="csv")
    columns = serializers.CharField(
        required=False,
        help_text="cmapss: the channel of each value column, comma-separated; default setting_1..3,sensor_1..21.",
    )
    asset_prefix = serializers.CharField(required=False, default="unit-", max_length=40)
    start = serializers.DateTimeField(
        required=False,
        help_text="When cycle 1 began; default: so that the longest run ends now. Give it to repeat an import safely.",
    )
    site = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)


class TrainedModelSerializer(serializers.ModelSerializer):
    asset_type: serializers.SlugRelatedField[AssetType] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )

    class Meta:
        model = TrainedModel
        fields = [
            "id",
            "asset_type",
            "job",
            "is_current",
            "cap",
            "channels",
            "setting_channels",
            "metrics",
            "training_assets",
            "created_at",
        ]


class TrainRequestSerializer(serializers.Serializer):
    asset_type = CodeRelatedField(AssetType)
    assets = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_empty=False,
        help_text="Train on these assets' histories only; default every asset of the type.",
    )


class ScoreRequestSerializer(serializers.Serializer):
    asset_type = CodeRelatedField(AssetType)


class JobStartedSerializer(serializers.Serializer):
    job = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()


class AssetHealthSerializer(serializers.ModelSerializer):
    asset: serializers.SlugRelatedField[Asset] = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = AssetHealth
        fields = [
            "id",
            "asset",
            "model",
            "job",
            "as_of",
            "health_score",
            "rul_cycles",
            "rul_low",
            "rul_high",
            "rul_at_cap",
            "predicted_failure_at",
            "drivers",
            "ongoing_anomalies",
            "created_at",
        ]


class AnomalySerializer(serializers.ModelSerializer):
    asset: serializers.SlugRelatedField[Asset] = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Anomaly
        fields = ["id", "asset", "channel", "starts_at", "ends_at", "score", "ongoing", "job", "created_at"]


class RecommendationSerializer(serializers.ModelSerializer):
    asset: serializers.SlugRelatedField[Asset] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    work_order: serializers.PrimaryKeyRelatedField[WorkOrder] = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Recommendation
        fields = [
            "id",
            "asset",
            "health",
            "action",
            "component",
            "channel",
            "due_by",
            "priority",
            "conservative_rul",
            "reason",
            "explanation",
            "explanation_status",
            "explanation_model",
            "explanation_error",
            "explanation_attempts",
            "explanation_retry_at",
            "work_order",
            "created_at",
        ]


class WorkOrderSerializer(serializers.ModelSerializer):
    asset: serializers.SlugRelatedField[Asset] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    recommendation = RecommendationSerializer(read_only=True)

    class Meta:
        model = WorkOrder
        fields = [
            "id",
            "asset",
            "status",
            "recommendation",
            "acknowledged_at",
            "acknowledged_by",
            "closed_at",
            "closed_by",
            "resolution",
            "created_at",
        ]


class WorkOrderCloseSerializer(serializers.Serializer):
    resolution = serializers.CharField(required=False, default="", allow_blank=True, max_length=4000)


IngestionKeySerializer, IngestionKeyCreatedSerializer = ingestion_key_serializers(
    model=IngestionKey,
    name="IngestionKey",
    module=__name__,
    target="asset",
    target_field=CodeRelatedField(Asset, required=False, allow_null=True),
)
WebhookEndpointSerializer, WebhookEndpointCreatedSerializer, WebhookDeliverySerializer = webhook_serializers(
    endpoint_model=WebhookEndpoint,
    delivery_model=WebhookDelivery,
    prefix="",
    module=__name__,
    events=WEBHOOK_EVENTS,
)


class KinematicsSerializer(serializers.Serializer):
    """What rotates in the asset; checked by the engine (see the app README for the shape)."""

    machine_class = serializers.CharField(required=False, default="II")
    shafts = serializers.ListField(child=serializers.DictField())
    bearings = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    gears = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    sensors = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    updated_at = serializers.DateTimeField(read_only=True)


class BearingCatalogueSerializer(serializers.Serializer):
    model = serializers.CharField()
    elements = serializers.IntegerField()
    ball_diameter_mm = serializers.FloatField()
    pitch_diameter_mm = serializers.FloatField()
    contact_angle_deg = serializers.FloatField()
    bpfo = serializers.FloatField()
    bpfi = serializers.FloatField()
    bsf = serializers.FloatField()
    ftf = serializers.FloatField()


class CaptureUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    asset = serializers.CharField(max_length=64)
    sensor = serializers.CharField(max_length=64)
    format = serializers.ChoiceField(
        choices=["float32", "npy", "wav", "csv"],
        required=False,
        help_text="Guessed from the file name (.f32/.bin, .npy, .wav, .csv) when left out.",
    )
    sample_rate = serializers.FloatField(required=False, help_text="Hz (a WAV file carries its own).")
    shaft_rpm = serializers.FloatField(required=False, help_text="Default: the reference shaft's nominal speed.")
    unit = serializers.ChoiceField(choices=["g", "m/s2"], required=False, default="g")
    captured_at = serializers.DateTimeField(required=False)
    label = serializers.CharField(required=False, allow_blank=True, default="")  # type: ignore[assignment]  # DRF takes declared fields off the class
    scale = serializers.FloatField(required=False, help_text="Integer WAV: the full-scale value in `unit`.")


class CaptureBatchUploadSerializer(serializers.Serializer):
    """A batch of captures of one asset in one request. `file` is repeated, one file per capture (each as `POST
    captures` takes it), or given once as a `.npy` stack whose first dimension is the captures. The per-capture
    fields are given once (for every capture) or repeated once per capture, in the files' order."""

    file = serializers.ListField(
        child=serializers.FileField(),
        allow_empty=False,
        help_text="One file per capture, or one .npy stack: (captures, samples) for a one-axis sensor, "
        "(captures, axes, samples).",
    )
    asset = serializers.CharField(max_length=64)
    sensor = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=False, help_text="Once, or per capture."
    )
    format = serializers.ChoiceField(
        choices=["float32", "npy", "wav", "csv"],
        required=False,
        help_text="Of every file; guessed from each file's name (.f32/.bin, .npy, .wav, .csv) when left out.",
    )
    sample_rate = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="Hz; once, or per capture (a WAV carries its own)."
    )
    shaft_rpm = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="Once, or per capture. Default: the nominal speed."
    )
    captured_at = serializers.ListField(
        child=serializers.DateTimeField(),
        required=False,
        help_text="Per capture; or once: the first capture's start, the others following back to back. Left out: "
        "the captures are taken to end now, back to back.",
    )
    label = serializers.ListField(  # type: ignore[assignment]  # DRF takes declared fields off the class
        child=serializers.CharField(allow_blank=True), required=False, help_text="Once, or per capture."
    )
    unit = serializers.ChoiceField(choices=["g", "m/s2"], required=False, default="g")
    scale = serializers.FloatField(required=False, help_text="Integer WAV: the full-scale value in `unit`.")


class CaptureSerializer(serializers.ModelSerializer):
    asset: serializers.SlugRelatedField[Asset] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    duration_s = serializers.FloatField(read_only=True)
    # A plain string in the schema: another `status` enum would collide with the existing ones' names.
    status = serializers.CharField(read_only=True, help_text="received, analysed or failed")

    class Meta:
        model = VibrationCapture
        fields = [
            "id",
            "asset",
            "sensor",
            "axes",
            "sample_rate",
            "shaft_rpm",
            "samples",
            "duration_s",
            "unit",
            "captured_at",
            "size_bytes",
            "label",
            "status",
            "job",
            "indicators",
            "error",
            "created_at",
            "analysed_at",
        ]
        read_only_fields = fields


class CaptureBatchSerializer(serializers.Serializer):
    job = serializers.UUIDField(help_text="The one analysis job of the batch.")
    count = serializers.IntegerField()
    captures = CaptureSerializer(many=True)


class CaptureDetailSerializer(CaptureSerializer):
    class Meta(CaptureSerializer.Meta):
        fields = [*CaptureSerializer.Meta.fields, "plots"]
        read_only_fields = fields


class DiagnosisSerializer(serializers.ModelSerializer):
    asset: serializers.SlugRelatedField[Asset] = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = VibrationDiagnosis
        fields = [
            "id",
            "asset",
            "capture",
            "component",
            "fault",
            "label",
            "confidence",
            "severity",
            "severity_level",
            "evidence",
            "source",
            "recommendation",
            "explanation",
            "explanation_status",
            "explanation_model",
            "created_at",
        ]
        read_only_fields = fields
