"""Predictive maintenance: assets and their telemetry, failure history, trained models, results, work orders.

Storage of telemetry: one narrow row per reading (organisation, asset, channel, ts, value). The unique index on
(asset, channel, ts) is what every read uses (one asset's channels over a time range is one index range scan
per channel) and what makes re-sent readings idempotent (ON CONFLICT DO NOTHING). A BRIN index on `ts` costs a
few pages and serves retention and fleet-wide time windows. The organisation foreign key keeps its b-tree, as on
every tenant row: PostgreSQL de-duplicates b-tree entries, so an index on a column with few distinct values stays
small. A wide table (a column per channel) would be smaller still but needs DDL per asset type; a narrow one
takes any asset type's channels as data.

Every row, child rows included, carries its organisation.
"""

import uuid

from django.contrib.postgres.indexes import BrinIndex
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from foundation.webhook_models import AbstractIngestionKey, AbstractWebhookDelivery, AbstractWebhookEndpoint

from .conf import DEFAULT_EXPLAINER_MODEL, DEFAULT_RUL_CAP

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", "Use letters, digits, '.', '_' and '-' only, starting with a letter or digit."
)


def _organization_field() -> models.ForeignKey:
    return models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")


def _uuid_field() -> models.UUIDField:
    return models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


class AssetType(models.Model):
    """A kind of equipment: its telemetry channels, how often it is sampled, and its models' settings."""

    id = _uuid_field()
    organization = _organization_field()
    code = models.CharField(max_length=64, validators=[code_validator])
    name = models.CharField(max_length=200, blank=True)
    cycle_seconds = models.PositiveIntegerField(
        default=3600,
        validators=[MinValueValidator(1)],
        help_text="One model row per this many seconds: telemetry is averaged into cycles of this length, and "
        "RUL is counted in them.",
    )
    rul_cap = models.FloatField(
        default=DEFAULT_RUL_CAP,
        validators=[MinValueValidator(1)],
        help_text="Cycles: predictions at the cap mean 'healthy, at least this long'.",
    )
    explainer_model = models.CharField(
        max_length=200,
        default=DEFAULT_EXPLAINER_MODEL,
        help_text="The organisation's model that explains recommendations.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("code",)
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                name="maint_assettype_code",
                violation_error_message="An asset type with this code already exists.",
            )
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="maint_assettype_created")]

    def __str__(self) -> str:
        return self.code


class Channel(models.Model):
    """A telemetry channel of an asset type: what is measured, in which unit, within which range."""

    organization = _organization_field()
    asset_type = models.ForeignKey(AssetType, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=64, validators=[code_validator])
    unit = models.CharField(max_length=32, blank=True)
    min_value = models.FloatField(null=True, blank=True, help_text="Readings below are rejected. Empty: no bound.")
    max_value = models.FloatField(null=True, blank=True, help_text="Readings above are rejected. Empty: no bound.")
    component = models.CharField(
        max_length=100,
        blank=True,
        help_text="What wears when this channel drifts (vibration -> bearing); empty: guessed from the channel's name.",
    )
    is_setting = models.BooleanField(
        default=False,
        help_text="An operating condition (load, speed), not a wear sensor: models compensate the sensors for it.",
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("position", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["asset_type", "name"],
                name="maint_channel_name",
                violation_error_message="A channel with this name already exists.",
            ),
            models.CheckConstraint(
                condition=models.Q(min_value__isnull=True)
                | models.Q(max_value__isnull=True)
                | models.Q(min_value__lte=models.F("max_value")),
                name="maint_channel_range",
                violation_error_message="The minimum must not be above the maximum.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.unit}]" if self.unit else self.name


class Asset(models.Model):
    id = _uuid_field()
    organization = _organization_field()
    code = models.CharField(
        max_length=64,
        validators=[code_validator],
        help_text="Unique in the organisation; the MQTT topic and imports name assets by it.",
    )
    name = models.CharField(max_length=200, blank=True)
    asset_type = models.ForeignKey(AssetType, on_delete=models.PROTECT, related_name="assets")
    site = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("code",)
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                name="maint_asset_code",
                violation_error_message="An asset with this code already exists.",
            )
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="maint_asset_created")]

    def __str__(self) -> str:
        return self.code


class Telemetry(models.Model):
    """One reading; see the module docstring for the storage choice. Written only by `telemetry.telemetry_ingest`."""

    id = models.BigAutoField(primary_key=True)
    organization = _organization_field()
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="+", db_index=False)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", db_index=False)
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        verbose_name_plural = "telemetry"
        constraints = [models.UniqueConstraint(fields=["asset", "channel", "ts"], name="maint_telemetry_series")]
        indexes = [BrinIndex(fields=["ts"], name="maint_telemetry_ts_brin")]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.value}"


class AssetEvent(models.Model):
    """Failure history: failures and maintenance actions. A failure ends a run-to-failure history (training data);
    a failure, repair or replacement starts the asset's next life."""

    class Kind(models.TextChoices):
        FAILURE = "failure", _("Failure")
        REPAIR = "repair", _("Repair (as good as new)")
        REPLACEMENT = "replacement", _("Replacement")
        INSPECTION = "inspection", _("Inspection")

    RENEWALS = (Kind.FAILURE, Kind.REPAIR, Kind.REPLACEMENT)

    id = _uuid_field()
    organization = _organization_field()
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    component = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-occurred_at", "id")
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="maint_event_created"),
            models.Index(fields=["asset", "occurred_at"], name="maint_event_asset"),
        ]

    def __str__(self) -> str:
        return f"{self.asset} {self.kind} {self.occurred_at:%Y-%m-%d %H:%M}"


class TrainedModel(models.Model):
    """An RUL model (and the healthy baseline for anomaly detection) of one asset type, with its CV metrics.

    `artefact` and `baseline` hold bytes the engine produced (pickles): never load bytes from elsewhere.
    """

    id = _uuid_field()
    organization = _organization_field()
    asset_type = models.ForeignKey(AssetType, on_delete=models.CASCADE, related_name="trained_models")
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    artefact = models.BinaryField()
    baseline = models.BinaryField(null=True, blank=True)
    cap = models.FloatField()
    channels = models.JSONField(default=list)
    setting_channels = models.JSONField(default=list)
    metrics = models.JSONField(default=dict)
    training_assets = models.JSONField(default=list)
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["asset_type"], condition=models.Q(is_current=True), name="maint_model_one_current"
            )
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="maint_model_created")]

    def __str__(self) -> str:
        return f"RUL model {self.asset_type} {self.created_at:%Y-%m-%d %H:%M}"


class AssetHealth(models.Model):
    """One scoring of one asset: health 0-100, predicted RUL with its band, and the channels driving it."""

    id = _uuid_field()
    organization = _organization_field()
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="health")
    model = models.ForeignKey(TrainedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    as_of = models.DateTimeField(help_text="The last telemetry the scoring used.")
    health_score = models.FloatField()
    rul_cycles = models.FloatField(null=True, blank=True)
    rul_low = models.FloatField(null=True, blank=True)
    rul_high = models.FloatField(null=True, blank=True)
    rul_at_cap = models.BooleanField(default=False)
    predicted_failure_at = models.DateTimeField(null=True, blank=True)
    drivers = models.JSONField(default=list, blank=True)
    ongoing_anomalies = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "asset health"
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="maint_health_created"),
            models.Index(fields=["asset", "-created_at"], name="maint_health_asset"),
        ]

    def __str__(self) -> str:
        return f"{self.asset} health {self.health_score:.0f} at {self.as_of:%Y-%m-%d %H:%M}"


class Anomaly(models.Model):
    """A persistent departure from the healthy baseline on one channel, or across channels ("multivariate")."""

    id = _uuid_field()
    organization = _organization_field()
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="anomalies")
    channel = models.CharField(max_length=64)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    score = models.FloatField(help_text="Peak robust z-score (or its cross-channel equivalent).")
    ongoing = models.BooleanField(default=False)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "anomalies"
        constraints = [models.UniqueConstraint(fields=["asset", "channel", "starts_at"], name="maint_anomaly_run")]
        indexes = [models.Index(fields=["organization", "-created_at"], name="maint_anomaly_created")]

    def __str__(self) -> str:
        return f"{self.asset} {self.channel} from {self.starts_at:%Y-%m-%d %H:%M}"


class Recommendation(models.Model):
    """Inspect or replace which component by when, and why; explained in plain language by the tenant's model."""

    class Action(models.TextChoices):
        INSPECT = "inspect", _("Inspect")
        REPLACE = "replace", _("Replace")

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")
        URGENT = "urgent", _("Urgent")

    class ExplanationStatus(models.TextChoices):
        PENDING = "pending", _("Pending: no answer from the model yet, retried later")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed: gave up after repeated attempts")

    id = _uuid_field()
    organization = _organization_field()
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="recommendations")
    health = models.ForeignKey(AssetHealth, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    component = models.CharField(max_length=100)
    channel = models.CharField(max_length=64, blank=True)
    due_by = models.DateTimeField()
    priority = models.CharField(max_length=16, choices=Priority.choices)
    conservative_rul = models.FloatField(
        help_text="Cycles: the low end of the RUL band, which due_by is planned against."
    )
    reason = models.TextField()
    explanation = models.TextField(blank=True)
    explanation_status = models.CharField(
        max_length=16, choices=ExplanationStatus.choices, default=ExplanationStatus.PENDING
    )
    explanation_model = models.CharField(max_length=200, blank=True)
    explanation_error = models.TextField(blank=True)
    explanation_attempts = models.PositiveIntegerField(default=0)
    explanation_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="maint_rec_created"),
            models.Index(fields=["explanation_status", "explanation_retry_at"], name="maint_rec_explain"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.component} on {self.asset} by {self.due_by:%Y-%m-%d}"


class WorkOrder(models.Model):
    """A recommendation the plant acts on: open -> acknowledged -> closed (or open -> closed)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        CLOSED = "closed", _("Closed")

    id = _uuid_field()
    organization = _organization_field()
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="work_orders")
    recommendation = models.OneToOneField(Recommendation, on_delete=models.CASCADE, related_name="work_order")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=254, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=254, blank=True)
    resolution = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="maint_wo_created"),
            models.Index(fields=["asset", "status"], name="maint_wo_asset_status"),
        ]

    def __str__(self) -> str:
        return f"work order {self.recommendation} ({self.status})"


class IngestionKey(AbstractIngestionKey):
    """A device credential for MQTT telemetry: messages carry an HMAC of their payload made with its secret.

    The secret is derived (HMAC of SECRET_KEY and `salt`), never stored: the database alone cannot sign.
    """

    asset = models.ForeignKey(
        Asset,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: the key may publish for every asset of the organisation.",
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="maint_ingestkey_created")]


class WebhookEndpoint(AbstractWebhookEndpoint):
    """An integrator's URL that receives new recommendations, signed with a secret shown once (derived, like
    ingestion keys)."""

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="maint_webhook_created")]


class WebhookDelivery(AbstractWebhookDelivery):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["organization", "-created_at"], name="maint_delivery_created")]


class MachineKinematics(models.Model):
    """What rotates in an asset: shafts, bearings (catalogue model or geometry), gears and sensor locations, as
    the JSON `engine.kinematics_from_dict` reads, plus the ISO 20816 machine class for the velocity zones."""

    organization = _organization_field()
    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, related_name="kinematics")
    machine_class = models.CharField(max_length=32, default="II")
    shafts = models.JSONField(default=list)
    bearings = models.JSONField(default=list)
    gears = models.JSONField(default=list)
    sensors = models.JSONField(default=list)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "machine kinematics"

    def __str__(self) -> str:
        return f"kinematics of {self.asset}"

    def as_dict(self) -> dict:
        return {
            "machine_class": self.machine_class,
            "shafts": self.shafts,
            "bearings": self.bearings,
            "gears": self.gears,
            "sensors": self.sensors,
        }


def _capture_path(instance, filename: str) -> str:
    return f"vibration/{instance.organization_id}/{instance.asset_id}/{instance.pk}.npz"


class VibrationCapture(models.Model):
    """One vibration waveform (one or more axes) of one sensor: stored whole as a compressed float32 .npz through
    Django's storage API, never a row per sample; analysed by a `maintenance.vibration_analyse` job."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        ANALYSED = "analysed", _("Analysed")
        FAILED = "failed", _("Failed")

    id = _uuid_field()
    organization = _organization_field()
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="vibration_captures")
    sensor = models.CharField(max_length=64)
    axes = models.JSONField(default=list)
    sample_rate = models.FloatField(help_text="Hz")
    shaft_rpm = models.FloatField(help_text="Reference shaft speed during the capture.")
    samples = models.PositiveIntegerField(help_text="Per axis.")
    unit = models.CharField(max_length=8, default="g")
    captured_at = models.DateTimeField(default=timezone.now)
    waveform = models.FileField(upload_to=_capture_path, max_length=300)
    size_bytes = models.PositiveIntegerField(default=0)
    label = models.CharField(
        max_length=32, blank=True, help_text="The known condition (normal, outer_race, ...), for learning."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    indicators = models.JSONField(default=dict, blank=True)
    features = models.JSONField(default=list, blank=True)
    plots = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    analysed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-captured_at",)
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="maint_capture_created"),
            models.Index(fields=["asset", "-captured_at"], name="maint_capture_asset"),
        ]

    def __str__(self) -> str:
        return f"{self.asset} {self.sensor} at {self.captured_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate


class VibrationDiagnosis(models.Model):
    """A failing component named from one capture: the fault, confidence, severity and the peaks that matched."""

    class Source(models.TextChoices):
        PHYSICS = "physics", _("Physics (kinematics and signal)")
        LEARNED = "learned", _("Learned from labelled captures")

    id = _uuid_field()
    organization = _organization_field()
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="vibration_diagnoses")
    capture = models.ForeignKey(VibrationCapture, on_delete=models.CASCADE, related_name="diagnoses")
    component = models.CharField(max_length=100)
    fault = models.CharField(max_length=32)
    label = models.CharField(max_length=200)
    confidence = models.FloatField()
    severity = models.FloatField()
    severity_level = models.CharField(max_length=16)
    evidence = models.JSONField(default=list)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.PHYSICS)
    recommendation = models.ForeignKey(
        Recommendation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Plain-language explanation by the tenant's model, as for recommendations (explainer.py).
    explanation = models.TextField(blank=True)
    explanation_status = models.CharField(
        max_length=16,
        choices=Recommendation.ExplanationStatus.choices,
        default=Recommendation.ExplanationStatus.PENDING,
    )
    explanation_model = models.CharField(max_length=200, blank=True)
    explanation_error = models.TextField(blank=True)
    explanation_attempts = models.PositiveIntegerField(default=0)
    explanation_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="maint_diag_created"),
            models.Index(fields=["explanation_status", "explanation_retry_at"], name="maint_diag_explain"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.severity_level})"


class VibrationModel(models.Model):
    """A classifier learned from the asset type's labelled captures (see engine.vibration_learning)."""

    id = _uuid_field()
    organization = _organization_field()
    asset_type = models.ForeignKey(AssetType, on_delete=models.CASCADE, related_name="vibration_models")
    artefact = models.BinaryField()
    classes = models.JSONField(default=list)
    captures = models.PositiveIntegerField(default=0)
    is_current = models.BooleanField(default=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["asset_type"], condition=models.Q(is_current=True), name="maint_vibmodel_current"
            )
        ]

    def __str__(self) -> str:
        return f"vibration classifier of {self.asset_type} ({', '.join(self.classes)})"
