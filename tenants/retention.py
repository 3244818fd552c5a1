"""Retention periods per data kind (telemetry, captures, conversation history), per organisation with defaults.

Each app registers the kinds it holds (`tenants.data_protection.register_retention`); the platform default for a
kind is `DATA_RETENTION_DAYS[kind]` (settings) or the app's own. An owner may set the organisation's period for a
kind (`retention_set`); the periodic `tenants.enforce_retention` deletes the rows older than that, and removes what
the platform keeps for a fixed time (`register_expiry`: export archives after `DATA_EXPORT_ARCHIVE_DAYS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .actor import Actor
from .audit import audit_record
from .data_protection import expiries, retention_policies, retention_policy
from .models import AuditEvent, Organization, RetentionSetting

MAX_DAYS = 3650


@dataclass(frozen=True)
class RetentionPeriod:
    kind: str
    label: str
    days: int
    default_days: int
    is_default: bool


def retention_for(*, organization: Organization) -> list[RetentionPeriod]:
    own = dict(RetentionSetting.objects.filter(organization=organization).values_list("kind", "days"))
    return [
        RetentionPeriod(
            kind=p.kind,
            label=str(p.label),  # in the language of the request that asks
            days=own.get(p.kind, p.default_days),
            default_days=p.default_days,
            is_default=p.kind not in own,
        )
        for p in retention_policies()
    ]


def retention_set(*, organization: Organization, actor: Actor, kind: str, days: int | None) -> RetentionPeriod:
    """`days=None` returns the kind to the platform default."""
    try:
        policy = retention_policy(kind)
    except LookupError:
        known = ", ".join(p.kind for p in retention_policies())
        raise ValidationError({"kind": [f"Unknown data kind {kind!r}; one of: {known}."]}) from None
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise ValidationError({"days": [f"Between 1 and {MAX_DAYS} days."]})
    with transaction.atomic():
        before = RetentionSetting.objects.filter(organization=organization, kind=kind).first()
        if days is None:
            RetentionSetting.objects.filter(organization=organization, kind=kind).delete()
        else:
            RetentionSetting.objects.update_or_create(organization=organization, kind=kind, defaults={"days": days})
        audit_record(
            action=AuditEvent.Action.RETENTION_CHANGED,
            target=organization,
            metadata={"kind": kind, "from": before.days if before else None, "to": days},
            **actor.audit_kwargs(),
        )
    return next(p for p in retention_for(organization=organization) if p.kind == policy.kind)


def retention_enforce(*, now=None) -> dict[str, int]:
    """Purge, for every organisation and registered kind, the rows older than its period, then what has expired.
    Returns rows (or things) per kind."""
    now = now or timezone.now()
    purged: dict[str, int] = {}
    for organization in Organization.objects.all().iterator():
        for period in retention_for(organization=organization):
            count = retention_policy(period.kind).purge(organization, now - timedelta(days=period.days))
            purged[period.kind] = purged.get(period.kind, 0) + count
    for expiry in expiries():
        purged[expiry.name] = expiry.remove(now)
    return purged
