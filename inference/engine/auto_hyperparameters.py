"""The values a fine-tuning job uses when the caller leaves them out, like OpenAI's `auto`, and the verdict on
whether a finished training learned.

Measured on the bundled SmolLM2-135M-Instruct over dataset sizes and learning rates (method and table:
benchmarks/results/finetune_defaults.md). The rule, per job:

- `n_epochs`: enough passes that the run sees about `MIN_EXAMPLE_PASSES` examples in all (small datasets get many
  epochs, at most `MAX_EPOCHS`), never fewer than `MIN_EPOCHS`, and no more than `MAX_EXAMPLE_PASSES` in all for
  large ones (at least one epoch);
- `batch_size`: about n/25 rounded to a power of two, from 4 to 32 (small datasets need many optimizer steps);
- `learning_rate_multiplier`: the measured best for LoRA at r=8, alpha=16, scaled by (2r/alpha) so that the update
  scale lr x alpha/r stays the one measured when a caller picks another rank or alpha;
- LoRA: r = min(8, the base model's largest servable rank), alpha = 2r, on every attention and MLP projection of
  the architecture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIN_EXAMPLE_PASSES = 400
MAX_EXAMPLE_PASSES = 25_000
# 3 (OpenAI's default) left 50 facts in 200 examples half learned (13/20 held back); 6 learned them all (20/20).
MIN_EPOCHS = 6
MAX_EPOCHS = 20
MIN_BATCH, MAX_BATCH = 4, 32
# The best multiplier of the sweep (of the base 2e-4) at r=8, alpha=16 on all projections.
LEARNING_RATE_MULTIPLIER_AT_SCALE_2 = 10.0
DEFAULT_RANK = 8

# Every attention and MLP projection, by architecture (`model_type` in the model's config.json).
_LLAMA_LIKE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
}
FALLBACK_TARGET_MODULES = ("q_proj", "v_proj")

# What a caller may set; anything else is refused by name.
TUNABLE = ("n_epochs", "batch_size", "learning_rate_multiplier", "lora_r", "lora_alpha", "target_modules")

__all__ = [
    "TUNABLE",
    "Chosen",
    "ConvergenceWarning",
    "auto_batch_size",
    "auto_epochs",
    "auto_learning_rate_multiplier",
    "choose_hyperparameters",
    "convergence_warnings",
    "default_target_modules",
    "hold_back_count",
]


def auto_epochs(n_examples: int) -> int:
    if n_examples < 1:
        raise ValueError("n_examples must be >= 1")
    small = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_EXAMPLE_PASSES / n_examples)))
    return max(1, min(small, MAX_EXAMPLE_PASSES // n_examples))


def auto_batch_size(n_examples: int) -> int:
    if n_examples < 1:
        raise ValueError("n_examples must be >= 1")
    nearest = int(2 ** round(math.log2(max(n_examples / 25, 1))))
    return max(MIN_BATCH, min(MAX_BATCH, nearest))


def auto_learning_rate_multiplier(*, lora_r: int, lora_alpha: int) -> float:
    return round(LEARNING_RATE_MULTIPLIER_AT_SCALE_2 * (2 * lora_r / lora_alpha), 4)


def default_target_modules(model_type: str) -> tuple[str, ...]:
    return TARGET_MODULES.get(model_type, FALLBACK_TARGET_MODULES)


def hold_back_count(n_examples: int) -> int:
    """How many examples a job without a validation file holds back: a tenth, at least 1 and at most 25, and none
    when fewer than 10 would remain to train on."""
    if n_examples < 11:
        return 0
    return max(1, min(25, n_examples // 10))


@dataclass(frozen=True)
class Chosen:
    """The hyperparameters a job runs with, and which of them were chosen automatically."""

    values: Mapping[str, Any]
    automatic: tuple[str, ...]


def choose_hyperparameters(*, given: Mapping[str, Any], n_examples: int, model_type: str, max_lora_rank: int) -> Chosen:
    """Fill in what the caller left out (absent or "auto"). Raises ValueError for unknown names or bad values."""
    unknown = sorted(set(given) - set(TUNABLE))
    if unknown:
        raise ValueError(f"Unknown hyperparameters: {', '.join(unknown)}.")
    values: dict[str, Any] = {k: v for k, v in given.items() if v != "auto"}
    for name in ("n_epochs", "batch_size", "lora_r", "lora_alpha"):
        if name in values and (isinstance(values[name], bool) or not isinstance(values[name], int)):
            raise ValueError(f"{name} must be an integer or 'auto'.")
    if "learning_rate_multiplier" in values:
        value = values["learning_rate_multiplier"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("learning_rate_multiplier must be a number or 'auto'.")
        values["learning_rate_multiplier"] = float(value)
    if "target_modules" in values:
        modules = values["target_modules"]
        if isinstance(modules, str) or not isinstance(modules, Sequence) or not modules:
            raise ValueError("target_modules must be a non-empty list of module names.")
        if not all(isinstance(m, str) and m for m in modules):
            raise ValueError("target_modules must be a non-empty list of module names.")
        values["target_modules"] = list(modules)
    if values.get("lora_r", 1) > max_lora_rank:
        raise ValueError(f"lora_r {values['lora_r']} exceeds the base model's largest servable rank {max_lora_rank}.")
    automatic = tuple(name for name in TUNABLE if name not in values)
    values.setdefault("lora_r", min(DEFAULT_RANK, max_lora_rank))
    values.setdefault("lora_alpha", 2 * values["lora_r"])
    values.setdefault("target_modules", list(default_target_modules(model_type)))
    values.setdefault("n_epochs", auto_epochs(n_examples))
    values.setdefault("batch_size", auto_batch_size(n_examples))
    values.setdefault(
        "learning_rate_multiplier",
        auto_learning_rate_multiplier(lora_r=values["lora_r"], lora_alpha=values["lora_alpha"]),
    )
    return Chosen(values=values, automatic=automatic)


@dataclass(frozen=True)
class ConvergenceWarning:
    code: str  # loss_flat | accuracy_unchanged | held_back_not_learned
    message: str
    advice: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "advice": self.advice}


def _window_mean(values: Sequence[float], *, head: bool) -> float:
    width = max(1, len(values) // 5)
    part = values[:width] if head else values[-width:]
    return sum(part) / len(part)


def convergence_warnings(
    *,
    train_losses: Sequence[float],
    valid_accuracy_before: float | None,
    valid_accuracy_after: float | None,
    exact_match_base: float | None,
    exact_match_fine_tuned: float | None,
    hyperparameters: Mapping[str, Any],
) -> list[ConvergenceWarning]:
    """Why a finished training may not have learned, each with what to try. Empty when it did.

    - loss flat: the mean of the last fifth of the steps' losses is more than half that of the first fifth;
    - accuracy unchanged: held-back token accuracy rose by less than 2 points and is below 90%;
    - held-back answers not learned: exact matches of the fine-tuned model are below half, or no better than the
      base model's (judged only when the exact-match rate was measured, i.e. short answers).
    """
    epochs = hyperparameters.get("n_epochs")
    multiplier = hyperparameters.get("learning_rate_multiplier")
    more = (
        f"try more epochs (n_epochs {epochs} -> {int(epochs) * 2 if isinstance(epochs, int) else 'more'}) or a "
        f"higher learning_rate_multiplier ({multiplier} -> "
        f"{round(float(multiplier) * 2, 3) if isinstance(multiplier, int | float) else 'more'})"
    )
    warnings: list[ConvergenceWarning] = []
    losses = [x for x in train_losses if x is not None and not math.isnan(x)]
    if len(losses) >= 2:
        first, last = _window_mean(losses, head=True), _window_mean(losses, head=False)
        if last > 0.5 * first:
            warnings.append(
                ConvergenceWarning(
                    "loss_flat",
                    f"Training loss fell by less than half ({first:.3f} -> {last:.3f}).",
                    f"The model did not fit the data: {more}.",
                )
            )
    if (
        valid_accuracy_before is not None
        and valid_accuracy_after is not None
        and valid_accuracy_after - valid_accuracy_before < 0.02
        and valid_accuracy_after < 0.9
    ):
        warnings.append(
            ConvergenceWarning(
                "accuracy_unchanged",
                f"Held-back token accuracy did not improve ({valid_accuracy_before:.3f} -> "
                f"{valid_accuracy_after:.3f}).",
                f"{more[0].upper()}{more[1:]}; check that the held-back examples resemble the training ones.",
            )
        )
    if exact_match_fine_tuned is not None:
        base = exact_match_base or 0.0
        if exact_match_fine_tuned < 0.5 or exact_match_fine_tuned <= base:
            warnings.append(
                ConvergenceWarning(
                    "held_back_not_learned",
                    f"The fine-tuned model gave {exact_match_fine_tuned:.0%} of the held-back answers exactly "
                    f"(the base model {base:.0%}).",
                    f"{more[0].upper()}{more[1:]}; if the training loss is low, the model learned the phrasing "
                    "rather than the facts: add more ways of asking each question.",
                )
            )
    return warnings
