"""API key lifecycle: create (shown once, hashed), use, expire, revoke, scopes, suspension."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from tenants import services
from tenants.models import ApiKey, AuditEvent
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db


def test_key_is_shown_once_and_only_its_hash_is_stored(org):
    """Catches a plaintext key at rest or shown again after creation."""
    owner = org.memberships.get(role=Role.OWNER).user
    client = builders.session_client(owner)
    response = client.post(
        f"/api/v1/orgs/{org.slug}/api-keys", {"name": "mes", "scopes": ["org:read", "jobs"]}, format="json"
    )
    assert response.status_code == 201
    created = response.json()
    plaintext = created["key"]
    assert plaintext.startswith("lo_live_") and len(plaintext) >= len("lo_live_") + 43  # 32 random bytes
    key = ApiKey.objects.get(pk=created["id"])
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert key.last_four == plaintext[-4:] and created["masked"].endswith(plaintext[-4:])
    assert not ApiKey.objects.filter(key_hash__contains=plaintext[8:20]).exists()
    shown_again = client.get(f"/api/v1/orgs/{org.slug}/api-keys/{key.pk}").json()
    assert "key" not in shown_again and plaintext not in str(shown_again)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.API_KEY_CREATED, target_id=str(key.pk)).exists()


def test_key_works_records_use_and_stops_at_once_when_revoked(org):
    key, plaintext = builders.make_key(org, scopes=["org:read", "org:admin"])
    client = builders.key_client(plaintext)
    assert client.get(f"/api/v1/orgs/{org.slug}/jobs").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    owner_client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    assert owner_client.delete(f"/api/v1/orgs/{org.slug}/api-keys/{key.pk}").status_code == 204
    response = client.get(f"/api/v1/orgs/{org.slug}/jobs")
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.API_KEY_REVOKED, target_id=str(key.pk)).exists()


def test_expired_key_stops_working(org):
    key, plaintext = builders.make_key(org, expires_at=timezone.now() + timedelta(hours=1))
    client = builders.key_client(plaintext)
    assert client.get(f"/api/v1/orgs/{org.slug}").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(f"/api/v1/orgs/{org.slug}")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


def test_unknown_key_is_401_in_the_error_shape(org):
    response = builders.key_client("lo_live_" + "x" * 43).get(f"/api/v1/orgs/{org.slug}")
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "authentication_failed", "message": "Invalid API key."}}


def test_key_scopes_limit_it_and_a_key_cannot_mint_wider_keys(org):
    """Catches scope checks that trust a key more than its scopes say."""
    _, read_only = builders.make_key(org, scopes=["org:read"])
    assert (
        builders.key_client(read_only)
        .post(f"/api/v1/orgs/{org.slug}/api-keys", {"name": "x", "scopes": ["org:read"]}, format="json")
        .status_code
        == 403
    )
    _, admin_key = builders.make_key(org, scopes=["org:read", "org:admin"])
    response = builders.key_client(admin_key).post(
        f"/api/v1/orgs/{org.slug}/api-keys", {"name": "x", "scopes": ["billing"]}, format="json"
    )
    assert response.status_code == 400 and "billing" in response.json()["error"]["message"]


def test_a_key_cannot_use_account_endpoints_or_other_organisations(org, other_org):
    _, plaintext = builders.make_key(org)
    client = builders.key_client(plaintext)
    assert client.get("/api/v1/orgs").status_code == 403
    assert client.get(f"/api/v1/orgs/{other_org.slug}").status_code == 404


def test_suspension_stops_keys_and_sessions_at_once_and_reactivation_restores_them(org):
    """Catches a suspended organisation that can still work through a cached key or a live session."""
    _, plaintext = builders.make_key(org)
    owner = org.memberships.get(role=Role.OWNER).user
    key_client, session = builders.key_client(plaintext), builders.session_client(owner)
    assert key_client.get(f"/api/v1/orgs/{org.slug}/jobs").status_code == 200
    services.organization_suspend(organization=org, actor=builders.owner_actor(org), reason="unpaid invoice")
    for client in (key_client, session):
        response = client.get(f"/api/v1/orgs/{org.slug}/jobs")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "organization_suspended"
        assert "unpaid invoice" in response.json()["error"]["message"]
    services.organization_reactivate(organization=org, actor=builders.owner_actor(org))
    assert key_client.get(f"/api/v1/orgs/{org.slug}/jobs").status_code == 200
    actions = set(AuditEvent.objects.filter(organization=org).values_list("action", flat=True))
    assert {AuditEvent.Action.ORG_SUSPENDED, AuditEvent.Action.ORG_REACTIVATED} <= actions
