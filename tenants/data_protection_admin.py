"""Operators' view of deletion requests, with the undo action for the grace period, and of retention settings."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from .actor import Actor
from .audit import client_ip
from .erasure import organization_deletion_cancel
from .models import OrganizationDeletion, RetentionSetting


@admin.register(OrganizationDeletion)
class OrganizationDeletionAdmin(admin.ModelAdmin):
    list_display = ("organization", "status", "requested_by_label", "requested_at", "erase_after", "erased_at")
    list_filter = ("status",)
    search_fields = ("organization__slug", "organization__name", "requested_by_label")
    readonly_fields = [f.name for f in OrganizationDeletion._meta.fields]
    actions = ("undo",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Undo the deletion (within the grace period): the organisation comes back as it was")
    def undo(self, request, queryset):
        undone = 0
        for deletion in queryset.select_related("organization"):
            actor = Actor.system(organization=deletion.organization, user=request.user, ip_address=client_ip(request))
            try:
                organization_deletion_cancel(deletion=deletion, actor=actor)
                undone += 1
            except ValidationError as exc:
                messages.error(request, f"{deletion.organization}: {' '.join(exc.messages)}")
        if undone:
            messages.success(request, f"Undid {undone} deletion request(s).")


@admin.register(RetentionSetting)
class RetentionSettingAdmin(admin.ModelAdmin):
    list_display = ("organization", "kind", "days", "updated_at")
    list_filter = ("kind",)
    search_fields = ("organization__slug",)
