"""Operators' view of tenants' quality data. Step records, inspections and analyses are read-only: they are
what the line sent and jobs computed; tenants change their data through the API, where it is validated."""

from django.contrib import admin

from .models import Analysis, Characteristic, DefectCode, InspectionResult, Lot, Machine, ProcessVariable, Station, Unit


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
