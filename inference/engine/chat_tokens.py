"""Turn a chat conversation into model tokens and a mask of the tokens the model must learn.

Validation (token counts, limits) and training (inputs, labels) both call `tokenize_chat`, so the number a tenant is
told at upload time is exactly the number of tokens training processes and bills.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100  # the label value PyTorch's cross-entropy skips


class ChatTemplateError(ValueError):
    """The tokenizer's chat template cannot be used to locate assistant turns."""


@dataclass(frozen=True)
class TokenizedChat:
    input_ids: list[int]
    # True where the token belongs to an assistant reply the model is trained to produce (including the
    # end-of-turn marker, so the fine-tuned model learns to stop).
    trainable: list[bool]

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_trainable(self) -> int:
        return sum(self.trainable)

    def labels(self) -> list[int]:
        return [tok if keep else IGNORE_INDEX for tok, keep in zip(self.input_ids, self.trainable, strict=True)]


def load_tokenizer(*, model_dir: Path) -> Any:
    """The tokenizer (with its chat template) of a local model directory; never reaches the network."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


def _render(tokenizer: Any, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool) -> str:
    # Only role and content reach the template: `weight` is our metadata, not something to render.
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    rendered: str = tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)
    return rendered


def render_prompt(*, tokenizer: Any, messages: Sequence[dict[str, Any]]) -> str:
    """The text a model continues to answer `messages` (the conversation plus the assistant turn header)."""
    return _render(tokenizer, messages, add_generation_prompt=True)


def tokenize_chat(*, tokenizer: Any, messages: Sequence[dict[str, Any]]) -> TokenizedChat:
    """Tokenize a conversation with the model's chat template and mark the assistant tokens to train on.

    Assistant spans are found in text space: the reply to train on is what the template adds between the
    conversation-so-far-plus-generation-prompt and the conversation including that reply. This needs the template to
    be prefix-stable (true of ChatML-style templates such as SmolLM2's, Llama 3's, Qwen's); we check it rather than
    assume it, because a silently misaligned mask trains the model on the wrong tokens.
    Assistant messages with `weight` 0 are context only, as in OpenAI's format.
    """
    full_text = _render(tokenizer, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("weight", 1) == 0:
            continue
        before = _render(tokenizer, messages[:index], add_generation_prompt=True) if index else ""
        through = _render(tokenizer, messages[: index + 1], add_generation_prompt=False)
        if not full_text.startswith(through) or not through.startswith(before):
            raise ChatTemplateError(
                "the chat template is not prefix-stable, so assistant turns cannot be located for loss masking"
            )
        spans.append((len(before), len(through)))

    # The template already contains the special tokens it wants (e.g. <|im_start|>), so none are added here.
    encoded = tokenizer(full_text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids: list[int] = list(encoded["input_ids"])
    trainable: list[bool] = []
    span_index = 0
    for start, end in encoded["offset_mapping"]:
        while span_index < len(spans) and spans[span_index][1] <= start:
            span_index += 1
        inside = span_index < len(spans) and spans[span_index][0] <= start < spans[span_index][1]
        # Zero-width offsets happen for some special tokens; they count as inside if they sit in a span.
        trainable.append(inside and end >= start)
    return TokenizedChat(input_ids=input_ids, trainable=trainable)
