"""A full disk (or a quota) while storing an upload: a clear `507 insufficient_storage` in the API's error shape,
and nothing half-stored (no row, no partial file). The fault is real: this process's file-size limit
(RLIMIT_FSIZE, which the kernel enforces with EFBIG, as a full disk does with ENOSPC and a quota with EDQUOT) is
lowered below the upload's size for the request, then raised back. Python ignores SIGXFSZ, so the write fails
instead of the process."""

import contextlib
import io
import resource
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile

from assistant.models import Document
from automation.maintenance.models import VibrationCapture
from foundation.storage import ARTIFACTS, store_file
from tests import builders
from tests.automation.maintenance.maintenance_api import client_for, make_asset_type, url
from tests.automation.maintenance.vibration_signals import FS, KINEMATICS_DICT, SHAFT_HZ

pytestmark = pytest.mark.django_db

LIMIT = 64 * 1024  # bytes a file of this process may grow to while the fault is on


@contextlib.contextmanager
def _disk_full():
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _assert_insufficient_storage(response) -> None:
    assert response.status_code == 507, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["code"] == "insufficient_storage" and "nothing was stored" in error["message"]


def test_a_document_upload_on_a_full_disk_is_507_and_stores_nothing(org):
    """Catches: a 500 on a full disk, or a partial file (Django's storage leaves one under the final name)."""
    client = builders.key_client(builders.make_key(org)[1])
    text = "\n\n".join(
        f"# Section {i}\n\nThe pump P-{i} needs its bearing checked every 500 hours." for i in range(3000)
    )
    assert len(text) > 2 * LIMIT
    upload = {"file": SimpleUploadedFile("manual.md", text.encode(), content_type="text/markdown")}
    with _disk_full():
        refused = client.post(f"/api/v1/orgs/{org.slug}/assistant/documents", upload, format="multipart")
    _assert_insufficient_storage(refused)
    assert not Document.objects.filter(organization=org).exists()
    assert _files_under(Path(default_storage.path("assistant")) / str(org.pk)) == []
    # With room again, the same upload is stored.
    upload["file"].seek(0)
    stored = client.post(f"/api/v1/orgs/{org.slug}/assistant/documents", upload, format="multipart")
    assert stored.status_code == 201, stored.content[:300]


def test_a_vibration_capture_on_a_full_disk_is_507_and_stores_nothing(org):
    make_asset_type(org)
    client = client_for(org)
    assert client.post(url(org, "assets"), {"code": "M-1", "asset_type": "pump"}, format="json").status_code == 201
    asset_id = client.get(url(org, "assets")).json()["results"][0]["id"]
    assert client.put(url(org, f"assets/{asset_id}/kinematics"), KINEMATICS_DICT, format="json").status_code == 200
    noise = np.random.default_rng(7).normal(size=int(FS * 2)).astype("<f4").tobytes()  # incompressible, 96 KB
    data = {"asset": "M-1", "sensor": "DE", "sample_rate": FS, "shaft_rpm": SHAFT_HZ * 60}
    with _disk_full():
        refused = client.post(url(org, "captures"), {**data, "file": _named(noise, "run.f32")}, format="multipart")
    _assert_insufficient_storage(refused)
    assert not VibrationCapture.objects.filter(organization=org).exists()
    assert _files_under(Path(default_storage.path("vibration")) / str(org.pk)) == []
    stored = client.post(url(org, "captures"), {**data, "file": _named(noise, "run.f32")}, format="multipart")
    assert stored.status_code == 201, stored.content[:300]


def _named(content: bytes, name: str) -> io.BytesIO:
    buffer = io.BytesIO(content)
    buffer.name = name
    return buffer


def test_the_artifact_store_leaves_no_partial_object(tmp_path):
    """Catches: the training-file and adapter path (`store_file` into the artifact store) leaving half a file."""
    source = tmp_path / "train.jsonl"
    source.write_bytes(b'{"messages": []}\n' * 10_000)
    artifacts = storages[ARTIFACTS]
    key = f"drill/{tmp_path.name}/train.jsonl"
    with _disk_full(), pytest.raises(OSError) as full:
        store_file(local_path=source, key=key)
    assert full.value.errno is not None
    assert not artifacts.exists(key)
    assert _files_under(Path(artifacts.path(f"drill/{tmp_path.name}"))) == []
