from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from tenants.admin import operator

from .models import Job, JobEvent
from .services import job_cancel, job_retry


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    fields = ("created_at", "level", "message", "data", "attempt")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "kind", "status", "progress", "attempts", "created_at", "finished_at")
    list_filter = ("status", "kind", "queue")
    search_fields = ("id", "organization__slug", "kind")
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = (JobEventInline,)
    actions = ("cancel", "retry")

    def has_add_permission(self, request) -> bool:
        return False

    def _apply(self, request, queryset, service, verb: str) -> None:
        done = 0
        for job in queryset.select_related("organization"):
            try:
                service(job=job, actor=operator(request, job.organization))
                done += 1
            except ValidationError as exc:
                messages.warning(request, f"{job.id}: {' '.join(exc.messages)}")
        messages.success(request, f"{verb} {done} job(s).")

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        self._apply(request, queryset, job_cancel, "Cancelled")

    @admin.action(description="Retry from the start")
    def retry(self, request, queryset):
        self._apply(request, queryset, job_retry, "Re-queued")
