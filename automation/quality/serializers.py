"""Translation between the quality API's JSON and the services; references are by code within the caller's
organisation (another tenant's station "does not exist")."""

from typing import Any

from rest_framework import serializers

from foundation.api.webhooks import ingestion_key_serializers, webhook_serializers
from tenants.scoping import CodeRelatedField

from .models import (
    Alarm,
    Analysis,
    Characteristic,
    ContainmentAction,
    CorrectiveAction,
    DefectCode,
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
from .webhooks import EVENTS as WEBHOOK_EVENTS


class QualityStationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Station
        fields = ["id", "code", "name", "position"]
        validators: list[Any] = []  # uniqueness per organisation is the service's (the model's constraint)


class QualityMachineSerializer(serializers.ModelSerializer):
    station = CodeRelatedField(Station)

    class Meta:
        model = Machine
        fields = ["id", "code", "name", "station"]
        validators: list[Any] = []  # uniqueness per organisation is the service's (the model's constraint)


class QualityProcessVariableSerializer(serializers.ModelSerializer):
    station = CodeRelatedField(Station)
    causes = CodeRelatedField(ProcessVariable, slug_field="name", many=True, required=False)

    class Meta:
        model = ProcessVariable
        fields = ["id", "name", "station", "unit", "lsl", "usl", "target", "causes"]
        validators: list[Any] = []  # uniqueness per organisation is the service's (the model's constraint)


class QualityDefectCodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = DefectCode
        fields = ["code", "description"]
        extra_kwargs: dict[str, dict[str, Any]] = {"code": {"validators": []}}


class QualityCharacteristicSerializer(serializers.ModelSerializer):
    station = CodeRelatedField(Station)
    affected_by = CodeRelatedField(ProcessVariable, slug_field="name", many=True, required=False)
    defect_codes = QualityDefectCodeSerializer(many=True, required=False)

    class Meta:
        model = Characteristic
        fields = ["id", "code", "name", "station", "unit", "lsl", "usl", "target", "affected_by", "defect_codes"]
        validators: list[Any] = []  # uniqueness per organisation is the service's (the model's constraint)


class QualityLotSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lot
        fields = ["id", "code", "material", "created_at"]
        read_only_fields = ["created_at"]
        validators: list[Any] = []  # uniqueness per organisation is the service's (the model's constraint)


class QualityUnitSerializer(serializers.ModelSerializer):
    lots: serializers.SlugRelatedField[Lot] = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = Unit
        fields = ["id", "serial", "status", "lots", "created_at"]
        read_only_fields = fields


class QualityIngestResultSerializer(serializers.Serializer):
    kind = serializers.CharField()
    received = serializers.IntegerField()
    stored = serializers.IntegerField()
    units_created = serializers.IntegerField()
    lots_created = serializers.IntegerField()
    alarms = serializers.IntegerField(help_text="SPC alarms this batch raised.")


class QualityAnalysisSerializer(serializers.ModelSerializer):
    defect_code = CodeRelatedField(DefectCode)
    job = serializers.UUIDField(source="job_id", read_only=True)
    units = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=10_000)
    candidates = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=10_000)

    class Meta:
        model = Analysis
        fields = [
            "id",
            "defect_code",
            "method",
            "start",
            "end",
            "units",
            "candidates",
            "window_seconds",
            "job",
            "status",
            "verdict",
            "message",
            "result",
            "created_at",
            "finished_at",
            "confirmed_causes",
            "unit_causes",
            "labelled_at",
        ]
        read_only_fields = [
            "status",
            "verdict",
            "message",
            "result",
            "created_at",
            "finished_at",
            "confirmed_causes",
            "unit_causes",
            "labelled_at",
        ]


class QualityAnalysisLabelSerializer(serializers.Serializer):
    causes = serializers.ListField(
        child=serializers.CharField(max_length=200),
        max_length=100,
        help_text="The confirmed causes, named as the ranking names them; an empty list removes the label.",
    )
    unit = serializers.CharField(
        max_length=100,
        required=False,
        help_text="For a `unit` analysis: the failed unit (serial) these causes were confirmed for.",
    )


class QualityChartQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    subgroup = serializers.IntegerField(required=False, min_value=1, max_value=10, default=1)
    baseline = serializers.IntegerField(required=False, min_value=2)
    machine = serializers.CharField(required=False)


class QualityAlarmSerializer(serializers.ModelSerializer):
    variable: serializers.SlugRelatedField[ProcessVariable] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    machine: serializers.SlugRelatedField[Machine] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    characteristic: serializers.SlugRelatedField[Characteristic] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    acknowledged_by = serializers.EmailField(source="acknowledged_by.email", read_only=True, default=None)

    class Meta:
        model = Alarm
        fields = [
            "id",
            "variable",
            "machine",
            "characteristic",
            "rule",
            "description",
            "status",
            "points",
            "center",
            "lcl",
            "ucl",
            "first_seen_at",
            "last_seen_at",
            "occurrences",
            "note",
            "acknowledged_at",
            "acknowledged_by",
            "closed_at",
            "created_at",
        ]
        read_only_fields = fields


class QualityAlarmNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


QualityIngestionKeySerializer, QualityIngestionKeyCreatedSerializer = ingestion_key_serializers(
    model=IngestionKey,
    name="QualityIngestionKey",
    module=__name__,
    target="machine",
    target_field=CodeRelatedField(Machine, required=False, allow_null=True),
)
(
    QualityWebhookEndpointSerializer,
    QualityWebhookEndpointCreatedSerializer,
    QualityWebhookDeliverySerializer,
) = webhook_serializers(
    endpoint_model=WebhookEndpoint,
    delivery_model=WebhookDelivery,
    prefix="Quality",
    module=__name__,
    events=WEBHOOK_EVENTS,
)


class QualityContainmentActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContainmentAction
        fields = ["id", "description", "status", "created_at", "done_at"]
        read_only_fields = ["id", "created_at", "done_at"]


class QualityCorrectiveActionSerializer(serializers.ModelSerializer):
    assignee = serializers.EmailField(
        source="assignee.email", required=False, allow_null=True, help_text="A member's e-mail address."
    )

    class Meta:
        model = CorrectiveAction
        fields = [
            "id",
            "description",
            "assignee",
            "due_date",
            "status",
            "implemented_at",
            "effectiveness",
            "checked_at",
            "created_at",
        ]
        read_only_fields = ["id", "effectiveness", "checked_at", "created_at"]


class QualityInvestigationSerializer(serializers.ModelSerializer):
    defect_code = CodeRelatedField(DefectCode, required=False)
    analysis = serializers.UUIDField(source="analysis_id", required=False, allow_null=True)
    containment_actions = QualityContainmentActionSerializer(many=True, read_only=True)
    corrective_actions = QualityCorrectiveActionSerializer(many=True, read_only=True)
    report_status = serializers.CharField(source="report.status", read_only=True, default=None)

    class Meta:
        model = Investigation
        fields = [
            "id",
            "defect_code",
            "analysis",
            "title",
            "description",
            "status",
            "cause_level",
            "cause_name",
            "window_start",
            "window_end",
            "containment_actions",
            "corrective_actions",
            "report_status",
            "created_at",
            "closed_at",
        ]
        read_only_fields = ["id", "created_at", "closed_at"]
        extra_kwargs: dict[str, dict[str, Any]] = {"title": {"required": False, "allow_blank": True}}


class QualityReportSerializer(serializers.ModelSerializer):
    sections = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=20_000))

    class Meta:
        model = Report8D
        fields = ["id", "investigation", "sections", "status", "model", "attempts", "error", "retry_at", "updated_at"]
        read_only_fields = ["id", "investigation", "status", "model", "attempts", "error", "retry_at", "updated_at"]
