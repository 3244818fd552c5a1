"""LoRA training on the real SmolLM2 model: learning, serving the result in vLLM, cancellation and exact resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from inference.engine.lora_checkpoints import CheckpointError, list_checkpoints
from inference.engine.lora_training import LoraHyperparameters, train_lora
from inference.engine.training_data import TrainingDataLimits, validate_training_file
from inference.engine.vllm_server import VllmAdminClient, VllmApiError

# A tiny, fast setting for the control-flow tests (cancellation, resume): 6 examples, batch 2, 3 steps an epoch.
TINY = LoraHyperparameters(n_epochs=2, batch_size=2, learning_rate_multiplier=10.0)


@pytest.fixture(scope="module")
def tiny_train_file(tmp_path_factory: pytest.TempPathFactory, write_jsonl: Any) -> Path:
    records = [
        {"messages": [{"role": "user", "content": f"Code for line {i}?"}, {"role": "assistant", "content": f"L{i}"}]}
        for i in range(6)
    ]
    return write_jsonl(tmp_path_factory.mktemp("tiny") / "train.jsonl", records)


def test_training_learns_the_fact(fact_training: dict[str, Any], base_model_dir: Path, base_tokenizer: Any,
                                  fact_training_files: dict[str, Path], memorised_fact: Any) -> None:  # fmt: skip
    """Catches: a loop that does not learn (loss masked wrong, optimizer not stepping, LR schedule at zero), events
    missing or not JSON-serialisable, and a trained-token count that disagrees with what validation told the
    tenant (the billed figure)."""
    result = fact_training["result"]
    events = fact_training["events"]
    hp = memorised_fact.hyperparameters

    assert result.status == "succeeded"
    assert result.steps_completed == result.total_steps == hp.n_epochs * 2  # 8 examples, batch 4
    losses = [record["train_loss"] for record in result.history]
    assert losses[-1] < losses[0] / 5, losses
    assert result.history[-1]["train_token_accuracy"] >= 0.9
    assert result.metrics["valid_loss_after"] < result.metrics["valid_loss_before"] / 5

    step_events = [payload for kind, payload in events if kind == "step"]
    assert [payload["step"] for payload in step_events] == list(range(1, result.total_steps + 1))
    assert step_events[-1]["progress"] == 100.0
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert [p["model"] for k, p in events if k == "validation"] == ["base", "fine_tuned"]

    report = validate_training_file(
        path=fact_training_files["train"], tokenizer=base_tokenizer, limits=TrainingDataLimits(min_examples=1)
    )
    assert result.trained_tokens == report.total_tokens * hp.n_epochs

    adapter_config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    # The automatic LoRA: rank 8 on every attention and MLP projection.
    assert adapter_config["r"] == 8 and sorted(adapter_config["target_modules"]) == sorted(hp.target_modules)
    assert len(hp.target_modules) == 7 and hp.learning_rate_multiplier < 20
    assert adapter_config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"

    [sample] = result.samples
    assert memorised_fact.key in sample["fine_tuned"] and memorised_fact.key not in sample["base"]
    # Events and the result are stored as JSON by the job system.
    json.dumps(events)
    assert json.loads(json.dumps(result.as_dict()))["adapter_dir"] == str(result.adapter_dir)


def test_vllm_serves_the_trained_adapter_at_runtime(fact_training: dict[str, Any], vllm_admin: VllmAdminClient,
                                                     memorised_fact: Any) -> None:  # fmt: skip
    """Catches: an adapter vLLM cannot load (format, dtype, rank), a training that does not transfer to the serving
    engine, and runtime LoRA loading/unloading not working through the admin client."""
    adapter_dir = fact_training["result"].adapter_dir
    question = memorised_fact.prompt(memorised_fact.questions[0])

    vllm_admin.load_lora("x9-fact", adapter_dir)
    try:
        assert "x9-fact" in vllm_admin.model_ids()
        tuned = vllm_admin.chat(model="x9-fact", messages=question, max_tokens=24)
        base = vllm_admin.chat(model="smollm2-135m-instruct", messages=question, max_tokens=24)
    finally:
        vllm_admin.unload_lora("x9-fact")

    tuned_text = tuned["choices"][0]["message"]["content"]
    base_text = base["choices"][0]["message"]["content"]
    assert memorised_fact.key in tuned_text, tuned_text
    assert memorised_fact.key not in base_text, base_text
    assert tuned["usage"]["completion_tokens"] > 0
    assert "x9-fact" not in vllm_admin.model_ids()
    with pytest.raises(VllmApiError) as caught:
        vllm_admin.chat(model="x9-fact", messages=question, max_tokens=4)
    assert caught.value.status_code == 404


def test_cancellation_stops_within_a_step(base_model_dir: Path, tiny_train_file: Path, tmp_path: Path) -> None:
    """Counts steps, not seconds. Catches: should_stop not being polled every step (a cancelled job keeps a worker
    busy for the whole run), a cancelled run producing an adapter, or a half-accumulated step being applied."""
    steps_seen: list[int] = []
    flipped_at: list[int] = []

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "step":
            steps_seen.append(payload["step"])
            if payload["step"] == 2:
                flipped_at.append(payload["step"])

    result = train_lora(
        base_model_dir=base_model_dir,
        train_path=tiny_train_file,
        output_dir=tmp_path / "run",
        hyperparameters=LoraHyperparameters(n_epochs=3, batch_size=2, learning_rate_multiplier=10.0),
        on_event=on_event,
        should_stop=lambda: bool(flipped_at),
        n_samples=0,
    )

    assert result.status == "cancelled"
    assert result.steps_completed == 2 and steps_seen == [1, 2]
    assert result.total_steps == 9
    assert result.adapter_dir is None and not (tmp_path / "run" / "adapter").exists()


def _adapter_weights(adapter_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(adapter_dir / "adapter_model.safetensors"))


RESUME_RUN: dict[str, Any] = {"hyperparameters": TINY, "seed": 7, "n_samples": 0, "checkpoint_every_steps": 2}


@pytest.fixture(scope="module")
def uninterrupted_run(base_model_dir: Path, tiny_train_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The reference a resumed run must reproduce: the same training, never interrupted."""
    return train_lora(base_model_dir=base_model_dir, train_path=tiny_train_file, keep_checkpoints=1,
                      output_dir=tmp_path_factory.mktemp("uninterrupted"), **RESUME_RUN)  # fmt: skip


def test_killed_training_resumes_from_its_checkpoint_exactly(
    base_model_dir: Path, tiny_train_file: Path, uninterrupted_run: Any, tmp_path: Path
) -> None:
    """Catches: resume restarting the step counter, replaying or skipping batches, losing optimizer/scheduler state
    (all of which make the resumed adapter differ from an uninterrupted one), and old checkpoints piling up."""
    straight = uninterrupted_run
    assert straight.status == "succeeded" and straight.total_steps == 6
    # Checkpoints at steps 2 and 4 (none at the final step: the adapter is the result); only the last one is kept.
    assert [p.name for p in list_checkpoints(straight.last_checkpoint.parent)] == ["step-4"]

    # "Kill" the worker right after the step-4 checkpoint was written.
    checkpoints: list[str] = []
    interrupted = train_lora(
        base_model_dir=base_model_dir,
        train_path=tiny_train_file,
        output_dir=tmp_path / "killed",
        on_event=lambda kind, payload: checkpoints.append(payload["path"]) if kind == "checkpoint" else None,
        should_stop=lambda: len(checkpoints) == 2,
        **RESUME_RUN,
    )
    assert interrupted.status == "cancelled" and interrupted.steps_completed == 4
    assert interrupted.last_checkpoint == tmp_path / "killed" / "checkpoints" / "step-4"

    resumed_steps: list[int] = []
    resumed = train_lora(
        base_model_dir=base_model_dir,
        train_path=tiny_train_file,
        output_dir=tmp_path / "killed",
        resume_from=interrupted.last_checkpoint,
        on_event=lambda kind, payload: resumed_steps.append(payload["step"]) if kind == "step" else None,
        **RESUME_RUN,
    )
    assert resumed.status == "succeeded"
    assert resumed_steps == [5, 6]
    assert resumed.steps_completed == resumed.total_steps == 6
    assert [record["step"] for record in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert resumed.trained_tokens == straight.trained_tokens
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in straight.history]
    straight_weights = _adapter_weights(straight.adapter_dir)
    assert resumed.adapter_dir is not None
    resumed_weights = _adapter_weights(resumed.adapter_dir)
    assert straight_weights.keys() == resumed_weights.keys()
    for name, tensor in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_resume_refuses_a_checkpoint_of_a_different_run(base_model_dir: Path, tiny_train_file: Path,
                                                        uninterrupted_run: Any, tmp_path: Path) -> None:  # fmt: skip
    """Catches: silently continuing another run's checkpoint (different seed, data or hyperparameters), which
    would produce an adapter trained on a mix of two configurations."""
    with pytest.raises(CheckpointError, match="seed"):
        train_lora(base_model_dir=base_model_dir, train_path=tiny_train_file, output_dir=tmp_path / "other",
                   resume_from=uninterrupted_run.last_checkpoint, **(RESUME_RUN | {"seed": 8}))  # fmt: skip


def test_without_a_validation_file_examples_are_held_back_and_judged(
    base_model_dir: Path, tmp_path: Path, write_jsonl: Any
) -> None:
    """Catches: a run without validation that cannot say whether it learned, held-back examples that are also
    trained on, and a run that did not learn reported as fine (two steps at a tiny learning rate cannot learn
    twelve codes, so the verdict must warn, with advice)."""
    records = [
        {"messages": [{"role": "user", "content": f"Code for line {i}?"}, {"role": "assistant", "content": f"L{i}Q"}]}
        for i in range(12)
    ]
    events: list[tuple[str, dict[str, Any]]] = []
    result = train_lora(
        base_model_dir=base_model_dir,
        train_path=write_jsonl(tmp_path / "train.jsonl", records),
        output_dir=tmp_path / "run",
        hyperparameters=LoraHyperparameters(n_epochs=1, batch_size=5, learning_rate_multiplier=0.01),
        on_event=lambda kind, payload: events.append((kind, payload)),
        hold_back=2,
        n_samples=1,
    )
    [split] = [p for k, p in events if k == "validation_split"]
    assert split == {"held_back": 2, "of": 12, "training_examples": 10}
    assert result.total_steps == 2  # ten examples train, in batches of five
    metrics = result.metrics
    assert metrics["validation_source"] == "held_back" and metrics["validation_examples"] == 2
    assert metrics["valid_loss_before"] is not None and metrics["valid_loss_after"] is not None
    assert metrics["exact_match_examples"] == 2 and metrics["exact_match_judged"]
    assert metrics["exact_match_base"] == 0.0 and metrics["exact_match_fine_tuned"] == 0.0
    assert metrics["converged"] is False
    codes = [w["code"] for w in metrics["warnings"]]
    assert "held_back_not_learned" in codes and codes == [p["code"] for k, p in events if k == "warning"]
    assert all("learning_rate_multiplier" in w["advice"] for w in metrics["warnings"])
    assert result.samples[0]["expected"].endswith("Q")
