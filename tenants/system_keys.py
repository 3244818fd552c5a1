"""System keys: organisation API keys the platform holds to call the organisation's own gateway on its behalf.

The maintenance explainer and the portal's playground call `/v1/chat/completions` over HTTP like any client of the
organisation, so their traffic is routed, rate-limited, quota-checked and metered exactly like the tenant's own.
The gateway authenticates by bearer key and only a hash of an API key is stored, so the plaintext of a system key
is kept encrypted (Fernet, with a key derived from SECRET_KEY and the purpose). A key that was revoked, expired or
can no longer be decrypted (SECRET_KEY changed) is replaced on next use; one the gateway refused is forgotten with
`system_key_forget`, and the next use makes a new one.
"""

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import transaction

from .actor import Actor
from .models import Membership, Organization, SystemKey
from .roles import Role, Scope
from .services import api_key_create, api_key_revoke

logger = logging.getLogger(__name__)


class SystemKeyUnavailable(Exception):
    """No system key can be made for the organisation (it has no owner on whose behalf to make one)."""


def _fernet(purpose: str) -> Fernet:
    # "lightsout.<purpose>:<SECRET_KEY>": the maintenance explainer's keys, stored before this module existed under
    # purpose `maintenance.explainer`, decrypt unchanged.
    key = hashlib.sha256(f"lightsout.{purpose}:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _owner_actor(organization: Organization) -> Actor:
    # api_key_create records a creator (ApiKey.created_by): the organisation's first owner, on whose behalf the
    # platform acts; the key's name says what it is for.
    owner = (
        Membership.objects.filter(organization=organization, role=Role.OWNER)
        .order_by("created_at")
        .select_related("user")
        .first()
    )
    if owner is None:
        raise SystemKeyUnavailable(f"The organisation {organization.slug} has no owner to create a system key for.")
    return Actor.system(organization=organization, user=owner.user)


def _decrypted(stored: SystemKey) -> str | None:
    if not stored.api_key.is_usable():
        return None
    try:
        return _fernet(stored.purpose).decrypt(bytes(stored.secret_encrypted)).decode()
    except InvalidToken:
        logger.warning(
            "The %s key of %s was encrypted with another SECRET_KEY; replacing it.",
            stored.purpose,
            stored.organization_id,
        )
        return None


def system_key_get(
    *, organization: Organization, purpose: str, name: str, scopes: tuple[str, ...] = (Scope.INFERENCE,)
) -> str:
    """The plaintext of the organisation's key for `purpose`, created on first use (and again after a revocation).

    Creation is serialised on the organisation's row, so two first uses at once make one key, not two.
    """
    stored = SystemKey.objects.select_related("api_key").filter(organization=organization, purpose=purpose).first()
    if stored is not None and (plaintext := _decrypted(stored)) is not None:
        return plaintext
    actor = _owner_actor(organization)
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=organization.pk)
        stored = SystemKey.objects.select_related("api_key").filter(organization=organization, purpose=purpose).first()
        if stored is not None:
            if (plaintext := _decrypted(stored)) is not None:
                return plaintext  # another process made it while we waited
            # A key we can no longer read must not stay usable.
            api_key_revoke(api_key=stored.api_key, actor=Actor.system(organization=organization))
        api_key, plaintext = api_key_create(organization=organization, name=name, scopes=list(scopes), actor=actor)
        SystemKey.objects.update_or_create(
            organization=organization,
            purpose=purpose,
            defaults={"api_key": api_key, "secret_encrypted": _fernet(purpose).encrypt(plaintext.encode())},
        )
    return plaintext


def system_key_forget(*, organization: Organization, purpose: str) -> None:
    """The gateway refused the key (revoked, expired, deleted): revoke it if it is not already, and drop it, so the
    next `system_key_get` makes a new one."""
    with transaction.atomic():
        stored = (
            SystemKey.objects.select_for_update()
            .select_related("api_key")
            .filter(organization=organization, purpose=purpose)
            .first()
        )
        if stored is None:
            return
        if stored.api_key.revoked_at is None:
            api_key_revoke(api_key=stored.api_key, actor=Actor.system(organization=organization))
        stored.delete()
