"""Training checkpoints: everything needed for a killed training to continue exactly where it left off.

A checkpoint directory `step-N` holds the adapter (PEFT format, so a checkpoint can also be served or exported as
is), `training_state.pt` (optimizer, scheduler, RNG states) and `checkpoint.json` (step, counters and the
fingerprint of the run). It is written under a temporary name and renamed, so a directory named `step-N` is always
complete: a worker killed mid-write leaves only a `.tmp` directory, which the next save sweeps away.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)$")
STATE_FILE = "training_state.pt"
META_FILE = "checkpoint.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, or belongs to a different training run."""


@dataclass(frozen=True)
class CheckpointMeta:
    step: int
    tokens_processed: int
    fingerprint: dict[str, Any]
    history: list[dict[str, Any]]  # per-step metrics so far, so a resumed run reports the whole curve

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "tokens_processed": self.tokens_processed,
            "fingerprint": self.fingerprint,
            "history": self.history,
        }


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    *,
    checkpoints_dir: Path,
    peft_model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    meta: CheckpointMeta,
    keep_last: int,
) -> Path:
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / f"step-{meta.step}"
    work = Path(tempfile.mkdtemp(prefix=f".step-{meta.step}.", suffix=".tmp", dir=checkpoints_dir))
    try:
        peft_model.save_pretrained(work, safe_serialization=True, save_embedding_layers=False)
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
            work / STATE_FILE,
        )
        (work / META_FILE).write_text(json.dumps(meta.as_json(), indent=1) + "\n")
        if final.exists():  # re-reached after resuming from an earlier checkpoint: the new one wins
            shutil.rmtree(final)
        os.rename(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    prune_checkpoints(checkpoints_dir=checkpoints_dir, keep_last=keep_last)
    return final


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in checkpoints_dir.iterdir()
        if (match := CHECKPOINT_PATTERN.match(path.name)) and path.is_dir()
    ]
    return [path for _, path in sorted(found)]


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The checkpoint a restarted worker should resume from, if any."""
    checkpoints = list_checkpoints(checkpoints_dir)
    return checkpoints[-1] if checkpoints else None


def prune_checkpoints(*, checkpoints_dir: Path, keep_last: int) -> None:
    for path in list_checkpoints(checkpoints_dir)[: -max(keep_last, 1)]:
        shutil.rmtree(path, ignore_errors=True)
    # Leftovers of saves interrupted by a kill.
    for path in checkpoints_dir.glob(".step-*.tmp"):
        shutil.rmtree(path, ignore_errors=True)


def read_checkpoint_meta(checkpoint_dir: Path) -> CheckpointMeta:
    try:
        raw = json.loads((checkpoint_dir / META_FILE).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{checkpoint_dir} is not a training checkpoint (no {META_FILE})") from None
    return CheckpointMeta(
        step=int(raw["step"]),
        tokens_processed=int(raw["tokens_processed"]),
        fingerprint=dict(raw["fingerprint"]),
        history=list(raw.get("history", [])),
    )


def load_training_state(checkpoint_dir: Path, *, device: torch.device) -> dict[str, Any]:
    path = checkpoint_dir / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{checkpoint_dir} has no {STATE_FILE}")
    # weights_only: a checkpoint is data; nothing in it should be able to run code when loaded.
    state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    return state
