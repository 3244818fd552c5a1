"""Adapters leaving and entering the platform.

`export_bundle` packs a trained adapter as a tenant's take-home archive: the PEFT files vLLM loads, a README model
card that says how to serve it, and the same facts machine-readable in lightsout.json.

`validate_adapter_archive` is the gate for adapters tenants upload: it extracts safely and checks, before any vLLM
server sees the files, everything that would otherwise fail at load time on a shared server (or, worse, load and
produce garbage): format, rank, target modules, base model and tensor shapes.

Base model rule: the last path component of `base_model_name_or_path`, compared case-insensitively, must equal that
of the expected base model name. PEFT writes whatever path or hub id the trainer used, so
`/data/SmolLM2-135M-Instruct`, `HuggingFaceTB/SmolLM2-135M-Instruct` and `smollm2-135m-instruct` all match.
An adapter that names no base model is accepted with a warning: the tensor shape check against the base model's
dimensions still rejects adapters trained for a different architecture.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from inference.engine.safe_archive import SafeArchive, UnsafeArchiveError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MODEL_CARD = "README.md"
METADATA = "lightsout.json"
BUNDLE_FORMAT = "lightsout-adapter-bundle"
BUNDLE_FORMAT_VERSION = 1
# Files an uploaded archive may contribute; anything else is ignored (and reported), never written to disk.
ACCEPTED_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, MODEL_CARD, METADATA)
# Ranks vLLM accepts for --max-lora-rank; the README suggests the smallest that fits.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class AdapterArchiveError(ValueError):
    """An uploaded adapter archive was rejected; `code` is stable for API clients, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AdapterInfo:
    directory: Path  # where the accepted adapter was extracted: give this path to vLLM's load_lora
    rank: int
    lora_alpha: float
    target_modules: list[str]
    base_model_name_or_path: str | None
    weights_sha256: str
    weights_bytes: int
    tensor_count: int
    metadata: dict[str, Any] | None = None  # lightsout.json of a bundle we exported, if present
    warnings: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_dir_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return cleaned or "adapter"


def _serving_rank(rank: int) -> int:
    return next((allowed for allowed in VLLM_LORA_RANKS if allowed >= rank), rank)


def _markdown_table(rows: dict[str, Any]) -> str:
    lines = ["| | |", "|---|---|"]
    for key, value in rows.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else value
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines)


def render_model_card(
    *, model_card: dict[str, Any], adapter_config: dict[str, Any], dir_name: str, archive_name: str
) -> str:
    name = model_card.get("name", dir_name)
    base_model = model_card.get("base_model") or adapter_config.get("base_model_name_or_path") or "BASE_MODEL"
    rank = int(adapter_config.get("r", 8))
    sections = [
        f"# {name}",
        "",
        f"A LoRA adapter for `{base_model}`, fine-tuned on Lightsout."
        + (f"\n\n{model_card['description']}" if model_card.get("description") else ""),
        "",
        "## Training",
        "",
        _markdown_table(
            {
                "Base model": f"`{base_model}`",
                "Training data SHA-256": f"`{model_card.get('data_sha256', 'unknown')}`",
                "Trained tokens": model_card.get("trained_tokens", "unknown"),
                "LoRA rank / alpha": f"{adapter_config.get('r')} / {adapter_config.get('lora_alpha')}",
                "Target modules": adapter_config.get("target_modules"),
                "Created": model_card.get("created_at", "unknown"),
            }
        ),
    ]
    if model_card.get("hyperparameters"):
        sections += ["", "### Hyperparameters", "", _markdown_table(dict(model_card["hyperparameters"]))]
    if model_card.get("metrics"):
        sections += ["", "## Metrics", "", _markdown_table(dict(model_card["metrics"]))]
    sections += [
        "",
        "## Serving it with vLLM",
        "",
        "Extract the archive, then start vLLM with the base model and this adapter:",
        "",
        "```sh",
        f"tar -xzf {archive_name}",
        f"vllm serve {base_model} --enable-lora --max-lora-rank {_serving_rank(rank)} \\",
        f"    --lora-modules {dir_name}=./{dir_name}",
        "```",
        "",
        f'Requests then name the adapter as the model (`"model": "{dir_name}"`):',
        "",
        "```sh",
        "curl http://localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\",
        f'    -d \'{{"model": "{dir_name}", "messages": [{{"role": "user", "content": "Hello"}}]}}\'',
        "```",
        "",
        "It also loads in Python with PEFT: `PeftModel.from_pretrained(base_model, path)`.",
        "",
        f"`{METADATA}` holds the same facts machine-readable.",
        "",
    ]
    return "\n".join(sections)


def export_bundle(*, adapter_dir: Path, out_path: Path, model_card: dict[str, Any]) -> Path:
    """Write `out_path` (.tar.gz) with the adapter, a README model card and lightsout.json; returns `out_path`.

    `model_card` keys used by the README (all optional, all copied into lightsout.json): name, description,
    base_model, data_sha256, trained_tokens, hyperparameters (dict), metrics (dict), created_at. Its values must be
    JSON-serialisable. Files sit in one top-level directory named after the adapter, so extracting gives a directory
    ready for `--lora-modules name=path`.
    """
    adapter_dir = Path(adapter_dir)
    out_path = Path(out_path)
    for required in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (adapter_dir / required).is_file():
            raise FileNotFoundError(f"{adapter_dir} has no {required}; not a PEFT adapter directory")
    adapter_config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    dir_name = _safe_dir_name(str(model_card.get("name") or out_path.name.removesuffix(".tar.gz")))
    files = {name: _sha256(adapter_dir / name) for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS)}
    metadata = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        **model_card,
        "adapter": {
            "peft_type": adapter_config.get("peft_type"),
            "r": adapter_config.get("r"),
            "lora_alpha": adapter_config.get("lora_alpha"),
            "target_modules": adapter_config.get("target_modules"),
            "base_model_name_or_path": adapter_config.get("base_model_name_or_path"),
        },
        "files": files,
    }
    generated = {
        MODEL_CARD: render_model_card(
            model_card=model_card, adapter_config=adapter_config, dir_name=dir_name, archive_name=out_path.name
        ).encode(),
        METADATA: (json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n").encode(),
    }

    out_path.parent.mkdir(parents=True, exist_ok=True)
    now = int(time.time())

    def tar_info(name: str, size: int, *, is_dir: bool = False) -> tarfile.TarInfo:
        # Neutral ownership and modes: the archive should not carry our machine's users into the tenant's.
        info = tarfile.TarInfo(f"{dir_name}/{name}" if name else dir_name)
        info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = size, now, 0, 0, "", ""
        info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
        info.mode = 0o755 if is_dir else 0o644
        return info

    # Written beside the target and renamed, so a half-written bundle is never offered for download.
    with tempfile.NamedTemporaryFile(dir=out_path.parent, prefix=f".{out_path.name}.", delete=False) as raw:
        temp_path = Path(raw.name)
        try:
            with (
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=now) as compressed,
                tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
            ):
                archive.addfile(tar_info("", 0, is_dir=True))
                for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
                    path = adapter_dir / name
                    with open(path, "rb") as handle:
                        archive.addfile(tar_info(name, path.stat().st_size), handle)
                for name, content in generated.items():
                    archive.addfile(tar_info(name, len(content)), io.BytesIO(content))
        except BaseException:
            temp_path.unlink(missing_ok=True)
            raise
    temp_path.chmod(0o644)
    temp_path.replace(out_path)
    return out_path


def _adapter_root(archive: SafeArchive) -> str:
    """The directory inside the archive that holds adapter_config.json: the root or one top-level folder."""
    configs = [m.name for m in archive.files() if PurePosixPath(m.name).name == ADAPTER_CONFIG]
    if not configs:
        raise AdapterArchiveError("missing_file", f"the archive has no {ADAPTER_CONFIG}")
    if len(configs) > 1:
        raise AdapterArchiveError("ambiguous_archive", f"the archive holds several adapters: {', '.join(configs)}")
    parent = str(PurePosixPath(configs[0]).parent)
    if parent != "." and "/" in parent:
        raise AdapterArchiveError(
            "ambiguous_archive", f"{ADAPTER_CONFIG} must be at the top of the archive or in one folder, not {parent}"
        )
    return "" if parent == "." else parent


def validate_adapter_archive(
    *,
    archive_path: Path,
    extract_to: Path,
    base_model_name: str,
    max_rank: int,
    allowed_target_modules: tuple[str, ...] | list[str],
    base_model_dir: Path | None = None,
    max_total_bytes: int = 2 * 1024**3,
    max_members: int = 64,
) -> AdapterInfo:
    """Extract an uploaded LoRA adapter (tar.gz or zip) into `extract_to` and check it can be served.

    `extract_to` must not exist yet; on any rejection it is removed again, so a directory that exists after this call
    holds an accepted adapter. Give `base_model_dir` to also check tensor shapes against the base model's
    dimensions. Raises AdapterArchiveError (with a `code`) on the first problem.
    """
    extract_to = Path(extract_to)
    if extract_to.exists():
        raise FileExistsError(f"{extract_to} already exists; extraction needs a fresh directory")
    extract_to.mkdir(parents=True)
    try:
        return _extract_and_check(
            archive_path=Path(archive_path),
            extract_to=extract_to,
            base_model_name=base_model_name,
            max_rank=max_rank,
            allowed_target_modules=tuple(allowed_target_modules),
            base_model_dir=Path(base_model_dir) if base_model_dir is not None else None,
            max_total_bytes=max_total_bytes,
            max_members=max_members,
        )
    except UnsafeArchiveError as exc:
        shutil.rmtree(extract_to, ignore_errors=True)
        raise AdapterArchiveError(exc.code, str(exc)) from None
    except BaseException:
        shutil.rmtree(extract_to, ignore_errors=True)
        raise


def _extract_and_check(
    *,
    archive_path: Path,
    extract_to: Path,
    base_model_name: str,
    max_rank: int,
    allowed_target_modules: tuple[str, ...],
    base_model_dir: Path | None,
    max_total_bytes: int,
    max_members: int,
) -> AdapterInfo:
    warnings: list[str] = []
    with SafeArchive(archive_path, max_members=max_members, max_total_bytes=max_total_bytes) as archive:
        root = _adapter_root(archive)
        prefix = f"{root}/" if root else ""
        present = {m.name.removeprefix(prefix) for m in archive.files() if m.name.startswith(prefix)}
        if ADAPTER_WEIGHTS not in present:
            if present & {"adapter_model.bin", "adapter_model.pt"}:
                raise AdapterArchiveError(
                    "pickle_weights",
                    "adapter_model.bin is a pickle, which can run code when loaded; "
                    "save the adapter with safe_serialization=True (adapter_model.safetensors)",
                )
            raise AdapterArchiveError("missing_file", f"the archive has no {ADAPTER_WEIGHTS} next to {ADAPTER_CONFIG}")
        ignored = sorted(m.name for m in archive.files() if m.name.removeprefix(prefix) not in ACCEPTED_FILES
                         or not m.name.startswith(prefix))  # fmt: skip
        if ignored:
            shown = ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else "")
            warnings.append(f"ignored {len(ignored)} file(s) that are not part of an adapter: {shown}")
        for name in ACCEPTED_FILES:
            if name in present:
                archive.extract_file(prefix + name, destination=extract_to / name, max_bytes=max_total_bytes)

    config = _read_adapter_config(extract_to / ADAPTER_CONFIG)
    rank, target_modules, rank_pattern = _check_lora_config(
        config, max_rank=max_rank, allowed_target_modules=allowed_target_modules
    )
    base_name = config.get("base_model_name_or_path")
    if not base_name:
        warnings.append("the adapter does not name its base model; accepted on its tensor shapes")
    elif not _same_base_model(str(base_name), base_model_name):
        raise AdapterArchiveError(
            "base_model_mismatch",
            f"the adapter was trained on {base_name!r}, but this deployment serves {base_model_name!r}",
        )
    dimensions = _module_dimensions(base_model_dir) if base_model_dir is not None else None
    tensor_count = _check_weights(
        extract_to / ADAPTER_WEIGHTS,
        rank=rank,
        rank_pattern=rank_pattern,
        target_modules=target_modules,
        dimensions=dimensions,
    )
    metadata = None
    if (extract_to / METADATA).is_file():
        try:
            metadata = json.loads((extract_to / METADATA).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            warnings.append(f"{METADATA} is not valid JSON and was ignored")
    return AdapterInfo(
        directory=extract_to,
        rank=rank,
        lora_alpha=float(config.get("lora_alpha", rank)),
        target_modules=sorted(target_modules),
        base_model_name_or_path=str(base_name) if base_name else None,
        weights_sha256=_sha256(extract_to / ADAPTER_WEIGHTS),
        weights_bytes=(extract_to / ADAPTER_WEIGHTS).stat().st_size,
        tensor_count=tensor_count,
        metadata=metadata if isinstance(metadata, dict) else None,
        warnings=warnings,
    )


def _read_adapter_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterArchiveError("bad_config", f"{ADAPTER_CONFIG} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise AdapterArchiveError("bad_config", f"{ADAPTER_CONFIG} must hold a JSON object")
    return config


def _check_lora_config(
    config: dict[str, Any], *, max_rank: int, allowed_target_modules: tuple[str, ...]
) -> tuple[int, set[str], dict[str, int]]:
    peft_type = config.get("peft_type")
    if peft_type != "LORA":
        raise AdapterArchiveError("not_lora", f"peft_type is {peft_type!r}; only LoRA adapters (LORA) can be served")
    rank = config.get("r")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise AdapterArchiveError("bad_config", f"r must be a positive integer, got {rank!r}")
    rank_pattern = config.get("rank_pattern") or {}
    if not isinstance(rank_pattern, dict) or not all(isinstance(v, int) for v in rank_pattern.values()):
        raise AdapterArchiveError("bad_config", "rank_pattern must map module names to integer ranks")
    highest = max([rank, *rank_pattern.values()])
    if highest > max_rank:
        raise AdapterArchiveError("rank_too_high", f"LoRA rank {highest} exceeds the maximum of {max_rank} served here")
    alpha = config.get("lora_alpha", rank)
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or alpha <= 0:
        raise AdapterArchiveError("bad_config", f"lora_alpha must be a positive number, got {alpha!r}")
    raw_targets = config.get("target_modules")
    if isinstance(raw_targets, str):
        # PEFT reads a string as a regular expression over module paths; we cannot know what it matches without
        # the model, so only a string that is literally one allowed module name is taken.
        if raw_targets not in allowed_target_modules:
            raise AdapterArchiveError(
                "target_modules_not_allowed",
                f"target_modules is the pattern {raw_targets!r}; list module names from "
                f"{', '.join(allowed_target_modules)} instead",
            )
        targets = {raw_targets}
    elif isinstance(raw_targets, list) and raw_targets and all(isinstance(t, str) for t in raw_targets):
        targets = set(raw_targets)
    else:
        raise AdapterArchiveError("bad_config", "target_modules must be a non-empty list of module names")
    not_allowed = sorted(targets - set(allowed_target_modules))
    if not_allowed:
        raise AdapterArchiveError(
            "target_modules_not_allowed",
            f"target module(s) {', '.join(not_allowed)} are not supported; "
            f"allowed: {', '.join(allowed_target_modules)}",
        )
    # Features vLLM cannot serve from an adapter: better refused here than failing on a shared server.
    if config.get("use_dora"):
        raise AdapterArchiveError("unsupported_feature", "DoRA adapters (use_dora) cannot be served")
    if config.get("modules_to_save"):
        raise AdapterArchiveError(
            "unsupported_feature", "modules_to_save (fully fine-tuned layers) cannot be served with LoRA"
        )
    return rank, targets, rank_pattern


def _same_base_model(declared: str, expected: str) -> bool:
    def leaf(name: str) -> str:
        return PurePosixPath(name.rstrip("/")).name.lower()

    return leaf(declared) == leaf(expected)


_LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.(?P<kind>lora_A|lora_B)\.weight$")
_LAYER_INDEX = re.compile(r"\.layers\.(\d+)\.")


def _module_dimensions(base_model_dir: Path) -> dict[str, Any]:
    """(in_features, out_features) of the usual attention and MLP projections, from a Llama-style config."""
    from inference.engine.base_model import describe_model_dir

    info = describe_model_dir(base_model_dir)
    hidden, heads, kv_heads = info["hidden_size"], info["num_attention_heads"], info["num_key_value_heads"]
    head_dim, intermediate = info["head_dim"], info["intermediate_size"]
    shapes = {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, intermediate),
        "up_proj": (hidden, intermediate),
        "down_proj": (intermediate, hidden),
    }
    return {"shapes": shapes, "layers": info["num_hidden_layers"]}


def _expected_rank(module_path: str, *, rank: int, rank_pattern: dict[str, int]) -> int:
    for pattern, pattern_rank in rank_pattern.items():
        if re.fullmatch(rf"(.*\.)?{pattern}", module_path):
            return pattern_rank
    return rank


def _check_weights(
    path: Path,
    *,
    rank: int,
    rank_pattern: dict[str, int],
    target_modules: set[str],
    dimensions: dict[str, Any] | None,
) -> int:
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterArchiveError("bad_weights", f"{ADAPTER_WEIGHTS} is not a valid safetensors file: {exc}") from None
    pairs: dict[str, dict[str, list[int]]] = {}
    with handle:
        keys = list(handle.keys())  # type: ignore[no-untyped-call]  # safetensors' stub leaves keys() unannotated
        if not keys:
            raise AdapterArchiveError("bad_weights", f"{ADAPTER_WEIGHTS} holds no tensors")
        for key in keys:
            match = _LORA_KEY.match(key)
            if match is None:
                raise AdapterArchiveError(
                    "bad_weights", f"unexpected tensor {key!r}: only LoRA A/B matrices of target modules are served"
                )
            module, kind = match["module"], match["kind"]
            if module.rsplit(".", 1)[-1] not in target_modules:
                raise AdapterArchiveError(
                    "shape_mismatch", f"tensor {key!r} belongs to a module not listed in target_modules"
                )
            shape = list(handle.get_slice(key).get_shape())  # type: ignore[no-untyped-call]  # unannotated in its stub
            if len(shape) != 2:
                raise AdapterArchiveError("shape_mismatch", f"tensor {key!r} has shape {shape}; expected a matrix")
            pairs.setdefault(module, {})[kind] = shape
    for module, found in sorted(pairs.items()):
        if set(found) != {"lora_A", "lora_B"}:
            raise AdapterArchiveError("shape_mismatch", f"module {module} has only {', '.join(found)}")
        expected_rank = _expected_rank(module, rank=rank, rank_pattern=rank_pattern)
        (a_rows, a_in), (b_out, b_cols) = found["lora_A"], found["lora_B"]
        if a_rows != expected_rank or b_cols != expected_rank:
            raise AdapterArchiveError(
                "shape_mismatch",
                f"module {module}: lora_A is {found['lora_A']} and lora_B is {found['lora_B']}, "
                f"inconsistent with rank {expected_rank} declared in {ADAPTER_CONFIG}",
            )
        if dimensions is not None:
            leaf = module.rsplit(".", 1)[-1]
            if leaf in dimensions["shapes"] and (a_in, b_out) != dimensions["shapes"][leaf]:
                raise AdapterArchiveError(
                    "shape_mismatch",
                    f"module {module} maps {a_in} -> {b_out} features, but the base model's {leaf} maps "
                    f"{dimensions['shapes'][leaf][0]} -> {dimensions['shapes'][leaf][1]}: "
                    "the adapter was trained for a different model",
                )
            layer = _LAYER_INDEX.search(f".{module}.")
            if layer and int(layer.group(1)) >= dimensions["layers"]:
                raise AdapterArchiveError(
                    "shape_mismatch", f"module {module} is beyond the base model's {dimensions['layers']} layers"
                )
    return len(keys)
