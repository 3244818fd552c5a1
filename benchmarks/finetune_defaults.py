"""How the automatic fine-tuning defaults were found: LoRA on the bundled SmolLM2-135M-Instruct, swept over
dataset sizes and learning rates, judged by loss and by recall of held-back phrasings.

Protocol. Datasets are invented plant facts (benchmarks/_facts.py) the base model cannot know. Each fact is trained
in phrasings 0-3 and asked, held back, in phrasings 4 and 5 (never trained). Sizes: 20 examples (5 facts x 4),
60 (5 facts x 4 phrasings x 3, the issue's shape: each fact asked 12 times), 200 (50 facts x 4). For each size
and learning-rate multiplier the run trains with the epochs and batch size the automatic rule picks
(inference.engine.auto_hyperparameters), LoRA r=8, alpha=16 on all attention and MLP projections, seed 0, then
answers up to 20 held-back questions greedily; recall is the exact-match rate (case, spacing and a final full
stop normalised). One run per cell (2 shared CPU cores); wall time includes model loading and evaluation.

    .venv/bin/python -m benchmarks finetune_defaults -- --sizes 60 20 200 --multipliers 2.5 5 10
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._facts import plant_facts, recalled  # noqa: E402
from inference.engine.base_model import convert_smollm2  # noqa: E402
from inference.engine.lora_training import LoraHyperparameters, train_lora  # noqa: E402

SHAPES = {20: (5, 1), 60: (5, 3), 200: (50, 1), 400: (100, 1)}  # size -> (facts, repeats of the 4 phrasings)
ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def auto_rule(n: int) -> tuple[int, int]:
    try:
        from inference.engine.auto_hyperparameters import auto_batch_size, auto_epochs

        return auto_epochs(n), auto_batch_size(n)
    except ImportError:  # before the rule existed: the rule under test, written out
        import math

        return max(1, min(20, math.ceil(400 / n))), 4 if n < 100 else 8


def run_cell(*, model_dir: Path, size: int, multiplier: float, modules: tuple[str, ...], epochs: int | None,
             out: Path) -> dict[str, Any]:  # fmt: skip
    n_facts, repeats = SHAPES[size]
    facts = plant_facts(n_facts)
    train = [f.example(t) for _ in range(repeats) for f in facts for t in range(4)]
    asked = [(f, t) for f in facts[:10] for t in (4, 5)]
    work = Path(tempfile.mkdtemp(dir=out))
    (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (work / "valid.jsonl").write_text("".join(json.dumps(f.example(t)) + "\n" for f, t in asked))
    auto_epochs, batch = auto_rule(size)
    hp = LoraHyperparameters(n_epochs=epochs or auto_epochs, batch_size=batch, learning_rate_multiplier=multiplier,
                             target_modules=modules, lora_r=8, lora_alpha=16)  # fmt: skip
    started = time.monotonic()
    result = train_lora(base_model_dir=model_dir, train_path=work / "train.jsonl", validation_path=work / "valid.jsonl",
                        output_dir=work / "run", hyperparameters=hp, n_samples=len(asked),
                        sample_max_new_tokens=10)  # fmt: skip
    wall = time.monotonic() - started
    losses = [h["train_loss"] for h in result.history]
    tuned = sum(recalled(s["fine_tuned"], f) for s, (f, _) in zip(result.samples, asked, strict=True))
    base = sum(recalled(s["base"], f) for s, (f, _) in zip(result.samples, asked, strict=True))
    return {
        "size": size, "multiplier": multiplier, "modules": len(modules), "epochs": hp.n_epochs, "batch": batch,
        "steps": result.steps_completed, "loss_first": losses[0], "loss_mid": losses[len(losses) // 2],
        "loss_last": losses[-1], "valid_before": result.metrics.get("valid_loss_before"),
        "valid_after": result.metrics.get("valid_loss_after"), "held_back_recall": tuned / len(asked),
        "base_recall": base / len(asked), "wall_s": round(wall, 1),
        "tokens_per_s": result.metrics.get("train_tokens_per_second"),
        "example": result.samples[0]["fine_tuned"] if result.samples else "",
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 20, 200])
    parser.add_argument("--multipliers", type=float, nargs="+", default=[2.5, 5.0, 10.0])
    parser.add_argument("--qv-only", action="store_true", help="LoRA on q_proj and v_proj only (the old default)")
    parser.add_argument("--epochs", type=int, default=None, help="override the automatic epochs")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".cache" / "bench-finetune-defaults.jsonl")
    args = parser.parse_args(argv)
    model_dir = convert_smollm2(target_dir=REPO_ROOT / ".cache" / "models" / "smollm2-135m-instruct")
    modules = ("q_proj", "v_proj") if args.qv_only else ALL_PROJECTIONS
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            for multiplier in args.multipliers:
                row = run_cell(model_dir=model_dir, size=size, multiplier=multiplier, modules=modules,
                               epochs=args.epochs, out=Path(scratch))  # fmt: skip
                print(json.dumps(row), flush=True)
                with args.out.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
