"""The portal's account, organisation and billing pages through Django's test client (no browser)."""

import re

import pytest
from django.core import mail
from django.test import Client

from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_sign_up_mails_a_confirmation_link_that_verifies_once():
    client = Client()
    response = client.post("/signup", {"name": "Ana", "email": "Ana@Monterrey.example", "password": "x" * 4})
    assert response.status_code == 200 and "at least 10 characters" in response.content.decode()
    assert not User.objects.exists()
    response = client.post("/signup", {"name": "Ana", "email": "Ana@Monterrey.example", "password": builders.PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/verify"
    user = User.objects.get(email="ana@monterrey.example")
    assert user.email_verified_at is None
    [message] = mail.outbox
    link = re.search(r"/verify/\S+", message.body).group(0)
    # Unverified: no organisation yet.
    assert client.get("/app/new").status_code == 403
    assert client.get(link).status_code == 302
    user.refresh_from_db()
    assert user.email_verified_at is not None
    assert AuditEvent.objects.filter(action="auth.email_verified", actor=user).count() == 1
    assert client.get("/verify/not-a-token").status_code == 400


def test_creating_an_organisation_makes_the_creator_its_owner_and_refuses_a_taken_slug():
    user = builders.make_user()
    User.objects.filter(pk=user.pk).update(email_verified_at="2026-11-01T00:00Z")
    client = client_for(user)
    form = {"name": "Gears", "slug": "gears", "country": "de", "region": "eu-central"}
    response = client.post("/app/new", form)
    assert response.status_code == 302 and response["Location"] == "/app/gears/billing"
    assert Membership.objects.get(organization__slug="gears", user=user).role == Role.OWNER
    assert Organization.objects.get(slug="gears").country == "DE"
    response = client.post("/app/new", {**form, "name": "Other gears"})
    assert response.status_code == 200 and 'class="errorlist' in response.content.decode()
    assert Organization.objects.filter(slug="gears").get().name == "Gears"


def test_non_members_get_404_and_viewers_get_403_on_admin_actions(org):
    viewer = builders.add_member(org, Role.VIEWER)
    outsider = builders.make_user()
    assert client_for(outsider).get(f"/app/{org.slug}/").status_code == 404
    invitations = Invitation.objects.count()
    viewer_client = client_for(viewer)
    assert viewer_client.get(f"/app/{org.slug}/keys").status_code == 200
    response = viewer_client.post(f"/app/{org.slug}/keys", {"name": "k", "scopes": ["org:read"]})
    assert response.status_code == 403 and not ApiKey.objects.exists()
    response = viewer_client.post(
        f"/app/{org.slug}/members", {"action": "invite", "email": "x@example.com", "role": "viewer"}
    )
    assert response.status_code == 403 and Invitation.objects.count() == invitations
    assert viewer_client.get(f"/app/{org.slug}/audit").status_code == 403
    assert viewer_client.get(f"/app/{org.slug}/billing").status_code == 403


def test_an_admin_cannot_make_an_owner_and_the_last_owner_cannot_leave(org):
    owner = Membership.objects.get(organization=org, role=Role.OWNER)
    admin = builders.add_member(org, Role.ADMIN)
    admin_membership = Membership.objects.get(organization=org, user=admin)
    client = client_for(admin)
    response = client.post(
        f"/app/{org.slug}/members", {"action": "role", "membership": admin_membership.pk, "role": "owner"}, follow=True
    )
    assert "may not manage the owner role" in response.content.decode()
    owner_client = client_for(owner.user)
    response = owner_client.post(f"/app/{org.slug}/members", {"action": "remove", "membership": owner.pk}, follow=True)
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_a_key_is_shown_once_and_can_be_revoked(org):
    owner = Membership.objects.get(organization=org, role=Role.OWNER).user
    client = client_for(owner)
    response = client.post(f"/app/{org.slug}/keys", {"name": "MES", "scopes": ["inference", "org:read"]})
    plaintext = re.search(r"lo_live_[\w-]+", response.content.decode()).group(0)
    key = ApiKey.objects.get(name="MES")
    assert key.scopes == ["inference", "org:read"] and plaintext.endswith(key.last_four)
    assert plaintext not in client.get(f"/app/{org.slug}/keys").content.decode()
    client.post(f"/app/{org.slug}/keys", {"action": "revoke", "key": key.pk})
    key.refresh_from_db()
    assert key.revoked_at is not None
    other = builders.make_org()
    other_key, _ = builders.make_key(other)
    assert client.post(f"/app/{org.slug}/keys", {"action": "revoke", "key": other_key.pk}).status_code == 404


def test_the_language_is_the_accounts_choice_and_dates_follow_it(org):
    owner = Membership.objects.get(organization=org, role=Role.OWNER).user
    client = client_for(owner)
    client.post("/language", {"language": "de", "next": "/account"})
    owner.refresh_from_db()
    assert owner.language == "de"
    page = client.get("/account")
    assert page["Content-Language"] == "de" and '<html lang="de">' in page.content.decode()
    assert client.post("/language", {"language": "xx"}).status_code == 302
    owner.refresh_from_db()
    assert owner.language == "de"
    # Signed out, the choice is a cookie.
    anonymous = Client()
    anonymous.post("/language", {"language": "ko"})
    assert '<html lang="ko">' in anonymous.get("/login").content.decode()


def test_unknown_portal_pages_answer_html_and_unknown_api_paths_json(org):
    assert "text/html" in Client().get("/no-such-page").headers["Content-Type"]
    assert Client().get("/api/v1/no-such").json()["error"]["code"] == "not_found"


def test_a_forged_setup_intent_is_refused(org, localstripe, settings):
    from tests.stripe_server import STRIPE_KEY

    settings.STRIPE_API_BASE, settings.STRIPE_API_KEY = localstripe, STRIPE_KEY
    owner = Membership.objects.get(organization=org, role=Role.OWNER).user
    response = client_for(owner).post(
        f"/app/{org.slug}/billing", {"action": "card", "setup_intent": "seti_nope"}, follow=True
    )
    assert response.status_code == 200 and "no such card setup" in response.content.decode()
    assert not AuditEvent.objects.filter(organization=org, action="billing.payment_method_set").exists()


def test_portal_pages_carry_a_content_security_policy_and_the_api_does_not_need_one(org):
    owner = Membership.objects.get(organization=org, role=Role.OWNER).user
    policy = client_for(owner).get(f"/app/{org.slug}/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert "Content-Security-Policy" not in Client().get("/healthz").headers


def test_numbers_and_dates_follow_the_language(org):
    owner = Membership.objects.get(organization=org, role=Role.OWNER).user
    client = client_for(owner)
    for language, limit in (("en", "10,000,000"), ("de", "10.000.000")):
        client.post("/language", {"language": language})
        page = client.get(f"/app/{org.slug}/usage").content.decode()
        assert f'<td class="num">{limit}</td>' in page, language
    client.post("/language", {"language": "ko"})
    assert "년" in client.get("/account").content.decode()  # the member-since date, written the Korean way
