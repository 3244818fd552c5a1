"""The one way to write the audit log."""

from typing import cast

from django.db import models

from foundation.client_address import client_address

from .models import ApiKey, AuditEvent, Organization, User


def client_ip(request) -> str | None:
    """The caller's address, as every throttle sees it (foundation.client_address: trusted proxies only)."""
    return client_address(request)


def audit_record(
    *,
    action: str,
    organization: Organization | None = None,
    actor: User | None = None,
    api_key: ApiKey | None = None,
    actor_label: str = "",
    target: models.Model | None = None,
    ip_address: str | None = None,
    metadata: dict | None = None,
) -> AuditEvent:
    if action not in AuditEvent.Action.values:
        # The API documents `action` as an enum: an unlisted one would make /audit-events answer off its schema.
        raise ValueError(f"Audit action {action!r} is not one of AuditEvent.Action; add it there.")
    label = actor_label or (actor.email if actor else (f"key {api_key.name}" if api_key else "system"))
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor if actor and actor.pk else None,
        actor_api_key=api_key,
        actor_label=label[:254],
        action=action,
        target_type=cast(str, target._meta.model_name) if target is not None else "",  # a concrete model has one
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:254] if target is not None else "",
        ip_address=ip_address,
        metadata=metadata or {},
    )
