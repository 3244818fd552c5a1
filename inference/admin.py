from django.contrib import admin, messages

from .models import AdapterVersion, BaseModel, InferenceCluster, Placement, TenantModel, VllmServer
from .placement import server_check_health


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = (
        "name", "architecture", "context_length", "size_class", "max_lora_rank", "tool_call_parser", "license"
    )  # fmt: skip
    list_filter = ("tool_call_parser",)
    search_fields = ("name",)


@admin.register(InferenceCluster)
class InferenceClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "region")
    list_filter = ("region",)


class PlacementInline(admin.TabularInline):
    model = Placement
    extra = 0
    fields = ("adapter", "organization", "state", "loaded_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(VllmServer)
class VllmServerAdmin(admin.ModelAdmin):
    list_display = ("url", "base_model", "cluster", "state", "max_loras", "max_cpu_loras", "last_health_at")
    list_filter = ("state", "cluster__region", "base_model")
    readonly_fields = ("state", "last_health_at", "last_error")
    inlines = (PlacementInline,)
    actions = ("check_health",)

    @admin.action(description="Check health now (re-places adapters of a down server)")
    def check_health(self, request, queryset):
        healthy = sum(server_check_health(server=server) for server in queryset)
        messages.info(request, f"{healthy} healthy, {queryset.count() - healthy} down.")


class AdapterVersionInline(admin.TabularInline):
    model = AdapterVersion
    fk_name = "tenant_model"
    extra = 0
    fields = ("version", "name", "source", "rank", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TenantModel)
class TenantModelAdmin(admin.ModelAdmin):
    list_display = ("alias", "organization", "base_model", "current_version", "created_at")
    list_filter = ("base_model",)
    search_fields = ("alias", "organization__slug")
    readonly_fields = ("organization", "current_version")
    inlines = (AdapterVersionInline,)


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ("adapter", "organization", "server", "state", "loaded_at")
    list_filter = ("state", "server")
    readonly_fields = ("organization", "adapter", "server", "state", "loaded_at", "created_at")
