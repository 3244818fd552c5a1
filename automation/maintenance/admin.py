"""Operators' view of tenants' maintenance data. Telemetry, models and results are read-only: they are what
devices sent and jobs computed; tenants change their data through the API, where it is validated."""

from django.contrib import admin

from .models import (
    Anomaly,
    Asset,
    AssetEvent,
    AssetHealth,
    AssetType,
    Channel,
    IngestionKey,
    MachineKinematics,
    Recommendation,
    Telemetry,
    TrainedModel,
    VibrationCapture,
    VibrationDiagnosis,
    WebhookDelivery,
    WebhookEndpoint,
    WorkOrder,
)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ChannelInline(admin.TabularInline):
    model = Channel
    extra = 0
    fields = ("name", "unit", "min_value", "max_value", "component", "is_setting", "position")
    readonly_fields = ("name",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AssetType)
class AssetTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "organization", "cycle_seconds", "rul_cap", "explainer_model", "created_at")
    search_fields = ("code", "name", "organization__slug")
    list_select_related = ("organization",)
    readonly_fields = ("organization",)
    inlines = (ChannelInline,)

    def has_add_permission(self, request):
        return False


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "asset_type", "site", "organization", "created_at")
    search_fields = ("code", "name", "site", "organization__slug")
    list_select_related = ("organization", "asset_type")
    readonly_fields = ("organization", "asset_type")

    def has_add_permission(self, request):
        return False


@admin.register(Telemetry)
class TelemetryAdmin(_ReadOnly):
    list_display = ("ts", "asset", "channel", "value", "organization")
    list_select_related = ("asset", "channel", "organization")
    search_fields = ("asset__code",)
    show_full_result_count = False  # no COUNT(*) over the largest table
    ordering = ("-ts",)


@admin.register(AssetEvent)
class AssetEventAdmin(_ReadOnly):
    list_display = ("asset", "kind", "occurred_at", "component", "organization")
    list_filter = ("kind",)
    list_select_related = ("asset", "organization")
    search_fields = ("asset__code", "organization__slug")


@admin.register(TrainedModel)
class TrainedModelAdmin(_ReadOnly):
    list_display = ("asset_type", "organization", "is_current", "cv_rmse", "created_at")
    list_filter = ("is_current",)
    list_select_related = ("asset_type", "organization")
    exclude = ("artefact", "baseline")

    @admin.display(description="CV RMSE (cycles)")
    def cv_rmse(self, model: TrainedModel):
        return model.metrics.get("cv_rmse")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("artefact", "baseline")


@admin.register(AssetHealth)
class AssetHealthAdmin(_ReadOnly):
    list_display = ("asset", "health_score", "rul_cycles", "rul_low", "rul_high", "as_of", "organization")
    list_select_related = ("asset", "organization")
    search_fields = ("asset__code", "organization__slug")


@admin.register(Anomaly)
class AnomalyAdmin(_ReadOnly):
    list_display = ("asset", "channel", "starts_at", "ends_at", "score", "ongoing", "organization")
    list_filter = ("ongoing",)
    list_select_related = ("asset", "organization")


@admin.register(Recommendation)
class RecommendationAdmin(_ReadOnly):
    list_display = ("asset", "action", "component", "priority", "due_by", "explanation_status", "organization")
    list_filter = ("action", "priority", "explanation_status")
    list_select_related = ("asset", "organization")
    search_fields = ("asset__code", "organization__slug")


@admin.register(WorkOrder)
class WorkOrderAdmin(_ReadOnly):
    list_display = ("recommendation", "status", "acknowledged_by", "closed_by", "organization", "created_at")
    list_filter = ("status",)
    list_select_related = ("recommendation__asset", "organization")


@admin.register(IngestionKey)
class IngestionKeyAdmin(_ReadOnly):
    list_display = ("name", "key_id", "asset", "organization", "revoked_at", "created_at")
    exclude = ("salt",)
    list_select_related = ("asset", "organization")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "organization", "is_active", "created_at")
    list_filter = ("is_active",)
    fields = ("organization", "url", "description", "events", "is_active", "secret_last_four")
    readonly_fields = ("organization", "url", "events", "secret_last_four")

    def has_add_permission(self, request):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnly):
    list_display = ("event", "endpoint", "status", "attempts", "response_status", "organization", "created_at")
    list_filter = ("status",)
    list_select_related = ("endpoint", "organization")


@admin.register(MachineKinematics)
class MachineKinematicsAdmin(admin.ModelAdmin):
    list_display = ("asset", "machine_class", "organization", "updated_at")
    search_fields = ("asset__code",)
    list_select_related = ("asset", "organization")


class VibrationDiagnosisInline(admin.TabularInline):
    model = VibrationDiagnosis
    extra = 0
    fields = ("label", "confidence", "severity", "severity_level", "source")
    readonly_fields = fields
    can_delete = False


@admin.register(VibrationCapture)
class VibrationCaptureAdmin(admin.ModelAdmin):
    list_display = ("asset", "sensor", "captured_at", "sample_rate", "samples", "status", "label", "organization")
    list_filter = ("status",)
    search_fields = ("asset__code", "sensor")
    list_select_related = ("asset", "organization")
    readonly_fields = ("waveform", "indicators", "features", "plots", "job")
    inlines = [VibrationDiagnosisInline]


@admin.register(VibrationDiagnosis)
class VibrationDiagnosisAdmin(admin.ModelAdmin):
    list_display = ("label", "asset", "fault", "confidence", "severity_level", "created_at", "organization")
    list_filter = ("fault", "severity_level", "source")
    search_fields = ("asset__code", "component")
    list_select_related = ("asset", "organization")
