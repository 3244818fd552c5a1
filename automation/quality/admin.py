"""Operators' view of tenants' quality data. Step records, inspections and analyses are read-only: they are
what the line sent and jobs computed; tenants change their data through the API, where it is validated."""

from django.contrib import admin

from .models import (
    Alarm,
    Analysis,
    Characteristic,
    ContainmentAction,
    CorrectiveAction,
    DefectCode,
    IngestionKey,
    InspectionResult,
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


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Station)
class StationAdmin(_ReadOnly):
    list_display = ("code", "name", "position", "organization")
    search_fields = ("code", "organization__slug")
    list_select_related = ("organization",)


@admin.register(Machine)
class MachineAdmin(_ReadOnly):
    list_display = ("code", "station", "organization")
    search_fields = ("code", "organization__slug")
    list_select_related = ("organization", "station")


@admin.register(ProcessVariable)
class ProcessVariableAdmin(_ReadOnly):
    list_display = ("name", "station", "unit", "lsl", "usl", "target", "organization")
    search_fields = ("name", "organization__slug")
    list_select_related = ("organization", "station")


@admin.register(Characteristic)
class CharacteristicAdmin(_ReadOnly):
    list_display = ("code", "station", "lsl", "usl", "organization")
    search_fields = ("code", "organization__slug")
    list_select_related = ("organization", "station")


@admin.register(DefectCode)
class DefectCodeAdmin(_ReadOnly):
    list_display = ("code", "characteristic", "description", "organization")
    search_fields = ("code", "organization__slug")
    list_select_related = ("organization", "characteristic")


@admin.register(Lot)
class LotAdmin(_ReadOnly):
    list_display = ("code", "material", "organization", "created_at")
    search_fields = ("code", "organization__slug")
    list_select_related = ("organization",)


@admin.register(Unit)
class UnitAdmin(_ReadOnly):
    list_display = ("serial", "status", "organization", "created_at")
    search_fields = ("serial", "organization__slug")
    list_filter = ("status",)
    list_select_related = ("organization",)


@admin.register(InspectionResult)
class InspectionResultAdmin(_ReadOnly):
    list_display = ("unit", "characteristic", "ts", "value", "defect_code", "organization")
    search_fields = ("unit__serial", "organization__slug")
    list_select_related = ("organization", "unit", "characteristic", "defect_code")


@admin.register(Analysis)
class AnalysisAdmin(_ReadOnly):
    list_display = ("id", "defect_code", "method", "status", "verdict", "organization", "created_at")
    search_fields = ("defect_code__code", "organization__slug")
    list_filter = ("status", "verdict")
    list_select_related = ("organization", "defect_code")


@admin.register(Alarm)
class AlarmAdmin(_ReadOnly):
    list_display = ("series", "rule", "status", "first_seen_at", "occurrences", "organization")
    list_filter = ("status", "rule")
    search_fields = ("series", "organization__slug")
    list_select_related = ("organization",)


@admin.register(IngestionKey)
class IngestionKeyAdmin(_ReadOnly):
    list_display = ("name", "key_id", "machine", "revoked_at", "organization")
    search_fields = ("key_id", "name", "organization__slug")
    list_select_related = ("organization", "machine")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Operators may disable an endpoint that misbehaves; everything else is the tenant's."""

    list_display = ("url", "events", "is_active", "organization", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "organization__slug")
    list_select_related = ("organization",)
    fields = ("organization", "url", "description", "events", "is_active", "secret_last_four", "created_at")
    readonly_fields = ("organization", "url", "description", "events", "secret_last_four", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnly):
    list_display = ("event", "endpoint", "status", "attempts", "response_status", "created_at", "organization")
    list_filter = ("status", "event")
    search_fields = ("organization__slug", "endpoint__url")
    list_select_related = ("organization", "endpoint")


class ContainmentInline(admin.TabularInline):
    model = ContainmentAction
    extra = 0
    can_delete = False
    fields = ("description", "status", "done_at")
    readonly_fields = fields


class CorrectiveInline(admin.TabularInline):
    model = CorrectiveAction
    extra = 0
    can_delete = False
    fields = ("description", "assignee", "due_date", "status", "implemented_at", "checked_at")
    readonly_fields = fields


@admin.register(Investigation)
class InvestigationAdmin(_ReadOnly):
    list_display = ("title", "defect_code", "status", "cause_level", "cause_name", "created_at", "organization")
    list_filter = ("status",)
    search_fields = ("title", "organization__slug")
    list_select_related = ("organization", "defect_code")
    inlines = (ContainmentInline, CorrectiveInline)


@admin.register(Report8D)
class Report8DAdmin(_ReadOnly):
    list_display = ("investigation", "status", "attempts", "model", "updated_at", "organization")
    list_filter = ("status",)
    search_fields = ("organization__slug",)
    list_select_related = ("organization", "investigation")
