"""Conversion of the bundled SmolLM2 GGUF into a servable model directory, and reading a model directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.engine import base_model
from inference.engine.base_model import BaseModelError, convert_smollm2, describe_model_dir


def test_converted_model_is_described_from_its_config(base_model_dir: Path) -> None:
    """Catches: a conversion producing a model vLLM or PEFT cannot use (wrong architecture, missing chat template,
    weights not in 16-bit), and describe_model_dir reading the wrong keys (the control plane stores these)."""
    described = describe_model_dir(base_model_dir)
    assert described["architecture"] == "LlamaForCausalLM"
    assert described["context_length"] == 8192
    assert (described["hidden_size"], described["num_hidden_layers"]) == (576, 30)
    assert described["has_chat_template"] is True
    assert described["dtype"] == "bfloat16"
    # bfloat16 is two bytes a parameter: SmolLM2-135M is 134.5M parameters.
    assert 130e6 < described["weights_bytes"] / 2 < 140e6


def test_converting_again_is_a_no_op(base_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches: every worker start re-converting the model (15-25 s and 270 MB written each time)."""
    weights = base_model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns

    def convert_again(*, source: Path, out_dir: Path) -> None:
        raise AssertionError("a completed conversion was converted again")

    monkeypatch.setattr(base_model, "_convert_gguf_into", convert_again)
    assert convert_smollm2(target_dir=base_model_dir) == base_model_dir
    assert weights.stat().st_mtime_ns == before


def test_interrupted_conversion_leaves_no_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches: a conversion killed halfway leaving a directory that later looks like a usable model."""

    def convert_then_crash(*, source: Path, out_dir: Path) -> None:
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt  # what a worker shutdown looks like mid-conversion

    monkeypatch.setattr(base_model, "_convert_gguf_into", convert_then_crash)
    target = tmp_path / "models" / "smollm2"
    with pytest.raises(KeyboardInterrupt):
        convert_smollm2(target_dir=target)
    assert not target.exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".smollm2.lock"]


def test_a_foreign_directory_at_the_target_is_not_overwritten(tmp_path: Path) -> None:
    """Catches: conversion deleting a directory it did not create (an operator's model, a half-copied one)."""
    target = tmp_path / "smollm2"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    with pytest.raises(BaseModelError, match="not a completed conversion"):
        convert_smollm2(target_dir=target)
    assert (target / "precious.txt").read_text() == "keep me"


def test_describing_a_directory_without_config_is_a_clear_error(tmp_path: Path) -> None:
    """Catches: a raw FileNotFoundError/KeyError reaching the operator registering a base model."""
    with pytest.raises(BaseModelError, match="not a Hugging Face model directory"):
        describe_model_dir(tmp_path)
