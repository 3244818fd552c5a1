"""LoRA fine-tuning throughput: our training engine against Hugging Face's `transformers.Trainer`.

Both sides train the same LoRA (r=8, alpha=16, q_proj and v_proj) on the same base model (SmolLM2-135M-Instruct,
converted from the bundled GGUF), in the same process, on the same tokenized chat examples with the same
assistant-only labels, batch size, number of optimizer steps (whole epochs, so both see every example equally
often), learning-rate schedule and base-weight dtype. Throughput is real (non-padding) tokens processed per second
of training loop, model loading excluded on both sides; it is given per wall-clock second and per CPU-second of this
process, because the machines this runs on are shared: other processes' load stretches wall time (and differs from
one side's run to the other's), while CPU time measures the work each side does. Sides alternate over the repeats
and medians are reported.

    .venv/bin/python benchmarks/finetune_throughput.py --examples 48 --epochs 1 --repeats 2
"""

from __future__ import annotations

import os

# Before torch is imported (see inference/engine/__init__.py): both sides get the same OpenMP behaviour.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from inference.engine.base_model import convert_smollm2  # noqa: E402
from inference.engine.chat_tokens import IGNORE_INDEX, tokenize_chat  # noqa: E402
from inference.engine.lora_training import LoraHyperparameters, train_lora, training_dtype  # noqa: E402

MACHINES = ["CNC lathe L-200", "5-axis mill M5", "press brake PB-90", "injection moulder IM-350", "laser cutter LC-4"]
PARTS = ["spindle bearing", "coolant pump", "hydraulic seal", "servo motor", "tool changer", "ball screw"]
SYMPTOMS = ["vibrates above 6000 rpm", "overheats after an hour", "reports alarm E-17", "loses position",
            "leaks oil at the base", "makes a grinding noise"]  # fmt: skip


def synthetic_factory_chats(*, n: int, seed: int) -> list[dict[str, Any]]:
    """Maintenance Q&A of varied length, like a factory's support log: short answers and multi-step procedures."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        machine, part, symptom = rng.choice(MACHINES), rng.choice(PARTS), rng.choice(SYMPTOMS)
        steps = [
            f"Step {k + 1}: check the {rng.choice(PARTS)} and record reading {rng.randint(10, 99)} on the sheet."
            for k in range(rng.choice([0, 1, 2, 4, 8]))
        ]
        answer = f"The {part} is the likely cause; replace it within {rng.randint(2, 40)} operating hours."
        messages = [{"role": "system", "content": "You are the maintenance assistant of plant 3."}] if i % 3 else []
        messages += [
            {"role": "user", "content": f"Our {machine} {symptom}. What should we do?"},
            {"role": "assistant", "content": " ".join([answer, *steps])},
        ]
        records.append({"messages": messages})
    return records


@dataclass(frozen=True)
class Measurement:
    side: str
    repeat: int
    steps: int
    tokens: int
    loop_seconds: float
    tokens_per_second: float
    cpu_seconds: float
    tokens_per_cpu_second: float
    final_loss: float


class LoopClock:
    """Wall and CPU time of a training loop. CPU time (all threads of this process) is the steadier figure on a
    shared machine: other tenants' load stretches wall time but not the work our process does."""

    def __init__(self) -> None:
        self.wall = self.cpu = (0.0, 0.0)

    def begin(self) -> None:
        self.wall = (time.monotonic(), 0.0)
        self.cpu = (time.process_time(), 0.0)

    def end(self) -> None:
        self.wall = (self.wall[0], time.monotonic())
        self.cpu = (self.cpu[0], time.process_time())

    @property
    def wall_seconds(self) -> float:
        return self.wall[1] - self.wall[0]

    @property
    def cpu_seconds(self) -> float:
        return self.cpu[1] - self.cpu[0]


def measurement(*, side: str, repeat: int, steps: int, tokens: int, clock: LoopClock, final_loss: float) -> Measurement:
    return Measurement(side=side, repeat=repeat, steps=steps, tokens=tokens, loop_seconds=clock.wall_seconds,
                       tokens_per_second=tokens / clock.wall_seconds, cpu_seconds=clock.cpu_seconds,
                       tokens_per_cpu_second=tokens / clock.cpu_seconds, final_loss=final_loss)  # fmt: skip


def run_ours(*, model_dir: Path, train_path: Path, hp: LoraHyperparameters, seed: int, repeat: int) -> Measurement:
    clock = LoopClock()

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        # "started" is emitted after model loading, right before the first step; the last "step" ends the loop.
        if kind == "started":
            clock.begin()
        elif kind == "step":
            clock.end()

    with tempfile.TemporaryDirectory() as out:
        result = train_lora(base_model_dir=model_dir, train_path=train_path, output_dir=Path(out), hyperparameters=hp,
                            seed=seed, n_samples=0, on_event=on_event)  # fmt: skip
    return measurement(
        side="ours (inference.engine.train_lora)",
        repeat=repeat,
        steps=result.steps_completed,
        tokens=result.trained_tokens,
        clock=clock,
        final_loss=result.history[-1]["train_loss"],
    )


def run_trainer(*, model_dir: Path, records: list[dict[str, Any]], hp: LoraHyperparameters, seed: int,
                repeat: int) -> Measurement:  # fmt: skip
    """The peer: the standard Hugging Face recipe (Trainer + PEFT), configured to match our side."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = []
    for record in records:
        chat = tokenize_chat(tokenizer=tokenizer, messages=record["messages"])
        examples.append({"input_ids": chat.input_ids, "labels": chat.labels()})
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    processed = {"tokens": 0}

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(example["input_ids"]) for example in batch)
        processed["tokens"] += sum(len(example["input_ids"]) for example in batch)
        pad = width - torch.tensor([len(e["input_ids"]) for e in batch])
        return {
            "input_ids": torch.tensor([e["input_ids"] + [pad_id] * int(p) for e, p in zip(batch, pad, strict=True)]),
            "labels": torch.tensor([e["labels"] + [IGNORE_INDEX] * int(p) for e, p in zip(batch, pad, strict=True)]),
            "attention_mask": torch.tensor([[1] * (width - int(p)) + [0] * int(p) for p in pad]),
        }

    clock = LoopClock()

    class LoopTimer(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.begin()

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.end()

    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=training_dtype(device))
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=hp.lora_r, lora_alpha=hp.lora_alpha,
                                             lora_dropout=hp.lora_dropout, target_modules=list(hp.target_modules),
                                             bias="none"))  # fmt: skip
    steps = math.ceil(len(examples) / hp.batch_size) * hp.n_epochs
    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=hp.batch_size,
            max_steps=steps,
            learning_rate=hp.learning_rate,
            lr_scheduler_type="linear",
            warmup_steps=hp.warmup_steps,
            weight_decay=hp.weight_decay,
            max_grad_norm=hp.max_grad_norm,
            optim="adamw_torch",
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            dataloader_num_workers=0,
            remove_unused_columns=False,
            use_cpu=device.type == "cpu",
            seed=seed,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=arguments, train_dataset=examples, data_collator=collate,
                          callbacks=[LoopTimer()])  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # its per-step dicts would bury the table
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return measurement(
        side="peer (transformers.Trainer + PEFT)",
        repeat=repeat,
        steps=trainer.state.global_step,
        tokens=processed["tokens"],
        clock=clock,
        final_loss=losses[-1] if losses else float("nan"),
    )


def markdown(rows: list[Measurement]) -> str:
    columns = ["side", "repeat", "steps", "tokens", "loop wall s", "tokens/s (wall)", "loop CPU s",
               "tokens per CPU-s", "final loss"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row.side, row.repeat, row.steps, row.tokens, f"{row.loop_seconds:.1f}", f"{row.tokens_per_second:.1f}",
                 f"{row.cpu_seconds:.1f}", f"{row.tokens_per_cpu_second:.1f}", f"{row.final_loss:.3f}"]  # fmt: skip
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, alternating ours and peer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, help="base model directory (default: the converted SmolLM2)")
    parser.add_argument("--out", type=Path, help="write results here: .json for data, anything else for markdown")
    args = parser.parse_args()

    model_dir = args.model_dir or convert_smollm2(
        target_dir=Path(os.environ.get("MODEL_STORE", REPO_ROOT / ".cache" / "models")) / "smollm2-135m-instruct"
    )
    hp = LoraHyperparameters(n_epochs=args.epochs, batch_size=args.batch_size)
    records = synthetic_factory_chats(n=args.examples, seed=args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = str(training_dtype(device)).removeprefix("torch.")
    print(f"model {model_dir.name}, device {device.type}, base dtype {dtype}, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at start, "
          f"{args.examples} examples x {args.epochs} epoch(s), batch {args.batch_size}, "
          f"LoRA r={hp.lora_r} on {','.join(hp.target_modules)}", flush=True)  # fmt: skip

    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory() as data_dir:
        train_path = Path(data_dir) / "train.jsonl"
        train_path.write_text("".join(json.dumps(r) + "\n" for r in records))
        for repeat in range(1, args.repeats + 1):
            # Alternate which side goes first, so drift in the machine's load does not favour one side.
            sides = ["ours", "peer"] if repeat % 2 else ["peer", "ours"]
            for side in sides:
                if side == "ours":
                    row = run_ours(model_dir=model_dir, train_path=train_path, hp=hp, seed=args.seed, repeat=repeat)
                else:
                    row = run_trainer(model_dir=model_dir, records=records, hp=hp, seed=args.seed, repeat=repeat)
                rows.append(row)
                print(f"  {row.side} repeat {row.repeat}: {row.tokens_per_second:.1f} tokens/s", flush=True)

    def median(side: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in rows if r.side.startswith(side))

    summary = {
        "ours_tokens_per_s": median("ours", "tokens_per_second"),
        "peer_tokens_per_s": median("peer", "tokens_per_second"),
        "ours_tokens_per_cpu_s": median("ours", "tokens_per_cpu_second"),
        "peer_tokens_per_cpu_s": median("peer", "tokens_per_cpu_second"),
        "load_average_at_end": round(os.getloadavg()[0], 1),
    }
    summary["ratio_wall"] = summary["ours_tokens_per_s"] / summary["peer_tokens_per_s"]
    summary["ratio_cpu"] = summary["ours_tokens_per_cpu_s"] / summary["peer_tokens_per_cpu_s"]
    report = "\n".join([
        markdown(rows),
        "",
        f"- median tokens/s (wall): ours {summary['ours_tokens_per_s']:.1f}, "
        f"transformers.Trainer {summary['peer_tokens_per_s']:.1f}; ratio ours/peer {summary['ratio_wall']:.2f}",
        f"- median tokens per CPU-second: ours {summary['ours_tokens_per_cpu_s']:.1f}, "
        f"transformers.Trainer {summary['peer_tokens_per_cpu_s']:.1f}; ratio ours/peer {summary['ratio_cpu']:.2f}",
        f"- load average {summary['load_average_at_end']} at the end (this machine has {os.cpu_count()} cores): "
        "wall figures are only comparable within one run",
    ])  # fmt: skip
    print("\n" + report)
    if args.out:
        if args.out.suffix == ".json":
            args.out.write_text(json.dumps({"rows": [asdict(r) for r in rows], "summary": summary}, indent=2))
        else:
            args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
