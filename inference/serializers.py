from rest_framework import serializers

from .models import AdapterVersion, BaseModel, Placement, TenantModel
from .services import ALIAS_PATTERN


class BaseModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = BaseModel
        fields = [
            "name",
            "architecture",
            "context_length",
            "parameter_count",
            "size_class",
            "max_lora_rank",
            "lora_target_modules",
            "license",
        ]
        read_only_fields = fields


class PlacementSerializer(serializers.ModelSerializer):
    server = serializers.CharField(source="server.url")
    server_state = serializers.CharField(source="server.state")
    region = serializers.CharField(source="server.cluster.region")

    class Meta:
        model = Placement
        fields = ["server", "server_state", "region", "state", "loaded_at"]
        read_only_fields = fields


class AdapterVersionSerializer(serializers.ModelSerializer):
    placements = PlacementSerializer(many=True, read_only=True)

    class Meta:
        model = AdapterVersion
        fields = [
            "id",
            "version",
            "name",
            "rank",
            "target_modules",
            "source",
            "sha256",
            "metadata",
            "placements",
            "created_at",
        ]
        read_only_fields = fields


class TenantModelSerializer(serializers.ModelSerializer):
    base_model = serializers.SlugRelatedField(slug_field="name", queryset=BaseModel.objects.all())
    current_version = AdapterVersionSerializer(read_only=True)
    versions = serializers.SerializerMethodField()

    class Meta:
        model = TenantModel
        fields = ["id", "alias", "base_model", "description", "current_version", "versions", "created_at"]
        read_only_fields = ["id", "current_version", "versions", "created_at"]

    def get_versions(self, tenant_model) -> list[dict]:
        return [
            {"id": str(v.id), "version": v.version, "name": v.name, "source": v.source}
            for v in tenant_model.versions.order_by("version")
        ]


class TenantModelCreateSerializer(serializers.Serializer):
    alias = serializers.RegexField(ALIAS_PATTERN, max_length=128, help_text="e.g. acme/maintenance-assistant")
    base_model = serializers.SlugRelatedField(slug_field="name", queryset=BaseModel.objects.all())
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AdapterUploadSerializer(serializers.Serializer):
    archive = serializers.FileField(help_text="A PEFT adapter directory as .tar.gz or .zip")
    deploy = serializers.BooleanField(default=True)


class DeploySerializer(serializers.Serializer):
    replicas = serializers.IntegerField(min_value=1, max_value=16, default=1)
