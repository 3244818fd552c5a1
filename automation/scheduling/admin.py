"""Operators' view of tenants' factory data and optimisation runs. Runs are read-only: they record what a job
computed; cancel or retry them through their job."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import Downtime, Machine, Material, Operation, Order, Product, Run, SetupTime, Shift


class ShiftInline(admin.TabularInline):
    model = Shift
    extra = 0
    fields = ("days", "start", "end")


class DowntimeInline(admin.TabularInline):
    model = Downtime
    extra = 0
    fields = ("starts_at", "ends_at", "kind", "reason")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class SetupTimeInline(admin.TabularInline):
    model = SetupTime
    extra = 0
    fields = ("from_family", "to_family", "minutes")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "organization", "timezone", "created_at")
    search_fields = ("code", "name", "organization__slug")
    list_filter = ("timezone",)
    list_select_related = ("organization",)
    readonly_fields = ("organization",)
    inlines = (ShiftInline, DowntimeInline, SetupTimeInline)

    def has_add_permission(self, request):
        return False  # tenants' data is created through their API or import, where it is validated

    def save_formset(self, request, form, formset, change):
        # Shifts added here belong to the machine's organisation, like every row of a tenant.
        for shift in formset.save(commit=False):
            shift.organization_id = form.instance.organization_id
            shift.save()
        for shift in formset.deleted_objects:
            shift.delete()


class OperationInline(admin.TabularInline):
    model = Operation
    extra = 0
    fields = ("position", "name", "machines")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="machines (minutes per unit)")
    def machines(self, operation: Operation) -> str:
        return ", ".join(
            f"{o.machine.code} ({o.minutes_per_unit.normalize()})" for o in operation.options.select_related("machine")
        )


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "family", "organization", "created_at")
    search_fields = ("code", "name", "family", "organization__slug")
    list_select_related = ("organization",)
    readonly_fields = ("organization",)
    inlines = (OperationInline,)

    def has_add_permission(self, request):
        return False


@admin.register(Material)
class MaterialAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "arrives_at", "organization")
    search_fields = ("code", "name", "organization__slug")
    list_select_related = ("organization",)
    readonly_fields = ("organization",)

    def has_add_permission(self, request):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("code", "product", "quantity", "release_at", "due_at", "weight", "organization")
    search_fields = ("code", "product__code", "organization__slug")
    list_filter = ("weight",)
    date_hierarchy = "due_at"
    list_select_related = ("organization", "product")
    readonly_fields = ("organization", "product")

    def has_add_permission(self, request):
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "organization",
        "kind",
        "objective",
        "job_status",
        "solver_status",
        "objective_value",
        "gap",
        "created_at",
    )
    list_filter = ("kind", "objective", "solver_status")
    search_fields = ("id", "organization__slug", "job__id")
    list_select_related = ("organization", "job")
    date_hierarchy = "created_at"

    def get_fields(self, request, obj=None):
        return (
            "id",
            "organization",
            "job_link",
            "parent",
            "kind",
            "objective",
            "weights",
            "time_limit_s",
            "horizon_start",
            "now_minute",
            "changes",
            "requested_by_label",
            "solver_status",
            "objective_value",
            "best_bound",
            "gap",
            "solver_seconds",
            "kpis",
            "findings",
            "created_at",
        )

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="job status", ordering="job__status")
    def job_status(self, run: Run) -> str:
        return run.job.status

    @admin.display(description="job")
    def job_link(self, run: Run) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:jobs_job_change", args=[run.job_id]), run.job)
