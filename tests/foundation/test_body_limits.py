"""Request bodies are bounded everywhere: 413 in the error shape, nothing stored."""

import httpx
import pytest

from inference.models import TrainingFile
from tests import builders


@pytest.mark.django_db
def test_a_declared_body_over_the_limit_is_413_in_the_error_shape(settings, org):
    """Catches a control plane that reads (or spools) any body it is sent."""
    settings.MAX_REQUEST_BODY_BYTES = 1000
    _, plaintext = builders.make_key(org)
    client = builders.key_client(plaintext)
    response = client.post(
        f"/api/v1/orgs/{org.slug}/api-keys", {"name": "x" * 5000, "scopes": ["org:read"]}, format="json"
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large" and "1000 bytes" in error["message"]


@pytest.mark.django_db(transaction=True)
def test_a_chunked_upload_with_no_length_is_cut_off_at_the_limit(web_server, org):
    """Catches an upload limit that trusts Content-Length: a chunked body has none. The web server runs with the
    default MAX_UPLOAD_BYTES (FINE_TUNE_MAX_FILE_BYTES + 1 MiB); the body streams past it."""
    from django.conf import settings

    _, plaintext = builders.make_key(org, scopes=["inference", "org:read", "org:write"])
    limit = settings.MAX_UPLOAD_BYTES
    chunk = b"x" * (1024 * 1024)
    boundary = "lightsout-test"

    def body():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'
        ).encode()
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    response = httpx.post(
        f"{web_server}/v1/files",
        content=body(),
        headers={
            "Authorization": f"Bearer {plaintext}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        timeout=120,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not TrainingFile.objects.filter(organization=org).exists()
