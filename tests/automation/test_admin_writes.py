"""Device keys and webhook endpoints hand out secrets that act for the organisation: in both apps that have them,
only org:admin creates, changes or deletes them; org:write reads them and no more."""

import pytest

from tests import builders

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("app", ["maintenance", "quality"])
def test_only_admins_write_device_keys_and_webhook_endpoints(org, app, settings):
    """Catches a key or webhook write that a member's org:write scope is enough for."""
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True  # the endpoint is on loopback
    base = f"/api/v1/orgs/{org.slug}/{app}"
    member = builders.key_client(builders.make_key(org, scopes=["org:read", "org:write"])[1])
    admin = builders.key_client(builders.make_key(org, scopes=["org:read", "org:admin"])[1])
    hook = {"url": "http://127.0.0.1:9/hooks"}

    assert member.post(f"{base}/ingestion-keys", {"name": "plc"}, format="json").status_code == 403
    assert member.post(f"{base}/webhooks", hook, format="json").status_code == 403
    key = admin.post(f"{base}/ingestion-keys", {"name": "plc"}, format="json")
    endpoint = admin.post(f"{base}/webhooks", hook, format="json")
    assert key.status_code == 201 and endpoint.status_code == 201
    key_url, endpoint_url = f"{base}/ingestion-keys/{key.json()['id']}", f"{base}/webhooks/{endpoint.json()['id']}"

    assert member.get(key_url).status_code == 200 and member.get(endpoint_url).status_code == 200
    assert member.patch(endpoint_url, {"is_active": False}, format="json").status_code == 403
    assert member.delete(endpoint_url).status_code == 403
    assert member.delete(key_url).status_code == 403
    assert admin.patch(endpoint_url, {"is_active": False}, format="json").json()["is_active"] is False
    assert admin.delete(key_url).json()["revoked_at"] is not None
    assert admin.delete(endpoint_url).status_code == 204
