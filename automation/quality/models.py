"""Quality: the line (stations in routing order, machines, process variables, inspection characteristics with
defect codes), what flowed through it (units, material lots, which lot went into which unit), what each step
measured, what inspection found, and the root-cause analyses.

Step records are the volume (millions of values per upload): one narrow row each, bigint keys, written with COPY.
Reads are per unit (genealogy, per-unit traces) and per variable over time (SPC): two b-tree indexes serve them.
Every row, child rows included, carries its organisation.
"""

import uuid

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from foundation.webhook_models import AbstractIngestionKey, AbstractWebhookDelivery, AbstractWebhookEndpoint

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$",
    "Use letters, digits, '.', '_', '/' and '-' only, starting with a letter or digit.",
)


def _organization_field() -> models.ForeignKey:
    return models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")


def _code_field() -> models.CharField:
    return models.CharField(max_length=100, validators=[code_validator])


def _unique(name: str, *fields: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(
        fields=["organization", *fields], name=name, violation_error_message="This code is already in use."
    )


class Station(models.Model):
    """A process step of the line; `position` is the routing order (upstream first)."""

    organization = _organization_field()
    code = _code_field()
    name = models.CharField(max_length=200, blank=True)
    position = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("position", "code")
        constraints = [_unique("quality_station_code", "code")]

    def __str__(self) -> str:
        return self.code


class Machine(models.Model):
    """A machine at a station; a station may have several in parallel."""

    organization = _organization_field()
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="machines")
    code = _code_field()
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("station__position", "code")
        constraints = [_unique("quality_machine_code", "code")]

    def __str__(self) -> str:
        return self.code


class ProcessVariable(models.Model):
    """What a step records: unit, spec limits, target. `causes` refines the routing order into a causal graph
    (which variables drive this one); without it, every variable of an earlier station is a possible cause."""

    organization = _organization_field()
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="variables")
    name = _code_field()
    unit = models.CharField(max_length=40, blank=True)
    lsl = models.FloatField(null=True, blank=True, help_text="Lower spec limit.")
    usl = models.FloatField(null=True, blank=True, help_text="Upper spec limit.")
    target = models.FloatField(null=True, blank=True)
    causes = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="effects")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("station__position", "name")
        constraints = [_unique("quality_variable_name", "name")]

    def __str__(self) -> str:
        return self.name


class Characteristic(models.Model):
    """An inspected characteristic at an inspection station; `affected_by` are the variables it depends on."""

    organization = _organization_field()
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="characteristics")
    code = _code_field()
    name = models.CharField(max_length=200, blank=True)
    unit = models.CharField(max_length=40, blank=True)
    lsl = models.FloatField(null=True, blank=True)
    usl = models.FloatField(null=True, blank=True)
    target = models.FloatField(null=True, blank=True)
    affected_by = models.ManyToManyField(ProcessVariable, blank=True, related_name="characteristics")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("station__position", "code")
        constraints = [_unique("quality_characteristic_code", "code")]

    def __str__(self) -> str:
        return self.code


class DefectCode(models.Model):
    organization = _organization_field()
    characteristic = models.ForeignKey(Characteristic, on_delete=models.CASCADE, related_name="defect_codes")
    code = _code_field()
    description = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("code",)
        constraints = [_unique("quality_defect_code", "code")]

    def __str__(self) -> str:
        return self.code


class Lot(models.Model):
    """A material lot (batch of raw material or components)."""

    organization = _organization_field()
    code = _code_field()
    material = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("code",)
        constraints = [_unique("quality_lot_code", "code")]

    def __str__(self) -> str:
        return self.code


class Unit(models.Model):
    """A serial-numbered unit; `status` says where it is (for containment: still in the plant, or shipped)."""

    class Status(models.TextChoices):
        IN_PROCESS = "in_process"
        FINISHED = "finished"
        SHIPPED = "shipped"
        SCRAPPED = "scrapped"

    id = models.BigAutoField(primary_key=True)
    organization = _organization_field()
    serial = _code_field()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROCESS)
    lots = models.ManyToManyField(Lot, blank=True, related_name="units")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("serial",)
        constraints = [_unique("quality_unit_serial", "serial")]

    def __str__(self) -> str:
        return self.serial


class StepRecord(models.Model):
    """One value a step recorded: unit, machine (hence station), variable, time, value."""

    id = models.BigAutoField(primary_key=True)
    organization = _organization_field()
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="+", db_index=False)
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="+", db_index=False)
    variable = models.ForeignKey(ProcessVariable, on_delete=models.CASCADE, related_name="+", db_index=False)
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["unit", "variable", "ts"], name="quality_step_unit"),
            models.Index(fields=["variable", "ts"], name="quality_step_variable"),
            models.Index(fields=["machine"], name="quality_step_machine"),
        ]

    def __str__(self) -> str:
        return f"{self.unit_id} {self.variable_id} {self.ts:%Y-%m-%d %H:%M:%S} = {self.value:g}"


class InspectionResult(models.Model):
    """What inspection found for a unit: the measured value (if any) and the defect code (none: passed)."""

    id = models.BigAutoField(primary_key=True)
    organization = _organization_field()
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="inspections")
    characteristic = models.ForeignKey(Characteristic, on_delete=models.CASCADE, related_name="+")
    ts = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    defect_code = models.ForeignKey(DefectCode, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ("ts", "id")
        indexes = [
            models.Index(fields=["organization", "defect_code", "ts"], name="quality_inspection_defect"),
            models.Index(fields=["characteristic", "ts"], name="quality_inspection_char"),
        ]

    def __str__(self) -> str:
        return f"{self.unit_id} {self.characteristic_id}: {'passed' if self.passed else 'defect'}"

    @property
    def passed(self) -> bool:
        return self.defect_code_id is None


class Analysis(models.Model):
    """A root-cause analysis of one defect code: over a time window (units finished in it) or named failed
    units; run by the `quality.analyse` job; the result keeps the ranked causes and their evidence."""

    class Method(models.TextChoices):
        AUTO = "auto"
        LINE = "line"  # across units: stations, machines, variables, lots
        UNIT = "unit"  # per failed unit, from its recorded traces

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    defect_code = models.ForeignKey(DefectCode, on_delete=models.CASCADE, related_name="analyses")
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.AUTO)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    units = models.JSONField(default=list, blank=True, help_text="Serials of failed units to analyse.")
    candidates = models.JSONField(
        default=list, blank=True, help_text="Only these process variables (names); empty: every one upstream."
    )
    window_seconds = models.FloatField(default=30.0, help_text="Per-unit traces: how far before the failure.")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, default="queued")
    verdict = models.CharField(max_length=30, blank=True)
    message = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The tenant's label once the investigation confirmed the cause(s): names as the ranking gives them.
    # Labelled analyses of the same characteristic are the history the supervised ranking learns from.
    confirmed_causes = models.JSONField(default=list, blank=True)
    # A `unit` analysis of several failed units may confirm a different cause per unit: {serial: [names]}.
    unit_causes = models.JSONField(default=dict, blank=True)
    labelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "analyses"
        indexes = [models.Index(fields=["organization", "-created_at"], name="quality_analysis_created")]

    def __str__(self) -> str:
        return f"{self.defect_code_id} {self.created_at:%Y-%m-%d %H:%M} {self.status}"


class Alarm(models.Model):
    """A Western Electric rule violation on one series: a process variable on one machine, or an inspection
    characteristic. One open alarm per series and rule: further violations while it is open update it
    (`last_seen_at`, `occurrences`); once acknowledged or closed, the next violation raises a new one."""

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        CLOSED = "closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    series = models.CharField(max_length=100, help_text="variable:<id>/machine:<id> or characteristic:<id>.")
    variable = models.ForeignKey(ProcessVariable, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    machine = models.ForeignKey(Machine, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    characteristic = models.ForeignKey(
        Characteristic, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    rule = models.PositiveSmallIntegerField(help_text="Nelson rule number (1, 2, 5, 6 are Western Electric's).")
    description = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    points = models.JSONField(default=list, help_text="The points of the pattern: unit, ts, value.")
    center = models.FloatField()
    lcl = models.FloatField()
    ucl = models.FloatField()
    first_seen_at = models.DateTimeField(help_text="Time of the point that completed the pattern first.")
    last_seen_at = models.DateTimeField()
    occurrences = models.PositiveIntegerField(default=1)
    note = models.TextField(blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "series", "rule"],
                condition=models.Q(status="open"),
                name="quality_alarm_open_once",
            )
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="quality_alarm_created")]

    def __str__(self) -> str:
        return f"{self.series} rule {self.rule} ({self.status})"


class IngestionKey(AbstractIngestionKey):
    """A device credential for MQTT step records (see `mqtt.py`); the secret is derived, never stored."""

    machine = models.ForeignKey(
        Machine,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: the key may publish for every machine of the organisation.",
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="quality_ingestkey_created")]


class WebhookEndpoint(AbstractWebhookEndpoint):
    """An integrator's URL for `quality.alarm` and `quality.analysis.finished`, signed with a derived secret."""

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="quality_webhook_created")]


class WebhookDelivery(AbstractWebhookDelivery):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["organization", "-created_at"], name="quality_delivery_created")]


class Investigation(models.Model):
    """An investigation of a defect code: the suspected cause (from an analysis or named), the window in which
    suspect units were made, containment and corrective actions, and the 8D report."""

    class Status(models.TextChoices):
        OPEN = "open"
        CONTAINED = "contained"
        CLOSED = "closed"

    class CauseLevel(models.TextChoices):
        MACHINE = "machine"
        LOT = "lot"
        VARIABLE = "variable"
        STATION = "station"
        NONE = ""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    defect_code = models.ForeignKey(DefectCode, on_delete=models.CASCADE, related_name="investigations")
    analysis = models.ForeignKey(Analysis, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    cause_level = models.CharField(max_length=20, choices=CauseLevel.choices, blank=True)
    cause_name = models.CharField(max_length=200, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["organization", "-created_at"], name="quality_investigation_created")]

    def __str__(self) -> str:
        return self.title


class ContainmentAction(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        DONE = "done"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="containment_actions")
    description = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at",)

    def __str__(self) -> str:
        return self.description[:60]


class CorrectiveAction(models.Model):
    """A corrective action: assigned to a member, due, implemented at a time; the effectiveness check compares the
    defect rate after `implemented_at` with before and closes it (effective) or reopens it."""

    class Status(models.TextChoices):
        OPEN = "open"
        IMPLEMENTED = "implemented"
        EFFECTIVE = "effective"
        REOPENED = "reopened"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    investigation = models.ForeignKey(Investigation, on_delete=models.CASCADE, related_name="corrective_actions")
    description = models.TextField()
    assignee = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    implemented_at = models.DateTimeField(null=True, blank=True)
    effectiveness = models.JSONField(default=dict, blank=True, help_text="The last effectiveness check.")
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at",)

    def __str__(self) -> str:
        return self.description[:60]


class Report8D(models.Model):
    """The 8D report of an investigation, D1..D8, drafted by the tenant's model through the gateway, editable.
    `status`: pending (being drafted, or waiting for a model: `error` says why, retried at `retry_at`), ready
    (drafted), edited (changed by a person; never overwritten by a draft), failed (gave up)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        EDITED = "edited"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    investigation = models.OneToOneField(Investigation, on_delete=models.CASCADE, related_name="report")
    sections = models.JSONField(default=dict, blank=True, help_text='{"D1": "...", ..., "D8": "..."}')
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    model = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "8D report"

    def __str__(self) -> str:
        return f"8D {self.investigation_id} ({self.status})"
