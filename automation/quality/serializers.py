"""Translation between the quality API's JSON and the services; references are by code within the caller's
organisation (another tenant's station "does not exist")."""

from typing import Any

from rest_framework import serializers

from tenants.scoping import CodeRelatedField

from .models import Analysis, Characteristic, DefectCode, Lot, Machine, ProcessVariable, Station, Unit


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
