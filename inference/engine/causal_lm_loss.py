"""Batching and the assistant-token loss shared by training and validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from inference.engine.chat_tokens import IGNORE_INDEX, TokenizedChat


@dataclass
class LossSums:
    """Sums rather than means, so micro-batches and validation batches combine exactly."""

    loss_sum: float = 0.0
    correct: int = 0
    label_tokens: int = 0
    tokens: int = 0  # every real (non-padding) token processed, the unit training is billed and measured in

    def add(self, other: LossSums) -> None:
        self.loss_sum += other.loss_sum
        self.correct += other.correct
        self.label_tokens += other.label_tokens
        self.tokens += other.tokens

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / self.label_tokens if self.label_tokens else float("nan")

    @property
    def token_accuracy(self) -> float:
        return self.correct / self.label_tokens if self.label_tokens else float("nan")


def truncate(chat: TokenizedChat, max_len: int) -> TokenizedChat:
    if chat.n_tokens <= max_len:
        return chat
    return TokenizedChat(input_ids=chat.input_ids[:max_len], trainable=chat.trainable[:max_len])


def plan_micro_batches(chats: Sequence[TokenizedChat], *, max_padded_tokens: int) -> list[list[TokenizedChat]]:
    """Split one optimizer batch into micro-batches whose padded size stays under `max_padded_tokens`.

    Sorting by length first groups similar lengths, so far less compute is spent on padding than when a whole batch
    is padded to its longest example; the gradient is the same because losses are summed, not averaged, per
    micro-batch.
    """
    ordered = sorted(chats, key=lambda chat: chat.n_tokens)
    groups: list[list[TokenizedChat]] = []
    current: list[TokenizedChat] = []
    for chat in ordered:
        longest = max([chat.n_tokens] + [c.n_tokens for c in current])
        if current and longest * (len(current) + 1) > max_padded_tokens:
            groups.append(current)
            current = []
        current.append(chat)
    if current:
        groups.append(current)
    return groups


def collate(chats: Sequence[TokenizedChat], *, pad_token_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask and labels (IGNORE_INDEX outside assistant replies)."""
    width = max(chat.n_tokens for chat in chats)
    input_ids = torch.full((len(chats), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(chats), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(chats), width), dtype=torch.long)
    for row, chat in enumerate(chats):
        n = chat.n_tokens
        input_ids[row, :n] = torch.tensor(chat.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(chat.labels(), dtype=torch.long)
        attention_mask[row, :n] = 1
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": attention_mask.to(device),
        "labels": labels.to(device),
    }


def assistant_token_loss(
    causal_lm: Any, batch: dict[str, torch.Tensor], *, normalizer: int
) -> tuple[torch.Tensor, LossSums]:
    """Cross-entropy of the assistant tokens of `batch`, divided by `normalizer` (the label count of the whole
    optimizer batch), plus the raw sums for logging.

    The output projection runs only at positions that predict an assistant token: with a 49k vocabulary, projecting
    every prompt position would spend a large share of the compute on logits nobody uses.
    """
    decoder = causal_lm.get_decoder()
    lm_head = causal_lm.get_output_embeddings()
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    # Position t predicts token t+1.
    targets = batch["labels"][:, 1:]
    positions = targets != IGNORE_INDEX
    selected_hidden = hidden[:, :-1][positions]
    selected_targets = targets[positions]
    logits = lm_head(selected_hidden).float()
    loss_sum = torch.nn.functional.cross_entropy(logits, selected_targets, reduction="sum")
    with torch.no_grad():
        correct = int((logits.argmax(dim=-1) == selected_targets).sum())
    sums = LossSums(
        loss_sum=float(loss_sum.detach()),
        correct=correct,
        label_tokens=int(selected_targets.numel()),
        tokens=int(batch["attention_mask"].sum()),
    )
    return loss_sum / max(normalizer, 1), sums
