"""Measuring an adapter: validation loss and side-by-side answers of the base model and the fine-tuned model."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from inference.engine.causal_lm_loss import LossSums, assistant_token_loss, collate, plan_micro_batches
from inference.engine.chat_tokens import TokenizedChat, render_prompt


def validation_loss(
    *, peft_model: Any, chats: Sequence[TokenizedChat], pad_token_id: int, max_padded_tokens: int, with_adapter: bool
) -> LossSums:
    """Token-weighted assistant loss over `chats`; `with_adapter=False` measures the untouched base model."""
    sums = LossSums()
    if not chats:
        return sums
    device = next(peft_model.parameters()).device
    was_training = peft_model.training
    peft_model.eval()
    try:
        with torch.no_grad(), _adapter_enabled(peft_model, enabled=with_adapter):
            causal_lm = peft_model.get_base_model()
            for group in plan_micro_batches(chats, max_padded_tokens=max_padded_tokens):
                batch = collate(group, pad_token_id=pad_token_id, device=device)
                _, group_sums = assistant_token_loss(causal_lm, batch, normalizer=1)
                sums.add(group_sums)
    finally:
        peft_model.train(was_training)
    return sums


def _adapter_enabled(peft_model: Any, *, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext() if enabled else peft_model.disable_adapter()


def _prompt_and_reference(messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The conversation before the last assistant reply, and that reply (what the model should say)."""
    last = max(i for i, message in enumerate(messages) if message["role"] == "assistant")
    return [dict(m) for m in messages[:last]], str(messages[last]["content"])


def generate_samples(
    *,
    peft_model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[dict[str, Any]]],
    max_new_tokens: int = 32,
) -> list[dict[str, Any]]:
    """Greedy answers of the base model and of the fine-tuned model to each conversation's last question.

    Greedy, so the comparison shown to the tenant is reproducible rather than a lucky or unlucky sample.
    """
    device = next(peft_model.parameters()).device
    was_training = peft_model.training
    peft_model.eval()
    samples: list[dict[str, Any]] = []
    try:
        for messages in conversations:
            prompt_messages, reference = _prompt_and_reference(messages)
            prompt = render_prompt(tokenizer=tokenizer, messages=prompt_messages)
            encoded = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(device)
            answers: dict[str, str] = {}
            for label, enabled in (("base", False), ("fine_tuned", True)):
                with torch.no_grad(), _adapter_enabled(peft_model, enabled=enabled):
                    output = peft_model.generate(
                        **encoded,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                    )
                new_tokens = output[0, encoded["input_ids"].shape[1] :]
                answers[label] = tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
            samples.append(
                {
                    "prompt": prompt_messages,
                    "expected": reference,
                    "base": answers["base"],
                    "fine_tuned": answers["fine_tuned"],
                }
            )
    finally:
        peft_model.train(was_training)
    return samples


def normalise_answer(text: str) -> str:
    """Case, spacing and a final full stop or exclamation mark do not count against an exact match."""
    return " ".join(text.strip().rstrip(".!").casefold().split())


def exact_match_rates(samples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The share of `generate_samples` answers equal to the expected one (normalised), per model."""
    if not samples:
        return {}
    return {
        label: round(
            sum(normalise_answer(s[label]) == normalise_answer(s["expected"]) for s in samples) / len(samples), 4
        )
        for label in ("base", "fine_tuned")
    }
