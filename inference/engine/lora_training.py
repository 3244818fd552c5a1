"""LoRA fine-tuning of a causal language model on chat data, with events, cancellation and exact resume.

A plain PyTorch loop over transformers + PEFT: every step is visible (for progress events and cancellation), the
state to checkpoint is explicit, and the same code runs on a GPU worker and on the 2-core embedded default.

Determinism: the example order of epoch e is a pure function of (seed, e), so a resumed run recomputes it and
skips the batches already done; with the optimizer, scheduler and RNG states restored, a resumed run ends with the
same weights as one that was never interrupted.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from inference.engine.auto_hyperparameters import convergence_warnings
from inference.engine.causal_lm_loss import LossSums, assistant_token_loss, collate, plan_micro_batches, truncate
from inference.engine.chat_tokens import TokenizedChat, load_tokenizer, tokenize_chat
from inference.engine.lora_checkpoints import (
    CheckpointError,
    CheckpointMeta,
    load_training_state,
    read_checkpoint_meta,
    restore_rng_state,
    save_checkpoint,
)
from inference.engine.lora_evaluation import exact_match_rates, generate_samples, validation_loss
from inference.engine.training_data import file_sha256, read_chat_examples

EventCallback = Callable[[str, dict[str, Any]], None]
StopCheck = Callable[[], bool]

ADAPTER_DIR_NAME = "adapter"
CHECKPOINTS_DIR_NAME = "checkpoints"


@dataclass(frozen=True)
class LoraHyperparameters:
    """What a tenant (or the platform default) chooses; `learning_rate_multiplier` follows OpenAI's API."""

    n_epochs: int = 3
    batch_size: int = 8
    learning_rate_multiplier: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    base_learning_rate: float = 2e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_seq_len: int = 2048
    # Bounds the memory of one forward pass (batch x padded length); a batch larger than this is split into
    # micro-batches whose gradients are accumulated, which changes the speed, not the result.
    max_tokens_per_micro_batch: int = 4096

    def __post_init__(self) -> None:
        problems = []
        if self.n_epochs < 1:
            problems.append("n_epochs must be >= 1")
        if self.batch_size < 1:
            problems.append("batch_size must be >= 1")
        if not self.learning_rate_multiplier > 0:
            problems.append("learning_rate_multiplier must be > 0")
        if self.lora_r < 1 or self.lora_alpha < 1:
            problems.append("lora_r and lora_alpha must be >= 1")
        if not self.target_modules:
            problems.append("target_modules must not be empty")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def learning_rate(self) -> float:
        return self.base_learning_rate * self.learning_rate_multiplier

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraHyperparameters:
        """Build from stored JSON; unknown keys are an error so a misspelt option is not silently ignored."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        values = dict(data)
        if "target_modules" in values:
            values["target_modules"] = tuple(values["target_modules"])
        return cls(**values)


@dataclass
class TrainingResult:
    status: Literal["succeeded", "cancelled"]
    adapter_dir: Path | None  # PEFT directory (adapter_model.safetensors + adapter_config.json) when succeeded
    steps_completed: int
    total_steps: int
    trained_tokens: int  # real tokens processed over all epochs, the billable unit
    metrics: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    last_checkpoint: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    data_sha256: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, for a job's stored result."""
        data = asdict(self)
        for key in ("adapter_dir", "last_checkpoint"):
            data[key] = str(data[key]) if data[key] is not None else None
        return data


def training_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def training_dtype(device: torch.device) -> torch.dtype:
    # Frozen base weights in bfloat16 halve memory traffic; PEFT keeps the trainable LoRA weights (and so the
    # optimizer) in float32 either way. On CPUs without native bf16 matmuls (no AVX512-BF16/AMX) fp32 is faster.
    if device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if _cpu_has_bf16() else torch.float32


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def epoch_order(*, seed: int, epoch: int, n_examples: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order: list[int] = torch.randperm(n_examples, generator=generator).tolist()
    return order


def _fingerprint(
    *,
    data_sha256: str,
    validation_sha256: str | None,
    hyperparameters: LoraHyperparameters,
    seed: int,
    hold_back: int = 0,
) -> dict[str, Any]:
    fingerprint = {
        "data_sha256": data_sha256,
        "validation_sha256": validation_sha256,
        "hyperparameters": hyperparameters.as_dict(),
        "seed": seed,
    }
    if hold_back:
        fingerprint["hold_back"] = hold_back
    return fingerprint


def held_back_indices(*, seed: int, n_examples: int, hold_back: int) -> list[int]:
    """Which examples a run without a validation file holds back: a pure function of the seed, so a resumed run
    holds back the same ones."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 - 1)
    return sorted(torch.randperm(n_examples, generator=generator)[:hold_back].tolist())


# Exact-match judging needs short answers (a fact, a value); longer references are reported, not judged.
SHORT_ANSWER_TOKENS = 32


def _load_tokenized(
    path: Path, *, tokenizer: Any, max_seq_len: int
) -> tuple[list[list[dict[str, Any]]], list[TokenizedChat]]:
    conversations = read_chat_examples(path)
    chats = [truncate(tokenize_chat(tokenizer=tokenizer, messages=m), max_seq_len) for m in conversations]
    return conversations, chats


def _no_event(kind: str, payload: dict[str, Any]) -> None:
    return None


def _never_stop() -> bool:
    return False


def _rounded(value: float, digits: int = 5) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def train_lora(
    *,
    base_model_dir: Path,
    train_path: Path,
    output_dir: Path,
    hyperparameters: LoraHyperparameters | None = None,
    validation_path: Path | None = None,
    seed: int = 0,
    on_event: EventCallback | None = None,
    should_stop: StopCheck | None = None,
    checkpoint_every_steps: int = 0,
    keep_checkpoints: int = 2,
    resume_from: Path | None = None,
    eval_every_steps: int = 0,
    n_samples: int = 3,
    sample_max_new_tokens: int = 32,
    base_model_name: str | None = None,
    hold_back: int = 0,
    max_exact_match_examples: int = 25,
) -> TrainingResult:
    """Fine-tune a LoRA adapter on `train_path` (chat JSONL, already validated) and write it to
    `output_dir/adapter`.

    Events (`on_event(kind, payload)`, JSON-serialisable payloads): `started`, `validation` (before training, every
    `eval_every_steps` and after), `step` (every optimizer step), `checkpoint`, `cancelled`, `completed`.
    `should_stop` is polled before every step and between micro-batches; when it returns True the run stops within
    one step and returns status "cancelled" (the last checkpoint, if any, stays available for `resume_from`).
    `base_model_name` is written into the adapter config (default: the base model directory's name) so that an
    exported adapter names its base model rather than a path on our machines.

    Without `validation_path`, `hold_back` examples of the training file (chosen by the seed) are held back from
    training and serve as the validation set (event `validation_split`). After training, the base and the
    fine-tuned model answer up to `max_exact_match_examples` validation questions greedily; the exact-match rates
    and the convergence warnings (event `warning`, each with advice) go into the metrics.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    hp = hyperparameters or LoraHyperparameters()
    emit = on_event or _no_event
    stop_requested = should_stop or _never_stop
    base_model_dir = Path(base_model_dir)
    output_dir = Path(output_dir)
    checkpoints_dir = output_dir / CHECKPOINTS_DIR_NAME
    started_at = time.monotonic()

    device = training_device()
    dtype = training_dtype(device)
    tokenizer = load_tokenizer(model_dir=base_model_dir)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # Never longer than the model's context; validation has already rejected longer examples, this is a guard.
    context = json.loads((base_model_dir / "config.json").read_text()).get("max_position_embeddings", hp.max_seq_len)
    max_seq_len = min(hp.max_seq_len, int(context))
    train_conversations, train_chats = _load_tokenized(train_path, tokenizer=tokenizer, max_seq_len=max_seq_len)
    if not train_chats:
        raise ValueError(f"{train_path} holds no training examples")
    valid_conversations: list[list[dict[str, Any]]] = []
    valid_chats: list[TokenizedChat] = []
    if validation_path is not None:
        valid_conversations, valid_chats = _load_tokenized(
            validation_path, tokenizer=tokenizer, max_seq_len=max_seq_len
        )
    held_back = 0
    if validation_path is None and hold_back > 0:
        if hold_back >= len(train_chats):
            raise ValueError(f"cannot hold back {hold_back} of {len(train_chats)} examples")
        chosen = set(held_back_indices(seed=seed, n_examples=len(train_chats), hold_back=hold_back))
        valid_conversations = [c for i, c in enumerate(train_conversations) if i in chosen]
        valid_chats = [c for i, c in enumerate(train_chats) if i in chosen]
        train_conversations = [c for i, c in enumerate(train_conversations) if i not in chosen]
        train_chats = [c for i, c in enumerate(train_chats) if i not in chosen]
        held_back = hold_back
    fingerprint = _fingerprint(
        data_sha256=file_sha256(train_path),
        validation_sha256=file_sha256(validation_path) if validation_path is not None else None,
        hyperparameters=hp,
        seed=seed,
        hold_back=held_back,
    )

    steps_per_epoch = math.ceil(len(train_chats) / hp.batch_size)
    total_steps = steps_per_epoch * hp.n_epochs

    # Seeded before the adapter is created, so LoRA's random A matrices are reproducible too.
    torch.manual_seed(seed)
    random.seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=dtype).to(device)
    base.config.use_cache = False  # the KV cache is for generation; in training it only costs memory
    lora_config = LoraConfig(
        task_type="CAUSAL_LM",
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=list(hp.target_modules),
        bias="none",
    )
    peft_model = get_peft_model(base, lora_config)
    # Set after wrapping (PEFT overwrites it with the local path): an adapter should name its base model, not a
    # directory on our machines.
    peft_model.peft_config["default"].base_model_name_or_path = base_model_name or base_model_dir.name
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=hp.learning_rate, weight_decay=hp.weight_decay)

    def lr_factor(step: int) -> float:
        # Linear warmup then linear decay to zero at the last step.
        if hp.warmup_steps and step < hp.warmup_steps:
            return (step + 1) / hp.warmup_steps
        remaining = total_steps - step
        return max(remaining, 0) / max(total_steps - hp.warmup_steps, 1)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    step = 0
    tokens_processed = 0
    history: list[dict[str, Any]] = []
    if resume_from is not None:
        step, tokens_processed, history = _resume(
            checkpoint_dir=Path(resume_from),
            fingerprint=fingerprint,
            peft_model=peft_model,
            optimizer=optimizer,
            scheduler=scheduler,
            device=device,
        )
        if step > total_steps:
            raise CheckpointError(f"checkpoint step {step} is beyond this run's {total_steps} steps")

    trainable_count = sum(p.numel() for p in trainable)
    emit(
        "started",
        {
            "total_steps": total_steps,
            "steps_per_epoch": steps_per_epoch,
            "examples": len(train_chats),
            "validation_examples": len(valid_chats),
            "trainable_parameters": trainable_count,
            "device": device.type,
            "dtype": str(dtype).removeprefix("torch."),
            "learning_rate": hp.learning_rate,
            "resumed_from_step": step if resume_from is not None else None,
        },
    )

    def run_validation(*, with_adapter: bool, at_step: int) -> LossSums:
        sums = validation_loss(
            peft_model=peft_model,
            chats=valid_chats,
            pad_token_id=pad_token_id,
            max_padded_tokens=hp.max_tokens_per_micro_batch,
            with_adapter=with_adapter,
        )
        emit(
            "validation",
            {
                "step": at_step,
                "model": "fine_tuned" if with_adapter else "base",
                "valid_loss": _rounded(sums.mean_loss),
                "valid_token_accuracy": _rounded(sums.token_accuracy),
            },
        )
        return sums

    metrics: dict[str, Any] = {"device": device.type, "dtype": str(dtype).removeprefix("torch.")}
    if valid_chats:
        metrics["validation_examples"] = len(valid_chats)
        metrics["validation_source"] = "held_back" if held_back else "validation_file"
    if held_back:
        emit(
            "validation_split",
            {"held_back": held_back, "of": held_back + len(train_chats), "training_examples": len(train_chats)},
        )
    if valid_chats:
        before = run_validation(with_adapter=False, at_step=step)
        metrics["valid_loss_before"] = _rounded(before.mean_loss)
        metrics["valid_token_accuracy_before"] = _rounded(before.token_accuracy)

    peft_model.train()
    causal_lm = peft_model.get_base_model()
    last_checkpoint: Path | None = Path(resume_from) if resume_from is not None else None
    loop_started = time.monotonic()
    loop_tokens = 0
    cancelled = False

    while step < total_steps:
        if stop_requested():
            cancelled = True
            break
        epoch, index_in_epoch = divmod(step, steps_per_epoch)
        order = epoch_order(seed=seed, epoch=epoch, n_examples=len(train_chats))
        first = index_in_epoch * hp.batch_size
        batch_chats = [train_chats[i] for i in order[first : first + hp.batch_size]]
        normalizer = sum(chat.n_trainable for chat in batch_chats)
        step_sums = LossSums()
        optimizer.zero_grad(set_to_none=True)
        for group in plan_micro_batches(batch_chats, max_padded_tokens=hp.max_tokens_per_micro_batch):
            if step_sums.tokens and stop_requested():
                cancelled = True
                break
            batch = collate(group, pad_token_id=pad_token_id, device=device)
            loss, sums = assistant_token_loss(causal_lm, batch, normalizer=normalizer)
            loss.backward()
            step_sums.add(sums)
        if cancelled:
            optimizer.zero_grad(set_to_none=True)  # a half-accumulated step is discarded, never applied
            break
        if hp.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(trainable, hp.max_grad_norm)
        learning_rate = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        step += 1
        tokens_processed += step_sums.tokens
        loop_tokens += step_sums.tokens
        record = {
            "step": step,
            "total_steps": total_steps,
            "epoch": round(step / steps_per_epoch, 4),
            "train_loss": _rounded(step_sums.mean_loss),
            "train_token_accuracy": _rounded(step_sums.token_accuracy),
            "learning_rate": learning_rate,
            "tokens_processed": tokens_processed,
            "elapsed_s": round(time.monotonic() - started_at, 3),
            "progress": round(100 * step / total_steps, 2),
        }
        history.append(record)
        emit("step", record)
        if eval_every_steps and valid_chats and step % eval_every_steps == 0 and step < total_steps:
            run_validation(with_adapter=True, at_step=step)
        if checkpoint_every_steps and step % checkpoint_every_steps == 0 and step < total_steps:
            last_checkpoint = save_checkpoint(
                checkpoints_dir=checkpoints_dir,
                peft_model=peft_model,
                optimizer=optimizer,
                scheduler=scheduler,
                meta=CheckpointMeta(
                    step=step, tokens_processed=tokens_processed, fingerprint=fingerprint, history=history
                ),
                keep_last=keep_checkpoints,
            )
            emit("checkpoint", {"step": step, "path": str(last_checkpoint)})

    loop_seconds = time.monotonic() - loop_started
    metrics["train_loop_seconds"] = round(loop_seconds, 3)
    metrics["train_tokens_per_second"] = round(loop_tokens / loop_seconds, 1) if loop_seconds > 0 else None
    if history:
        metrics["final_train_loss"] = history[-1]["train_loss"]
        metrics["final_train_token_accuracy"] = history[-1]["train_token_accuracy"]

    if cancelled:
        emit("cancelled", {"step": step, "last_checkpoint": str(last_checkpoint) if last_checkpoint else None})
        return TrainingResult(
            status="cancelled",
            adapter_dir=None,
            steps_completed=step,
            total_steps=total_steps,
            trained_tokens=tokens_processed,
            metrics=metrics,
            last_checkpoint=last_checkpoint,
            history=history,
            data_sha256=fingerprint["data_sha256"],
        )

    adapter_dir = _save_adapter_atomically(peft_model=peft_model, output_dir=output_dir)
    if valid_chats:
        after = run_validation(with_adapter=True, at_step=step)
        metrics["valid_loss_after"] = _rounded(after.mean_loss)
        metrics["valid_token_accuracy_after"] = _rounded(after.token_accuracy)
    samples: list[dict[str, Any]] = []
    judged: list[dict[str, Any]] = []
    if valid_conversations and max_exact_match_examples > 0:
        # Did it learn? The held-back answers, greedily, from the base and the fine-tuned model.
        asked = valid_conversations[:max_exact_match_examples]
        references = [tokenizer(m[-1]["content"], add_special_tokens=False)["input_ids"] for m in asked]
        longest = max(len(r) for r in references)
        judged = generate_samples(
            peft_model=peft_model, tokenizer=tokenizer, conversations=asked, max_new_tokens=min(longest + 8, 96)
        )
        rates = exact_match_rates(judged)
        metrics["exact_match_examples"] = len(judged)
        metrics["exact_match_base"] = rates["base"]
        metrics["exact_match_fine_tuned"] = rates["fine_tuned"]
        metrics["exact_match_judged"] = sorted(len(r) for r in references)[len(references) // 2] <= SHORT_ANSWER_TOKENS
    if n_samples > 0:
        if judged:
            samples = judged[:n_samples]
        else:
            # Without validation examples, training questions at least show that the data was learnt.
            samples = generate_samples(
                peft_model=peft_model,
                tokenizer=tokenizer,
                conversations=train_conversations[:n_samples],
                max_new_tokens=sample_max_new_tokens,
            )
    warnings = convergence_warnings(
        train_losses=[h["train_loss"] for h in history if h.get("train_loss") is not None],
        valid_accuracy_before=metrics.get("valid_token_accuracy_before"),
        valid_accuracy_after=metrics.get("valid_token_accuracy_after"),
        exact_match_base=metrics.get("exact_match_base") if metrics.get("exact_match_judged") else None,
        exact_match_fine_tuned=metrics.get("exact_match_fine_tuned") if metrics.get("exact_match_judged") else None,
        hyperparameters=hp.as_dict(),
    )
    metrics["converged"] = not warnings
    metrics["warnings"] = [w.as_dict() for w in warnings]
    for warning in warnings:
        emit("warning", warning.as_dict())
    metrics["total_seconds"] = round(time.monotonic() - started_at, 3)
    emit("completed", {"adapter_dir": str(adapter_dir), "trained_tokens": tokens_processed, "metrics": metrics})
    return TrainingResult(
        status="succeeded",
        adapter_dir=adapter_dir,
        steps_completed=step,
        total_steps=total_steps,
        trained_tokens=tokens_processed,
        metrics=metrics,
        samples=samples,
        last_checkpoint=last_checkpoint,
        history=history,
        data_sha256=fingerprint["data_sha256"],
    )


def _resume(
    *,
    checkpoint_dir: Path,
    fingerprint: dict[str, Any],
    peft_model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    device: torch.device,
) -> tuple[int, int, list[dict[str, Any]]]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    meta = read_checkpoint_meta(checkpoint_dir)
    if meta.fingerprint != fingerprint:
        differing = sorted(k for k in fingerprint if fingerprint[k] != meta.fingerprint.get(k))
        raise CheckpointError(
            f"{checkpoint_dir} belongs to a different run (differs in: {', '.join(differing)}); "
            "resuming it would mix two trainings"
        )
    weights = load_file(str(checkpoint_dir / "adapter_model.safetensors"), device=str(device))
    outcome = set_peft_model_state_dict(peft_model, weights)
    if getattr(outcome, "unexpected_keys", None):
        raise CheckpointError(f"{checkpoint_dir} adapter has unexpected weights: {outcome.unexpected_keys[:3]}")
    state = load_training_state(checkpoint_dir, device=device)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    return meta.step, meta.tokens_processed, list(meta.history)


def save_adapter(peft_model: Any, directory: Path) -> None:
    # Embeddings are never trained here, so PEFT need not look up the base model's config to find out whether the
    # vocabulary was resized (a lookup that fails, with a warning, when the base model is named by a hub id offline).
    peft_model.save_pretrained(directory, safe_serialization=True, save_embedding_layers=False)


def _save_adapter_atomically(*, peft_model: Any, output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / ADAPTER_DIR_NAME
    work = Path(tempfile.mkdtemp(prefix=".adapter.", suffix=".tmp", dir=output_dir))
    try:
        save_adapter(peft_model, work)
        # PEFT's boilerplate model card names a path on this machine; the export bundle writes the real card.
        (work / "README.md").unlink(missing_ok=True)
        # vLLM may run as another user and must read the adapter (safetensors files are written 0600).
        work.chmod(0o755)
        for path in work.iterdir():
            path.chmod(0o644)
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final
