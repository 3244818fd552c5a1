"""Artifacts through Django's storage API against a real S3-compatible server (moto_server, from pip)."""

import hashlib
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.core.management import call_command

from foundation.storage import delete_prefix, fetch_directory, list_keys, store_directory
from inference.models import AdapterVersion, BaseModel
from inference.services import (
    adapter_local_dir,
    adapter_store_prefix,
    adapter_version_create,
    tenant_model_get_or_create,
)

pytestmark = pytest.mark.django_db


def _adapter_dir(root: Path, marker: bytes) -> Path:
    directory = root / "adapter"
    (directory / "nested").mkdir(parents=True)
    (directory / "adapter_config.json").write_text('{"r": 8, "target_modules": ["q_proj", "v_proj"]}')
    (directory / "adapter_model.safetensors").write_bytes(marker * 4096)
    (directory / "nested" / "notes.txt").write_text("kept in sub-directories too")
    return directory


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*")
        if p.is_file()
    }


def test_a_directory_round_trips_through_the_bucket(s3_artifacts, tmp_path):
    client, bucket = s3_artifacts
    assert type(storages["artifacts"]).__name__ == "S3Storage"
    source = _adapter_dir(tmp_path, b"\x01\x02")
    keys = store_directory(local_dir=source, prefix="adapters/7/a-round-trip")
    assert sorted(keys) == list_keys(prefix="adapters/7/a-round-trip")
    # The objects are really in the bucket, under the storage's location.
    stored = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "artifacts/adapters/7/a-round-trip/nested/notes.txt" in stored and len(stored) == 3

    fetched = fetch_directory(prefix="adapters/7/a-round-trip", local_dir=tmp_path / "elsewhere" / "a-round-trip")
    assert _digest(fetched) == _digest(source)
    assert not [p for p in fetched.parent.iterdir() if p.name.startswith(".")]  # no scratch left behind

    assert delete_prefix(prefix="adapters/7/a-round-trip") == 3
    assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    with pytest.raises(FileNotFoundError):
        fetch_directory(prefix="adapters/7/a-round-trip", local_dir=tmp_path / "again")


def test_an_adapter_version_is_stored_in_the_bucket_and_a_vllm_node_fetches_it(s3_artifacts, org, tmp_path, settings):
    """The web (or training) pod writes the version; a vLLM pod with an empty disk gets it from S3 alone."""
    client, bucket = s3_artifacts
    settings.ADAPTER_STORE = tmp_path / "web-pod"
    base = BaseModel.objects.create(
        name="tiny-base",
        weights_path=str(tmp_path / "weights"),
        architecture="LlamaForCausalLM",
        context_length=2048,
        lora_target_modules=["q_proj", "v_proj"],
        license="apache-2.0",
    )
    model = tenant_model_get_or_create(organization=org, alias="line-assistant", base_model=base)
    source = _adapter_dir(tmp_path, b"\x07")
    version = adapter_version_create(
        tenant_model=model,
        adapter_dir=source,
        rank=8,
        target_modules=["q_proj", "v_proj"],
        source=AdapterVersion.Source.UPLOAD,
    )
    prefix = adapter_store_prefix(organization_id=org.pk, lora_name=version.lora_name)
    stored = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert stored == {f"artifacts/{prefix}/{name}" for name in _digest(source)}

    # A vLLM pod: its own empty ADAPTER_STORE, the same path names; its sidecar fetches from the bucket.
    vllm_disk = tmp_path / "vllm-pod"
    settings.ADAPTER_STORE = vllm_disk
    version.path = str(vllm_disk / str(org.pk) / version.lora_name)
    AdapterVersion.objects.filter(pk=version.pk).update(path=version.path)
    out = StringIO()
    call_command("adapter_sync", "--once", "--base-model", "tiny-base", stdout=out)
    assert f"{version.lora_name} ready" in out.getvalue()
    assert _digest(Path(version.path)) == _digest(source)
    assert adapter_local_dir(version=version) == Path(version.path)
