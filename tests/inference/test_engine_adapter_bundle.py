"""Export bundles (the tenant's take-home adapter) and validation of uploaded adapter archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

import pytest
import torch
from safetensors.torch import save as save_safetensors

from inference.engine.adapter_bundle import AdapterArchiveError, export_bundle, validate_adapter_archive
from inference.engine.vllm_server import VllmAdminClient

BASE_NAME = "smollm2-135m-instruct"
ALLOWED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def adapter_files(fact_training: dict[str, Any]) -> dict[str, bytes]:
    adapter_dir = fact_training["result"].adapter_dir
    return {name: (adapter_dir / name).read_bytes() for name in ("adapter_config.json", "adapter_model.safetensors")}


@pytest.fixture(scope="module")
def model_card(fact_training: dict[str, Any]) -> dict[str, Any]:
    result = fact_training["result"]
    return {
        "name": "acme-x9-support",
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "data_sha256": result.data_sha256,
        "trained_tokens": result.trained_tokens,
        "hyperparameters": {"n_epochs": 6, "batch_size": 4, "learning_rate_multiplier": 20.0},
        "metrics": {"valid_loss_after": result.metrics["valid_loss_after"]},
        "created_at": "2026-11-29T12:00:00Z",
    }


def test_export_bundle_holds_adapter_model_card_and_metadata(
    fact_training: dict[str, Any], model_card: dict[str, Any], adapter_files: dict[str, bytes], tmp_path: Path
) -> None:
    """Catches: a bundle missing a file vLLM needs, a README that does not say how to serve it, or metadata that
    disagrees with the files (hashes, rank, base model)."""
    bundle = export_bundle(
        adapter_dir=fact_training["result"].adapter_dir, out_path=tmp_path / "acme.tar.gz", model_card=model_card
    )
    with tarfile.open(bundle) as archive:
        names = sorted(archive.getnames())
        # a regular file always extracts
        contents = {m.name: cast(IO[bytes], archive.extractfile(m)).read() for m in archive.getmembers() if m.isfile()}
        assert all(m.uid == 0 and m.uname == "" for m in archive.getmembers())
    prefix = "acme-x9-support/"
    files = ("README.md", "adapter_config.json", "adapter_model.safetensors", "lightsout.json")
    assert names == ["acme-x9-support"] + [prefix + name for name in files]
    assert contents[prefix + "adapter_model.safetensors"] == adapter_files["adapter_model.safetensors"]

    readme = contents[prefix + "README.md"].decode()
    assert "vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora --max-lora-rank 8" in readme
    assert "--lora-modules acme-x9-support=./acme-x9-support" in readme
    assert model_card["data_sha256"] in readme and str(model_card["trained_tokens"]) in readme

    metadata = json.loads(contents[prefix + "lightsout.json"])
    assert metadata["format"] == "lightsout-adapter-bundle"
    assert {key: metadata[key] for key in model_card} == model_card
    # The automatic defaults train every attention and MLP projection of the Llama architecture.
    assert metadata["adapter"]["r"] == 8 and sorted(metadata["adapter"]["target_modules"]) == sorted(ALLOWED)
    assert metadata["files"] == {name: sha256(data) for name, data in adapter_files.items()}


def test_exported_bundle_round_trips_through_upload_validation_and_serves(
    fact_training: dict[str, Any],
    model_card: dict[str, Any],
    adapter_files: dict[str, bytes],
    base_model_dir: Path,
    vllm_admin: VllmAdminClient,
    memorised_fact: Any,
    tmp_path: Path,
) -> None:
    """Catches: our own export being rejected by our own upload gate, extraction altering the weights, and an
    extracted adapter that vLLM cannot serve."""
    bundle = export_bundle(
        adapter_dir=fact_training["result"].adapter_dir, out_path=tmp_path / "acme.tar.gz", model_card=model_card
    )
    info = validate_adapter_archive(
        archive_path=bundle,
        extract_to=tmp_path / "uploaded",
        base_model_name=BASE_NAME,
        max_rank=8,
        allowed_target_modules=ALLOWED,
        base_model_dir=base_model_dir,
    )
    assert (info.rank, info.lora_alpha, sorted(info.target_modules)) == (8, 16.0, sorted(ALLOWED))
    assert info.tensor_count == 30 * 7 * 2  # 30 layers x 7 projections x (A, B)
    assert info.weights_sha256 == sha256(adapter_files["adapter_model.safetensors"])
    assert info.metadata is not None and info.metadata["data_sha256"] == model_card["data_sha256"]
    assert info.warnings == []

    vllm_admin.load_lora("acme-upload", info.directory)
    try:
        reply = vllm_admin.chat(model="acme-upload", messages=memorised_fact.prompt(memorised_fact.questions[1]))
    finally:
        vllm_admin.unload_lora("acme-upload")
    assert memorised_fact.key in reply["choices"][0]["message"]["content"]


def test_zip_upload_with_files_at_the_root_is_accepted(adapter_files: dict[str, bytes], tmp_path: Path) -> None:
    """Catches: only accepting our own tar layout, when tenants zip a PEFT output directory as is."""
    archive = tmp_path / "adapter.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, data in adapter_files.items():
            zipped.writestr(name, data)
        zipped.writestr("training_args.bin", b"not needed")
    info = validate_adapter_archive(archive_path=archive, extract_to=tmp_path / "out", base_model_name=BASE_NAME,
                                    max_rank=8, allowed_target_modules=ALLOWED)  # fmt: skip
    assert info.rank == 8
    assert sorted(p.name for p in info.directory.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert "training_args.bin" in info.warnings[0]  # ignored, not extracted


def _tar(path: Path, files: dict[str, bytes], *, links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _with_config(files: dict[str, bytes], **changes: Any) -> dict[str, bytes]:
    config = json.loads(files["adapter_config.json"]) | changes
    return files | {"adapter_config.json": json.dumps(config).encode()}


def _foreign_weights() -> bytes:
    # Rank-8 LoRA tensors for a model with hidden size 1024: a consistent adapter, just for another model.
    tensors = {}
    for layer in range(2):
        stem = f"base_model.model.model.layers.{layer}.self_attn.q_proj"
        tensors[f"{stem}.lora_A.weight"] = torch.zeros(8, 1024)
        tensors[f"{stem}.lora_B.weight"] = torch.zeros(1024, 8)
    return save_safetensors(tensors)


def _without(files: dict[str, bytes], name: str) -> dict[str, bytes]:
    return {key: value for key, value in files.items() if key != name}


# Each case: how to build the bad upload from a good adapter's files, the error code, and words the message must name.
BadArchive = Callable[[Path, dict[str, bytes]], Path]
BAD_ARCHIVES: dict[str, tuple[BadArchive, str, str]] = {
    "path traversal": (lambda d, f: _tar(d / "a.tar.gz", {"../evil.txt": b"x"} | f), "unsafe_path", "outside"),
    "absolute path": (lambda d, f: _tar(d / "a.tar.gz", {"/tmp/evil.txt": b"x"} | f), "unsafe_path", "absolute"),
    "zip traversal": (lambda d, f: _zip(d / "a.zip", {"../../evil.txt": b"x"} | f), "unsafe_path", "outside"),
    "symlink": (lambda d, f: _tar(d / "a.tar.gz", f, links={"README.md": "/etc/passwd"}), "link_not_allowed", "link"),
    "missing weights": (
        lambda d, f: _tar(d / "a.tar.gz", _without(f, "adapter_model.safetensors")),
        "missing_file",
        "adapter_model.safetensors",
    ),
    "missing config": (
        lambda d, f: _tar(d / "a.tar.gz", _without(f, "adapter_config.json")),
        "missing_file",
        "adapter_config.json",
    ),
    "pickle weights": (
        lambda d, f: _tar(d / "a.tar.gz", _without(f, "adapter_model.safetensors") | {"adapter_model.bin": b"\x80"}),
        "pickle_weights",
        "safetensors",
    ),
    "rank too high": (lambda d, f: _tar(d / "a.tar.gz", _with_config(f, r=16)), "rank_too_high", "rank 16"),
    "target module not allowed": (
        lambda d, f: _tar(d / "a.tar.gz", _with_config(f, target_modules=["q_proj", "v_proj", "lm_head"])),
        "target_modules_not_allowed",
        "lm_head",
    ),
    "regex target modules": (
        lambda d, f: _tar(d / "a.tar.gz", _with_config(f, target_modules=".*")),
        "target_modules_not_allowed",
        "pattern",
    ),
    "shapes disagree with rank": (
        lambda d, f: _tar(d / "a.tar.gz", _with_config(f, r=4)),
        "shape_mismatch",
        "rank 4",
    ),
    "other base model": (
        lambda d, f: _tar(d / "a.tar.gz", _with_config(f, base_model_name_or_path="meta-llama/Llama-3.1-8B")),
        "base_model_mismatch",
        "Llama-3.1-8B",
    ),
    "not lora": (lambda d, f: _tar(d / "a.tar.gz", _with_config(f, peft_type="IA3")), "not_lora", "IA3"),
    "dora": (lambda d, f: _tar(d / "a.tar.gz", _with_config(f, use_dora=True)), "unsupported_feature", "DoRA"),
    "trained for another architecture": (
        lambda d, f: _tar(d / "a.tar.gz", f | {"adapter_model.safetensors": _foreign_weights()}),
        "shape_mismatch",
        "different model",
    ),
    "not an archive": (lambda d, f: _write(d / "a.tar.gz", b"hello, not an archive"), "unsupported_format", "zip"),
}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_bad_uploads_are_rejected_with_a_clear_reason(
    case: str, adapter_files: dict[str, bytes], base_model_dir: Path, tmp_path: Path
) -> None:
    """Catches: tar-slip and link attacks writing outside the extraction directory, and adapters that would fail (or
    silently misbehave) on a shared vLLM server getting past the upload gate."""
    build, code, message_part = BAD_ARCHIVES[case]
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    archive = build(uploads, adapter_files)
    extract_to = tmp_path / "jail" / "adapter"
    with pytest.raises(AdapterArchiveError) as caught:
        validate_adapter_archive(archive_path=archive, extract_to=extract_to, base_model_name=BASE_NAME,
                                 max_rank=8, allowed_target_modules=ALLOWED, base_model_dir=base_model_dir)  # fmt: skip
    assert caught.value.code == code
    assert message_part in str(caught.value)
    assert not extract_to.exists(), "a rejected upload must leave nothing behind"
    assert not list(tmp_path.rglob("evil.txt")) and not Path("/tmp/evil.txt").exists()


def test_upload_over_the_size_cap_is_rejected(adapter_files: dict[str, bytes], tmp_path: Path) -> None:
    """Catches: archive bombs: the expanded size is capped before and while extracting."""
    archive = _tar(tmp_path / "a.tar.gz", adapter_files)
    with pytest.raises(AdapterArchiveError) as caught:
        validate_adapter_archive(archive_path=archive, extract_to=tmp_path / "out", base_model_name=BASE_NAME,
                                 max_rank=8, allowed_target_modules=ALLOWED, max_total_bytes=100_000)  # fmt: skip
    assert caught.value.code == "too_large"


def test_adapter_naming_no_base_model_is_accepted_with_a_warning(
    adapter_files: dict[str, bytes], tmp_path: Path
) -> None:
    """Catches: a change to the documented base-model rule (unnamed base: accept on shapes, warn)."""
    archive = _tar(tmp_path / "a.tar.gz", _with_config(adapter_files, base_model_name_or_path=None))
    info = validate_adapter_archive(archive_path=archive, extract_to=tmp_path / "out", base_model_name=BASE_NAME,
                                    max_rank=8, allowed_target_modules=ALLOWED)  # fmt: skip
    assert info.base_model_name_or_path is None
    assert any("does not name its base model" in warning for warning in info.warnings)
