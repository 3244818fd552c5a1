"""Rows of the data-protection features: a requested organisation deletion, and retention periods per data kind.

Imported by `tenants.models`, kept apart so the account and key models stay readable.
"""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OrganizationDeletion(models.Model):
    """An owner asked for the organisation to be deleted. It is suspended at once; an operator may undo the request
    until `erase_after`; then the periodic `tenants.finish_erasures` erases everything but what billing law keeps."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled (can be undone)")
        CANCELLED = "cancelled", _("Undone by an operator")
        ERASED = "erased", _("Erased")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="deletions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254)
    reason = models.CharField(max_length=500, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    erase_after = models.DateTimeField(db_index=True)
    # What the organisation's status was before, so undoing the request restores it (a billing suspension stays).
    previous_status = models.CharField(max_length=16)
    previous_suspended_reason = models.CharField(max_length=200, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by_label = models.CharField(max_length=254, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    # Rows erased per section, and what was kept, as the erasure found them.
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(status="scheduled"),
                name="one_scheduled_deletion_per_org",
            )
        ]
        ordering = ("-requested_at",)

    def __str__(self) -> str:
        return f"deletion of {self.organization_id} ({self.status})"


class RetentionSetting(models.Model):
    """An organisation's own retention period for one data kind, replacing the platform default."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="retention")
    kind = models.CharField(max_length=64)
    days = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(3650)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "kind"], name="one_retention_per_kind")]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.kind}: {self.days} days"
