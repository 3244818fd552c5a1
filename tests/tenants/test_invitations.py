"""Invitations by e-mail: accepted once, by the right person, before they expire."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tenants.models import AuditEvent, Invitation, Membership
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db


def _invite(org, email="new.hire@example.com", role="member"):
    owner = org.memberships.get(role=Role.OWNER).user
    with_commit = builders.session_client(owner)
    return with_commit.post(f"/api/v1/orgs/{org.slug}/invitations", {"email": email, "role": role}, format="json")


def test_invitation_is_mailed_and_accepting_makes_a_membership(org, django_capture_on_commit_callbacks):
    """Catches an invitation whose mail has no usable token, or whose acceptance gives the wrong role."""
    with django_capture_on_commit_callbacks(execute=True):
        assert _invite(org, role="viewer").status_code == 201
    token = re.search(r"(lo_inv_\S+)", mail.outbox[0].body).group(1)
    assert mail.outbox[0].to == ["new.hire@example.com"]
    invitee = builders.make_user("new.hire@example.com")
    response = builders.session_client(invitee).post("/api/v1/invitations/accept", {"token": token}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "viewer"
    assert Membership.objects.get(organization=org, user=invitee).role == Role.VIEWER
    again = builders.session_client(invitee).post("/api/v1/invitations/accept", {"token": token}, format="json")
    assert again.status_code == 400 and "accepted" in again.json()["error"]["message"]
    assert AuditEvent.objects.filter(organization=org, action=AuditEvent.Action.MEMBER_ADDED).exists()


def test_expired_revoked_or_misaddressed_invitations_are_refused(org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(org, email="late@example.com")
        _invite(org, email="revoked@example.com")
        _invite(org, email="right@example.com")
    tokens = {m.to[0]: re.search(r"(lo_inv_\S+)", m.body).group(1) for m in mail.outbox}
    Invitation.objects.filter(email="late@example.com").update(expires_at=timezone.now() - timedelta(minutes=1))
    owner_client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    revoked = Invitation.objects.get(email="revoked@example.com")
    assert owner_client.delete(f"/api/v1/orgs/{org.slug}/invitations/{revoked.pk}").status_code == 204

    cases = [
        ("late@example.com", "late@example.com", "expired"),
        ("revoked@example.com", "revoked@example.com", "revoked"),
        ("right@example.com", "wrong@example.com", "another e-mail address"),
    ]
    for invited, accepting, reason in cases:
        user = builders.make_user(accepting)
        response = builders.session_client(user).post(
            "/api/v1/invitations/accept", {"token": tokens[invited]}, format="json"
        )
        assert response.status_code == 400 and reason in response.json()["error"]["message"], (invited, response)
    assert Membership.objects.filter(organization=org).count() == 1  # only the owner


def test_invitation_list_shows_state(org):
    _invite(org)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    owner_client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    rows = owner_client.get(f"/api/v1/orgs/{org.slug}/invitations").json()["results"]
    assert [r["state"] for r in rows] == ["expired"]
