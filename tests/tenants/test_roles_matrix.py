"""Every role against every organisation action: allowed ones succeed, the rest answer 403."""

import pytest

from jobs.services import job_create
from tenants import services
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db

EVERYONE = {Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER}
ADMINS = {Role.OWNER, Role.ADMIN}


def _target_member(org):
    return org.memberships.get(user=builders.add_member(org, Role.VIEWER))


def _invitation(org):
    return services.invitation_create(
        organization=org, email="guest@example.com", role=Role.VIEWER, actor=builders.owner_actor(org)
    )[0]


def _job(org):
    import tests.jobs.sample_jobs  # noqa: F401

    job = job_create(organization=org, kind="test.count", params={}, actor=builders.owner_actor(org))
    job.status = "running"
    job.save(update_fields=["status"])  # cancellable as a running job
    return job


# (action, method, path under /api/v1/orgs/<slug>/, body, object factory, roles allowed)
MATRIX = [
    ("read organisation", "get", "", None, None, EVERYONE),
    ("rename organisation", "patch", "", {"name": "Renamed"}, None, ADMINS),
    ("list members", "get", "members", None, None, EVERYONE),
    ("change a role", "patch", "members/{id}", {"role": "member"}, _target_member, ADMINS),
    ("remove a member", "delete", "members/{id}", None, _target_member, ADMINS),
    ("list invitations", "get", "invitations", None, None, ADMINS),
    ("invite", "post", "invitations", {"email": "new@example.com", "role": "viewer"}, None, ADMINS),
    ("revoke an invitation", "delete", "invitations/{id}", None, _invitation, ADMINS),
    ("list API keys", "get", "api-keys", None, None, ADMINS),
    ("create an API key", "post", "api-keys", {"name": "ci", "scopes": ["org:read"]}, None, ADMINS),
    ("revoke an API key", "delete", "api-keys/{id}", None, lambda org: builders.make_key(org)[0], ADMINS),
    ("read the audit log", "get", "audit-events", None, None, ADMINS),
    ("list jobs", "get", "jobs", None, None, EVERYONE),
    ("cancel a job", "post", "jobs/{id}/cancel", None, _job, {Role.OWNER, Role.ADMIN, Role.MEMBER}),
]


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER])
@pytest.mark.parametrize("action, method, path, body, factory, allowed", MATRIX, ids=[m[0] for m in MATRIX])
def test_role_matrix(role, action, method, path, body, factory, allowed):
    """Catches a role gaining (or losing) an action through a scope-map mistake."""
    org = builders.make_org()
    user = org.memberships.get(role=Role.OWNER).user if role == Role.OWNER else builders.add_member(org, role)
    target = factory(org) if factory else None
    url = f"/api/v1/orgs/{org.slug}" + (f"/{path}" if path else "").format(id=target.pk if target else "")
    response = getattr(builders.session_client(user), method)(url, body, format="json")
    if role in allowed:
        assert 200 <= response.status_code < 300, (role, action, response.status_code, response.content)
    else:
        assert response.status_code == 403, (role, action, response.status_code)
        assert response.json()["error"]["code"] == "permission_denied"


def test_admin_cannot_touch_an_owner_and_the_last_owner_stays():
    """Catches privilege escalation by admins and an organisation left without an owner."""
    org = builders.make_org()
    owner = org.memberships.get(role=Role.OWNER)
    admin = builders.add_member(org, Role.ADMIN)
    client = builders.session_client(admin)
    assert (
        client.patch(f"/api/v1/orgs/{org.slug}/members/{owner.pk}", {"role": "viewer"}, format="json").status_code
        == 400
    )
    assert (
        client.patch(
            f"/api/v1/orgs/{org.slug}/members/{org.memberships.get(user=admin).pk}", {"role": "owner"}, format="json"
        ).status_code
        == 400
    )
    owner_client = builders.session_client(owner.user)
    response = owner_client.delete(f"/api/v1/orgs/{org.slug}/members/{owner.pk}")
    assert response.status_code == 400 and "at least one owner" in response.json()["error"]["message"]
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
