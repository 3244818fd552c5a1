"""Deleting an organisation: requested by its owner, undoable by an operator for a grace period, then erased.

1. `organization_deletion_request`: the owner confirms with the organisation's short name. The organisation is
   suspended at once (every key and session stops, the gateway drops its cache entries), an `OrganizationDeletion`
   records who asked and when the erasure may run (`ORGANIZATION_DELETION_GRACE_DAYS` later), and it is audited.
2. `organization_deletion_cancel`: an operator (the admin action) undoes it within the grace period; the
   organisation's previous status comes back (a billing suspension stays a billing suspension).
3. `organization_erase`: run by the periodic `tenants.finish_erasures` once the grace period is over. In one
   transaction every registered section that is not retained is deleted, from the top layer down; retained
   sections (invoices, the usage ledger) are detached from people; the organisation row stays as a tombstone that
   the retained records point at, renamed so that its short name is free again and nothing names a person. The
   audit events of the organisation go too, except those of the deletion itself (the proof that it was asked for
   and done). Files go after the transaction commits.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from foundation.invalidation import publish_invalidation

from .actor import Actor
from .audit import audit_record
from .data_protection import sections
from .models import AuditEvent, Organization, OrganizationDeletion
from .roles import Role

logger = logging.getLogger(__name__)
Action = AuditEvent.Action

# Audit events that survive the erasure: the record that the deletion was asked for, undone or done.
KEPT_AUDIT_ACTIONS = (Action.ORG_DELETION_REQUESTED, Action.ORG_DELETION_CANCELLED, Action.ORG_ERASED)
ERASED_REASON = "Erased at its owner's request."


def _grace() -> timedelta:
    return timedelta(days=settings.ORGANIZATION_DELETION_GRACE_DAYS)


def organization_deletion_request(
    *, organization: Organization, actor: Actor, confirm: str, reason: str = ""
) -> OrganizationDeletion:
    """Only an owner (a person, not an API key) may ask; `confirm` must be the organisation's short name."""
    if actor.role != Role.OWNER or actor.user is None:
        raise PermissionDenied("Only an owner of the organisation may delete it.")
    if confirm != organization.slug:
        raise ValidationError({"confirm": [f"Type the organisation's short name ({organization.slug}) to confirm."]})
    now = timezone.now()
    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=organization.pk)
        if OrganizationDeletion.objects.filter(
            organization=locked, status=OrganizationDeletion.Status.SCHEDULED
        ).exists():
            raise ValidationError({"non_field_errors": ["Deletion of this organisation is already scheduled."]})
        deletion = OrganizationDeletion.objects.create(
            organization=locked,
            requested_by=actor.user,
            requested_by_label=actor.label,
            reason=reason[:500],
            requested_at=now,
            erase_after=now + _grace(),
            previous_status=locked.status,
            previous_suspended_reason=locked.suspended_reason,
        )
        Organization.objects.filter(pk=locked.pk).update(
            status=Organization.Status.SUSPENDED,
            suspended_reason=f"Deletion requested; erased after {deletion.erase_after:%Y-%m-%d %H:%M} UTC",
        )
        audit_record(
            action=Action.ORG_DELETION_REQUESTED,
            target=locked,
            metadata={"erase_after": deletion.erase_after.isoformat(), "reason": reason[:500]},
            **actor.audit_kwargs(),
        )
        publish_invalidation(kind="organization", organization_id=locked.pk)
    organization.refresh_from_db()
    return deletion


def organization_deletion_cancel(*, deletion: OrganizationDeletion, actor: Actor) -> OrganizationDeletion:
    """An operator's undo, possible until the erasure has run."""
    with transaction.atomic():
        locked = OrganizationDeletion.objects.select_for_update().select_related("organization").get(pk=deletion.pk)
        if locked.status != OrganizationDeletion.Status.SCHEDULED:
            raise ValidationError({"non_field_errors": [f"This deletion is {locked.status}; it cannot be undone."]})
        locked.status = OrganizationDeletion.Status.CANCELLED
        locked.cancelled_at = timezone.now()
        locked.cancelled_by_label = actor.label
        locked.save(update_fields=["status", "cancelled_at", "cancelled_by_label"])
        Organization.objects.filter(pk=locked.organization_id).update(
            status=locked.previous_status, suspended_reason=locked.previous_suspended_reason
        )
        audit_record(
            action=Action.ORG_DELETION_CANCELLED,
            target=locked.organization,
            metadata={"deletion_id": str(locked.pk)},
            **{**actor.audit_kwargs(), "organization": locked.organization},
        )
        publish_invalidation(kind="organization", organization_id=locked.organization_id)
    return locked


def organization_erase(*, deletion_id, now=None) -> OrganizationDeletion | None:
    """Erase one organisation whose grace period is over. Returns None when it is not due, undone or taken by a
    concurrent run (the row lock is skipped, never waited for)."""
    now = now or timezone.now()
    with transaction.atomic():
        deletion = (
            OrganizationDeletion.objects.select_for_update(skip_locked=True)
            .filter(pk=deletion_id, status=OrganizationDeletion.Status.SCHEDULED, erase_after__lte=now)
            .select_related("organization")
            .first()
        )
        if deletion is None:
            return None
        organization = deletion.organization
        if organization.is_active:
            # An operator reactivated the organisation instead of undoing the request: that is an undo too.
            deletion.status = OrganizationDeletion.Status.CANCELLED
            deletion.cancelled_at = now
            deletion.cancelled_by_label = "system (the organisation was reactivated)"
            deletion.save(update_fields=["status", "cancelled_at", "cancelled_by_label"])
            return None
        summary: dict[str, dict] = {}
        # Top layer first: an app's rows go before the rows below them that they point at.
        for section in reversed(sections()):
            if section.retained:
                detached = section.detach(organization) if section.detach else 0
                kept = {
                    m._meta.label_lower: m._default_manager.filter(
                        **{section.organization_field: organization.pk}
                    ).count()
                    for m in section.models
                }
                summary[section.name] = {"retained": kept, "detached": detached}
                continue
            if section.before_erase is not None:
                section.before_erase(organization)
            erased: dict[str, int] = {}
            for model in section.models:
                queryset = model._default_manager.filter(**{section.organization_field: organization.pk})
                if model is AuditEvent:
                    queryset = queryset.exclude(action__in=KEPT_AUDIT_ACTIONS)
                _, per_model = queryset.delete()
                for label, count in per_model.items():
                    erased[label.lower()] = erased.get(label.lower(), 0) + count
            summary[section.name] = {"erased": erased}
        short = organization.pk.hex[:12]
        Organization.objects.filter(pk=organization.pk).update(
            name=f"Erased organisation {short}",
            slug=f"erased-{short}",
            status=Organization.Status.SUSPENDED,
            suspended_reason=ERASED_REASON,
        )
        # What remains of the people who acted: labels become roles, addresses go.
        AuditEvent.objects.filter(organization=organization).update(ip_address=None, actor_api_key=None)
        deletion.status = OrganizationDeletion.Status.ERASED
        deletion.erased_at = now
        deletion.summary = summary
        deletion.save(update_fields=["status", "erased_at", "summary"])
        organization.refresh_from_db()
        audit_record(
            action=Action.ORG_ERASED,
            organization=organization,
            target=organization,
            actor_label="system (tenants.finish_erasures)",
            metadata={"deletion_id": str(deletion.pk), "summary": summary},
        )
        publish_invalidation(kind="organization", organization_id=organization.pk)
    logger.info("Erased organisation %s: %s", organization.pk, summary)
    return deletion


def organizations_erase_due(*, now=None) -> int:
    """Erase every organisation whose grace period is over; the beat task calls this."""
    now = now or timezone.now()
    due = OrganizationDeletion.objects.filter(
        status=OrganizationDeletion.Status.SCHEDULED, erase_after__lte=now
    ).values_list("pk", flat=True)
    done = 0
    for deletion_id in list(due):
        if organization_erase(deletion_id=deletion_id, now=now) is not None:
            done += 1
    return done
