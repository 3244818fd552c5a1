"""Sign-up, sign-in, tokens, sign-out and password reset through the API."""

import re

import pytest
from django.core import mail
from rest_framework.test import APIClient

from tenants.models import AuditEvent, User
from tests.builders import PASSWORD, make_user

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


def test_sign_up_creates_the_account_and_a_session():
    """Catches a sign-up that forgets to sign the new user in, or stores the password in clear."""
    client = APIClient()
    response = client.post(
        "/api/v1/auth/signup", {"email": "Plant.Manager@Example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201, response.json()
    user = User.objects.get()
    assert user.email == "plant.manager@example.com" and user.check_password(PASSWORD)
    assert PASSWORD not in user.password
    assert client.get("/api/v1/me").json()["email"] == "plant.manager@example.com"


@pytest.mark.parametrize(
    "password, fragment",
    [("short", "too short"), ("password1234", "too common"), ("1234567890123", "entirely numeric")],
)
def test_sign_up_applies_djangos_password_validators(password, fragment):
    """Catches the validators being skipped: the weak password is refused and no account is written."""
    response = APIClient().post("/api/v1/auth/signup", {"email": "a@example.com", "password": password}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid" and any(fragment in m for m in body["fields"]["password"])
    assert not User.objects.exists()


def test_duplicate_email_is_refused():
    make_user("taken@example.com")
    response = APIClient().post(
        "/api/v1/auth/signup", {"email": "TAKEN@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 400 and "email" in response.json()["error"]["fields"]
    assert User.objects.count() == 1


def test_sign_in_and_failed_sign_in_are_audited_with_the_address():
    """Catches sign-ins that leave no trace in the audit log."""
    make_user("op@example.com")
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    bad = client.post("/api/v1/auth/login", {"email": "op@example.com", "password": "wrong-password"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_credentials"
    good = client.post("/api/v1/auth/login", {"email": "op@example.com", "password": PASSWORD}, format="json")
    assert good.status_code == 200
    failed = AuditEvent.objects.get(action=A.SIGN_IN_FAILED)
    signed_in = AuditEvent.objects.get(action=A.SIGN_IN)
    assert failed.actor_label == "op@example.com" and failed.ip_address == "203.0.113.7"
    assert signed_in.actor.email == "op@example.com" and signed_in.ip_address == "203.0.113.7"
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get("/api/v1/me").status_code in (401, 403)


def test_machine_token_signs_in_without_a_browser_and_dies_on_sign_out():
    make_user("robot@example.com")
    response = APIClient().post(
        "/api/v1/auth/tokens", {"email": "robot@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("lo_user_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/me").json()["email"] == "robot@example.com"
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_password_reset_by_mail_then_confirm():
    """Catches a reset flow that does not mail a usable token or accepts a token twice."""
    user = make_user("forgetful@example.com")
    client = APIClient()
    assert (
        client.post("/api/v1/auth/password-reset", {"email": "forgetful@example.com"}, format="json").status_code == 202
    )
    assert (
        client.post("/api/v1/auth/password-reset", {"email": "nobody@example.com"}, format="json").status_code == 202
    )  # no account enumeration
    assert len(mail.outbox) == 1
    uid = re.search(r"uid: (\S+)", mail.outbox[0].body).group(1)
    token = re.search(r"token: (\S+)", mail.outbox[0].body).group(1)
    new = "a-brand-new-long-password"
    confirm = {"uid": uid, "token": token, "new_password": new}
    assert client.post("/api/v1/auth/password-reset/confirm", confirm, format="json").status_code == 204
    user.refresh_from_db()
    assert user.check_password(new)
    again = client.post("/api/v1/auth/password-reset/confirm", confirm, format="json")
    assert again.status_code == 400 and "token" in again.json()["error"]["fields"]
    assert AuditEvent.objects.filter(action=A.PASSWORD_RESET, actor=user).count() == 1
