"""The audit log: written by the services, readable (never writable) by organisation admins."""

import pytest

from tenants.models import AuditEvent
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


def test_membership_changes_are_audited_with_who_what_and_from_where(org):
    admin = builders.add_member(org, Role.ADMIN)
    viewer = builders.add_member(org, Role.VIEWER)
    client = builders.session_client(admin)
    client.defaults["REMOTE_ADDR"] = "198.51.100.4"
    membership = org.memberships.get(user=viewer)
    assert (
        client.patch(f"/api/v1/orgs/{org.slug}/members/{membership.pk}", {"role": "member"}, format="json").status_code
        == 200
    )
    assert client.delete(f"/api/v1/orgs/{org.slug}/members/{membership.pk}").status_code == 204
    changed = AuditEvent.objects.get(action=A.MEMBER_ROLE_CHANGED)
    removed = AuditEvent.objects.get(action=A.MEMBER_REMOVED)
    assert changed.actor == admin and changed.ip_address == "198.51.100.4"
    assert changed.metadata == {"from": "viewer", "to": "member", "user": viewer.email}
    assert removed.metadata["user"] == viewer.email and removed.organization == org


def test_admins_read_the_log_through_the_api_and_nobody_writes_it(org):
    """Catches an audit endpoint that accepts writes or deletions."""
    builders.make_key(org)
    owner = org.memberships.get(role=Role.OWNER).user
    client = builders.session_client(owner)
    rows = client.get(f"/api/v1/orgs/{org.slug}/audit-events").json()["results"]
    assert {"org.created", "api_key.created"} <= {r["action"] for r in rows}
    event_id = rows[0]["id"]
    for method in ("post", "put", "patch", "delete"):
        assert (
            getattr(client, method)(f"/api/v1/orgs/{org.slug}/audit-events/{event_id}", {}, format="json").status_code
            == 405
        )
    assert AuditEvent.objects.filter(organization=org).count() == len(rows)


def test_audit_log_pages_with_a_cursor(org):
    for _ in range(5):
        builders.make_key(org)
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    first = client.get(f"/api/v1/orgs/{org.slug}/audit-events?page_size=4").json()
    second = client.get(first["next"]).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 6 and second["next"] is None
