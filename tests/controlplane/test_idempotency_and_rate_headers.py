"""Safe retries and rate-limit headers: Idempotency-Key on every POST, where-you-stand headers on every answer."""

import json

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tenants.models import ApiKey
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db


def test_a_repeated_post_with_the_same_key_runs_once_and_answers_the_same(org):
    """Catches a retry after a timeout doing the work twice (here: two API keys for one request)."""
    owner = org.memberships.get(role=Role.OWNER).user
    client = builders.session_client(owner)
    url = f"/api/v1/orgs/{org.slug}/api-keys"
    body = {"name": "ci", "scopes": ["org:read"]}
    before = ApiKey.objects.filter(organization=org).count()
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    second = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert first.status_code == second.status_code == 201
    assert second.content == first.content and second["Idempotent-Replayed"] == "true"
    assert ApiKey.objects.filter(organization=org).count() == before + 1

    other_body = client.post(url, {**body, "name": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert other_body.status_code == 422 and other_body.json()["error"]["code"] == "idempotency_key_reused"
    assert ApiKey.objects.filter(organization=org).count() == before + 1

    fresh = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-2")
    assert fresh.status_code == 201 and ApiKey.objects.filter(organization=org).count() == before + 2


def test_keys_are_scoped_per_caller_and_per_organisation(org, other_org):
    """Catches one caller's key replaying another caller's answer (or another tenant's)."""
    admin = builders.add_member(org, Role.ADMIN)
    owner = org.memberships.get(role=Role.OWNER).user
    body = {"name": "shared-key-name", "scopes": ["org:read"]}
    for user in (owner, admin):
        response = builders.session_client(user).post(
            f"/api/v1/orgs/{org.slug}/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="same"
        )
        assert response.status_code == 201 and not response.has_header("Idempotent-Replayed")
    assert ApiKey.objects.filter(organization=org, name="shared-key-name").count() == 2
    other_owner = other_org.memberships.get(role=Role.OWNER).user
    builders.add_member(other_org, Role.ADMIN, user=owner)
    response = builders.session_client(owner).post(
        f"/api/v1/orgs/{other_org.slug}/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )
    assert response.status_code == 201 and not response.has_header("Idempotent-Replayed")
    assert other_owner != owner


def test_multipart_posts_on_v1_replay_and_compare_the_file_bytes(org, base_model_dir):
    from inference.services import base_model_register

    base_model_register(name="smollm2-135m-instruct", weights_path=base_model_dir, license="apache-2.0")
    _, plaintext = builders.make_key(org, scopes=["inference", "org:read", "org:write"])
    client = builders.key_client(plaintext)

    def upload(content: bytes, key: str = "upload-1"):
        return client.post(
            "/v1/files",
            {"purpose": "fine-tune", "file": SimpleUploadedFile("a.jsonl", content)},
            format="multipart",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    def chats(answer: str) -> bytes:
        line = {"messages": [{"role": "user", "content": "Torque?"}, {"role": "assistant", "content": answer}]}
        return (json.dumps(line) + "\n").encode() * 10

    first, second = upload(chats("47 Nm")), upload(chats("47 Nm"))
    assert first.status_code == second.status_code == 200 and second["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]  # one file stored, the first answer returned again
    assert upload(chats("48 Nm")).status_code == 422  # same key, other file
    # A request that failed validation keeps no answer (Stripe's rule): the retry with a fixed body then runs.
    assert upload(b'{"messages": []}\n', key="upload-2").status_code == 400
    assert upload(chats("47 Nm"), key="upload-2").status_code == 200


def test_api_answers_carry_the_ietf_ratelimit_fields(org, settings):
    """Catches answers that only say Retry-After once it is too late."""
    settings.API_RATE_LIMIT_PER_MINUTE = 5
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    first = client.get(f"/api/v1/orgs/{org.slug}/members")
    assert first["RateLimit-Policy"] == '"default";q=5;w=60'
    assert first["RateLimit"].startswith('"default";r=4;t=')
    for _ in range(4):
        client.get(f"/api/v1/orgs/{org.slug}/members")
    refused = client.get(f"/api/v1/orgs/{org.slug}/members")
    assert refused.status_code == 429 and refused["RateLimit"].startswith('"default";r=0;')
    _, plaintext = builders.make_key(org, scopes=["inference", "org:read"])
    files = builders.key_client(plaintext).get("/v1/files")
    assert files["x-ratelimit-limit-requests"] == "5" and files["x-ratelimit-remaining-requests"] == "4"
    assert files["x-ratelimit-reset-requests"].endswith("s")


@pytest.mark.django_db(transaction=True)
def test_gateway_answers_carry_openais_ratelimit_headers(web_server, org):
    """Catches a gateway that tells clients nothing until it refuses them."""
    _, plaintext = builders.make_key(org, scopes=["inference"])
    headers = {"Authorization": f"Bearer {plaintext}"}
    models = httpx.get(f"{web_server}/v1/models", headers=headers, timeout=60)
    assert models.status_code == 200 and int(models.headers["x-ratelimit-limit-requests"]) > 0
    answers = [
        httpx.post(
            f"{web_server}/v1/chat/completions",
            json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
            timeout=60,
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [404, 404]
    remaining = [int(a.headers["x-ratelimit-remaining-requests"]) for a in answers]
    assert remaining[1] == remaining[0] - 1 or remaining[1] > remaining[0]  # a new window may have begun
    assert answers[0].headers["x-ratelimit-reset-requests"].endswith("s")
