"""The tenants app's own data for export and erasure (see `tenants.data_protection`), registered in ready()."""

from .data_protection import register_section
from .models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    OrganizationDeletion,
    RetentionSetting,
    SystemKey,
)


def _member_contact(membership) -> dict:
    return {"email": membership.user.email, "name": membership.user.name}


def register() -> None:
    # The organisation row itself stays as the tombstone the retained billing records point at (see erasure.py).
    register_section("organization", app_label="tenants", models=[Organization], organization_field="pk", retained=True)
    register_section("members", app_label="tenants", models=[Membership], extra_columns=_member_contact)
    register_section("invitations", app_label="tenants", models=[Invitation], exclude_fields=["token_hash"])
    # Keys' metadata only: the hash of a key is never exported, the system keys' encrypted secret neither.
    register_section("api_keys", app_label="tenants", models=[SystemKey, ApiKey], exclude_fields=["key_hash"])
    register_section("audit_log", app_label="tenants", models=[AuditEvent])
    register_section("retention_settings", app_label="tenants", models=[RetentionSetting])
    register_section("deletion_requests", app_label="tenants", models=[OrganizationDeletion], retained=True)
