"""Abstract model bases for the device keys and webhook endpoints that several automation apps (maintenance,
quality) keep, each in its own tables. Automation apps may not import each other, so the shared fields and methods
live here; each app's concrete model adds its own foreign keys (asset, machine, endpoint), Meta (index names) and
docstring. The organisation foreign key is named by string: foundation imports no app.

The schema of every concrete model is what it was before these bases existed (same fields, defaults and help
texts), so moving fields here changes no migration.
"""

import uuid
from collections.abc import Callable
from typing import Any, Self

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .signing import new_salt

SecretFor = Callable[..., str]  # (salt=) -> the secret derived in the app's namespace


def _uuid_field() -> models.UUIDField:
    return models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


def _organization_field() -> models.ForeignKey:
    return models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")


def _issued(model: Any, secret_for: SecretFor, last_four: str, fields: dict[str, Any]) -> tuple[Any, str]:
    salt = new_salt()
    secret = secret_for(salt=salt)
    record = model(salt=salt, **{last_four: secret[-4:]}, **fields)
    record.full_clean()
    record.save()
    return record, secret


class AbstractIngestionKey(models.Model):
    """A device credential: messages carry an HMAC of their payload made with its secret, which is derived (HMAC of
    SECRET_KEY and `salt`), never stored. The concrete model adds what the key may publish for."""

    id = _uuid_field()
    organization = _organization_field()
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=64, unique=True)
    salt = models.CharField(max_length=64)
    last_four = models.CharField(max_length=4)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"

    @classmethod
    def issue(cls, *, secret_for: SecretFor, **fields: Any) -> tuple[Self, str]:
        """A new key and its secret, which is never stored (it is derived) and cannot be shown again."""
        return _issued(cls, secret_for, "last_four", fields)

    def revoke(self) -> None:
        """Once: a second revocation keeps the first time."""
        type(self)._default_manager.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.refresh_from_db()


class AbstractWebhookEndpoint(models.Model):
    """An integrator's URL that receives the app's events, signed with a derived secret shown once."""

    id = _uuid_field()
    organization = _organization_field()
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    salt = models.CharField(max_length=64)
    secret_last_four = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.url

    @classmethod
    def issue(cls, *, secret_for: SecretFor, **fields: Any) -> tuple[Self, str]:
        """A new endpoint and its signing secret (shown once)."""
        return _issued(cls, secret_for, "secret_last_four", fields)

    def change(self, data: dict) -> None:
        """`data`: any of url, description, events, is_active, checked by the app first."""
        for field in ("url", "description", "events", "is_active"):
            if field in data:
                setattr(self, field, data[field])
        self.full_clean()
        self.save()


class AbstractWebhookDelivery(models.Model):
    """One event for one endpoint and its delivery state; the concrete model adds the `endpoint` foreign key."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    id = _uuid_field()
    organization = _organization_field()
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint} ({self.status})"  # type: ignore[attr-defined]
