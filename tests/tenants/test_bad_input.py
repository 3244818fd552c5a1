"""Every write endpoint answers bad input with a clear 400 in the one error shape, and writes nothing."""

import pytest
from rest_framework.test import APIClient

from jobs.models import Job
from tenants import services
from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db

MODELS = (User, Organization, Membership, Invitation, ApiKey, Job)


def _counts() -> dict:
    return {m.__name__: m.objects.count() for m in MODELS} | {
        "audit": AuditEvent.objects.exclude(action__startswith="auth.").count()
    }


BAD = [
    ("signup: bad e-mail", "post", "/api/v1/auth/signup", {"email": "nope", "password": "x"}, "email"),
    ("signup: nothing", "post", "/api/v1/auth/signup", {}, "email"),
    ("login: nothing", "post", "/api/v1/auth/login", {}, "email"),
    ("token: nothing", "post", "/api/v1/auth/tokens", {"email": "a@example.com"}, "password"),
    ("reset: bad e-mail", "post", "/api/v1/auth/password-reset", {"email": 5}, "email"),
    (
        "reset confirm: bad token",
        "post",
        "/api/v1/auth/password-reset/confirm",
        {"uid": "zz", "token": "t", "new_password": "a-long-password-here"},
        "token",
    ),
    ("accept: unknown token", "post", "/api/v1/invitations/accept", {"token": "lo_inv_nope"}, "token"),
    (
        "org: bad slug",
        "post",
        "/api/v1/orgs",
        {"name": "X", "slug": "Bad Slug!", "country": "DE", "region": "eu-central"},
        "slug",
    ),
    (
        "org: bad country",
        "post",
        "/api/v1/orgs",
        {"name": "X", "slug": "x-1", "country": "Germany", "region": "eu-central"},
        "country",
    ),
    (
        "org: unknown region",
        "post",
        "/api/v1/orgs",
        {"name": "X", "slug": "x-2", "country": "DE", "region": "mars"},
        "region",
    ),
    (
        "org: taken slug",
        "post",
        "/api/v1/orgs",
        {"name": "X", "slug": "{slug}", "country": "DE", "region": "eu-central"},
        "slug",
    ),
    ("org update: bad country", "patch", "/api/v1/orgs/{slug}", {"country": "123"}, "country"),
    ("member: unknown role", "patch", "/api/v1/orgs/{slug}/members/{member}", {"role": "god"}, "role"),
    ("invite: bad e-mail", "post", "/api/v1/orgs/{slug}/invitations", {"email": "x", "role": "member"}, "email"),
    (
        "invite: unknown role",
        "post",
        "/api/v1/orgs/{slug}/invitations",
        {"email": "a@example.com", "role": "x"},
        "role",
    ),
    (
        "invite: existing member",
        "post",
        "/api/v1/orgs/{slug}/invitations",
        {"email": "{owner_email}", "role": "member"},
        "email",
    ),
    ("key: no scopes", "post", "/api/v1/orgs/{slug}/api-keys", {"name": "k", "scopes": []}, "scopes"),
    ("key: unknown scope", "post", "/api/v1/orgs/{slug}/api-keys", {"name": "k", "scopes": ["root"]}, "scopes"),
    (
        "key: past expiry",
        "post",
        "/api/v1/orgs/{slug}/api-keys",
        {"name": "k", "scopes": ["org:read"], "expires_at": "2001-01-01T00:00:00Z"},
        "expires_at",
    ),
    (
        "key: bad expiry",
        "post",
        "/api/v1/orgs/{slug}/api-keys",
        {"name": "k", "scopes": ["org:read"], "expires_at": "tomorrow"},
        "expires_at",
    ),
]


@pytest.mark.parametrize("case, method, url, body, field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_the_field_named_and_nothing_written(org, case, method, url, body, field):
    owner = org.memberships.get(role=Role.OWNER)
    subs = {"slug": org.slug, "member": owner.pk, "owner_email": owner.user.email}
    url = url.format(**subs)
    body = {k: v.format(**subs) if isinstance(v, str) else v for k, v in body.items()}
    client = builders.session_client(owner.user) if "/orgs" in url or "/accept" in url else APIClient()
    if url == "/api/v1/orgs":  # creating an organisation needs a confirmed address first
        services.email_verify(token=services.email_verification_send(user=owner.user))
    before = _counts()
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code == 400, (case, response.status_code, response.content)
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"]
    assert field in error["fields"], (case, error)
    assert _counts() == before, case


def test_malformed_json_is_a_400_in_the_error_shape(org):
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    response = client.generic("POST", f"/api/v1/orgs/{org.slug}/api-keys", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"
