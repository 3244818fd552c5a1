"""Accounts under attack: organisation creation needs a confirmed address, sign-in attempts are limited."""

import re
import secrets
import time

import pyotp
import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenants import services, signin
from tenants.models import AuditEvent, Organization
from tenants.roles import Role
from tests import builders
from tests.workers import wait_until

pytestmark = pytest.mark.django_db

ORG = {"name": "Acme", "slug": "acme-1", "country": "DE", "region": "eu-central"}


def test_the_api_creates_organisations_only_for_confirmed_addresses():
    """Catches the API letting a fresh account create organisations (and so trials and keys) the portal refuses."""
    user = builders.make_user()
    client = builders.session_client(user)
    refused = client.post("/api/v1/orgs", ORG, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "email_not_verified"
    assert not Organization.objects.filter(slug="acme-1").exists()
    services.email_verify(token=services.email_verification_send(user=user))
    assert client.post("/api/v1/orgs", ORG, format="json").status_code == 201


def test_the_portal_refuses_by_the_same_rule():
    user = builders.make_user()
    client = APIClient()
    client.force_login(user)
    response = client.post("/app/new", {**ORG, "slug": "acme-2"})
    assert response.status_code == 403 and not Organization.objects.filter(slug="acme-2").exists()


# --- sign-in attempt limits ---------------------------------------------------------------------------------


def _login(client, email, password, **extra):
    return client.post("/api/v1/auth/login", {"email": email, "password": password, **extra}, format="json")


def test_the_eleventh_wrong_password_is_refused_and_then_the_right_one_until_the_lock_expires(settings):
    """Catches sign-in without a per-account limit: a guesser could try passwords for ever from many addresses."""
    settings.SIGN_IN_LOCKOUT_SECONDS = 3
    user = builders.make_user()
    codes = []
    for i in range(11):  # a new address each time: the account's own limit must hold
        client = APIClient(REMOTE_ADDR=f"198.51.100.{i + 1}")
        codes.append(_login(client, user.email, "wrong-password").json()["error"]["code"])
    assert codes[:10] == ["invalid_credentials"] * 10 and codes[10] == "sign_in_locked"
    right = _login(APIClient(REMOTE_ADDR="198.51.100.99"), user.email, builders.PASSWORD)
    assert right.status_code == 429 and right.json()["error"]["code"] == "sign_in_locked"
    assert int(right["Retry-After"]) >= 1
    token = APIClient().post("/api/v1/auth/tokens", {"email": user.email, "password": builders.PASSWORD}, format="json")
    assert token.status_code == 429  # the token door is the same door
    locked = AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_LOCKED)
    assert locked.count() == 1 and locked.get().metadata["locked"] == "account" and locked.get().actor == user
    wait_until(lambda: signin.sign_in_lock_remaining(email=user.email, address=None) == 0, timeout=30)
    assert _login(APIClient(), user.email, builders.PASSWORD).status_code == 200


def test_an_address_that_fails_on_many_accounts_is_locked_out(settings):
    """Catches a limit per account only: one address spraying one password over many accounts."""
    settings.SIGN_IN_MAX_FAILURES_PER_ADDRESS = 5
    users = [builders.make_user() for _ in range(6)]
    client = APIClient(REMOTE_ADDR="203.0.113.50")
    codes = [_login(client, u.email, "Spring2026!").json()["error"]["code"] for u in users]
    assert codes == ["invalid_credentials"] * 5 + ["sign_in_locked"]
    assert _login(client, users[0].email, builders.PASSWORD).status_code == 429
    assert _login(APIClient(REMOTE_ADDR="203.0.113.51"), users[0].email, builders.PASSWORD).status_code == 200
    event = AuditEvent.objects.get(action=AuditEvent.Action.SIGN_IN_LOCKED)
    assert event.metadata["locked"] == "address" and event.ip_address == "203.0.113.50"


def test_the_portal_locks_sign_in_by_the_same_rule():
    """Catches a portal sign-in page outside the limit (it had none)."""
    user = builders.make_user()
    client = Client(REMOTE_ADDR="192.0.2.10")
    for _ in range(10):
        page = client.post("/login", {"email": user.email, "password": "wrong-password"})
        assert page.status_code == 200 and "_auth_user_id" not in client.session
    refused = client.post("/login", {"email": user.email, "password": builders.PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    assert "Too many failed attempts" in refused.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_LOCKED, actor=user).count() == 1


# --- two-factor sign-in --------------------------------------------------------------------------------------


def _enrol(user) -> tuple[pyotp.TOTP, list[str]]:
    client = builders.session_client(user)
    begun = client.post("/api/v1/me/two-factor").json()
    totp = pyotp.TOTP(begun["secret"])
    assert begun["otpauth_uri"].startswith("otpauth://totp/")
    confirmed = client.post("/api/v1/me/two-factor/confirm", {"code": totp.now()}, format="json")
    assert confirmed.status_code == 200
    return totp, confirmed.json()["recovery_codes"]


def test_two_factor_sign_in_needs_a_fresh_code_or_an_unused_recovery_code():
    """Catches a second factor that the password alone bypasses, or a code or recovery code that works twice."""
    user = builders.make_user()
    totp, recovery = _enrol(user)
    assert len(recovery) == 10
    assert AuditEvent.objects.filter(action=AuditEvent.Action.TWO_FACTOR_ENABLED, actor=user).exists()
    client = APIClient()
    missing = _login(client, user.email, builders.PASSWORD)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "two_factor_required"
    wrong = _login(client, user.email, builders.PASSWORD, otp="000000")
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_two_factor_code"
    next_code = totp.at(time.time() + totp.interval)  # the confirmation used the current step
    assert _login(client, user.email, builders.PASSWORD, otp=next_code).status_code == 200
    assert _login(APIClient(), user.email, builders.PASSWORD, otp=next_code).status_code == 400  # used once
    assert _login(APIClient(), user.email, builders.PASSWORD, otp=recovery[0]).status_code == 200
    assert _login(APIClient(), user.email, builders.PASSWORD, otp=recovery[0]).status_code == 400
    assert AuditEvent.objects.get(action=AuditEvent.Action.RECOVERY_CODE_USED).metadata["codes_left"] == 9
    token = APIClient().post(
        "/api/v1/auth/tokens", {"email": user.email, "password": builders.PASSWORD, "otp": recovery[1]}, format="json"
    )
    assert token.status_code == 201


def test_an_owner_can_require_two_factor_of_every_member(org):
    """Catches a requirement that members without a second factor can ignore."""
    owner = org.memberships.get(role=Role.OWNER).user
    member = builders.add_member(org, Role.MEMBER)
    admin = builders.add_member(org, Role.ADMIN)
    owner_client = builders.session_client(owner)
    url = f"/api/v1/orgs/{org.slug}"
    assert owner_client.patch(url, {"require_two_factor": True}, format="json").status_code == 400  # self first
    _enrol(owner)
    admin_try = builders.session_client(admin).patch(url, {"require_two_factor": True}, format="json")
    assert admin_try.status_code == 400  # owners only
    assert owner_client.patch(url, {"require_two_factor": True}, format="json").json()["require_two_factor"] is True
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ORG_TWO_FACTOR_REQUIRED, organization=org).count() == 1
    refused = builders.session_client(member).get(f"/api/v1/orgs/{org.slug}/members")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "two_factor_required_by_organization"
    portal = Client()
    portal.force_login(member)
    assert portal.get(f"/app/{org.slug}/").status_code == 302  # to the account page, to turn it on
    _enrol(member)
    assert builders.session_client(member).get(f"/api/v1/orgs/{org.slug}/members").status_code == 200
    _, plaintext = builders.make_key(org)
    assert builders.key_client(plaintext).get(f"/api/v1/orgs/{org.slug}/members").status_code == 200  # not a person


def test_the_portal_enrols_and_signs_in_with_a_code():
    user = builders.make_user()
    client = Client()
    client.force_login(user)
    page = client.post("/account", {"two_factor": "begin"})
    secret = re.search(r'class="totp-secret">([A-Z2-7]+)<', page.content.decode()).group(1)
    totp = pyotp.TOTP(secret)
    done = client.post("/account", {"two_factor": "confirm", "code": totp.now()})
    assert len(set(re.findall(r"<code>([0-9a-f]{8}-[0-9a-f]{8})</code>", done.content.decode()))) == 10
    client.logout()
    asked = client.post("/login", {"email": user.email, "password": builders.PASSWORD})
    assert "_auth_user_id" not in client.session and "authenticator app" in asked.content.decode()
    client.post("/login", {"email": user.email, "password": builders.PASSWORD, "otp": totp.at(time.time() + 30)})
    assert client.session["_auth_user_id"] == str(user.pk)


# --- unknown credentials on the control plane ----------------------------------------------------------------


def test_unknown_api_keys_are_limited_per_address_on_the_control_plane(settings, org):
    """Catches a control plane where every random key costs a database lookup without limit (the gateway's twin)."""
    settings.API_FAILED_CREDENTIALS_PER_MINUTE = 5
    # The limit counts per minute window: start early in one, so the whole run falls in the same window.
    wait_until(lambda: time.time() % 60 < 40, timeout=30, what="the start of a rate-limit window")
    flooder = APIClient(REMOTE_ADDR="203.0.113.80")
    statuses = []
    for _ in range(7):
        flooder.credentials(HTTP_AUTHORIZATION="Bearer lo_live_" + secrets.token_urlsafe(32))
        statuses.append(flooder.get(f"/api/v1/orgs/{org.slug}/members").status_code)
    assert statuses == [401] * 5 + [429] * 2
    _, plaintext = builders.make_key(org)
    elsewhere = APIClient(REMOTE_ADDR="203.0.113.81")
    elsewhere.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert elsewhere.get(f"/api/v1/orgs/{org.slug}/members").status_code == 200


def test_the_admin_sign_in_goes_through_the_same_lock_out():
    """Catches a Django admin login outside the attempt limit: the operators' console, the most valuable door."""
    user = builders.make_user()
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    for i in range(10):  # a new address each time: the account's own limit must hold
        client = Client(REMOTE_ADDR=f"198.51.100.{i + 1}")
        page = client.post("/admin/login/", {"username": user.email, "password": "wrong-password"})
        assert page.status_code == 200 and "_auth_user_id" not in client.session
    client = Client(REMOTE_ADDR="198.51.100.99")
    refused = client.post("/admin/login/", {"username": user.email, "password": builders.PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_LOCKED, actor=user).count() == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED).count() == 10
    # Another account signs in at the admin as before.
    other = builders.make_user()
    other.is_staff = True
    other.save(update_fields=["is_staff"])
    client = Client()
    ok = client.post("/admin/login/", {"username": other.email, "password": builders.PASSWORD, "next": "/admin/"})
    assert ok.status_code == 302 and ok["Location"] == "/admin/" and client.session["_auth_user_id"] == str(other.pk)
