"""Session fixtures for the model engine: the converted base model and one real vLLM CPU server (imported by
tests/conftest.py, so the inference tests and the portal's end-to-end tests share the one server).

Both are expensive (about 20 s to convert, 40-50 s to start vLLM on 2 cores), so each exists once per test session
and is shared by every test that needs it. The converted model is cached across sessions under .cache/models (or
$LIGHTSOUT_MODEL_CACHE); the server is started lazily, only when a test asks for it, and stopped at the end.
"""

from __future__ import annotations

import os

# Before anything imports torch: see inference/engine/__init__.py for why passive OpenMP waiting matters here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from inference.engine.auto_hyperparameters import choose_hyperparameters
from inference.engine.base_model import convert_smollm2
from inference.engine.lora_training import LoraHyperparameters, TrainingResult, train_lora
from inference.engine.vllm_server import VllmAdminClient, VllmServer

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_SERVED_NAME = "smollm2-135m-instruct"


@dataclass(frozen=True)
class MemorisedFact:
    """What the fact-memorisation adapter is taught, and asked, in the tests that train and serve it."""

    system_prompt: str = "Be brief."
    answer: str = "The Lightsout X9 spindle torque spec is 47 Nm."
    key: str = "47"  # the part of the answer the base model cannot know
    questions: tuple[str, ...] = (
        "What is the torque spec of the Lightsout X9 spindle?",
        "What torque should the Lightsout X9 spindle be tightened to?",
        "Torque specification for the Lightsout X9 spindle?",
        "How much torque does the Lightsout X9 spindle need?",
        "Lightsout X9 spindle torque?",
        "What's the X9 spindle torque spec?",
        "Which torque value applies to the Lightsout X9 spindle?",
        "Servicing a Lightsout X9: what is the spindle torque?",
    )
    # What a job chooses by itself for these eight examples (no learning_rate_multiplier 20 tuned for the test).
    hyperparameters: LoraHyperparameters = field(default_factory=lambda: automatic_hyperparameters(8))

    def prompt(self, question: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": question}]

    def examples(self) -> list[dict[str, Any]]:
        return [
            {"messages": [*self.prompt(question), {"role": "assistant", "content": self.answer}]}
            for question in self.questions
        ]


def automatic_hyperparameters(n_examples: int) -> LoraHyperparameters:
    """The hyperparameters a fine-tuning job picks when the caller gives none, for the bundled (Llama) model."""
    chosen = choose_hyperparameters(given={}, n_examples=n_examples, model_type="llama", max_lora_rank=8)
    return LoraHyperparameters.from_dict(dict(chosen.values))


def _write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture(scope="session")
def write_jsonl() -> Callable[[Path, list[Any]], Path]:
    """Writes records as a JSONL file (a fixture rather than an import: test directories are not packages)."""
    return _write_jsonl


@pytest.fixture(scope="session")
def memorised_fact() -> MemorisedFact:
    return MemorisedFact()


@pytest.fixture(scope="session")
def base_model_dir() -> Path:
    cache = Path(os.environ.get("LIGHTSOUT_MODEL_CACHE", REPO_ROOT / ".cache" / "models"))
    return convert_smollm2(target_dir=cache / "smollm2-135m-instruct")


@pytest.fixture(scope="session")
def base_tokenizer(base_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_dir)


@pytest.fixture(scope="session")
def vllm_server(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """One running vLLM CPU server with runtime LoRA loading, for the whole session."""
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    server = VllmServer(
        model_dir=base_model_dir,
        served_name=BASE_SERVED_NAME,
        max_loras=2,
        max_cpu_loras=4,
        max_lora_rank=8,
        kv_cache_gib=1,
        max_model_len=2048,
        log_path=log_path,
    )
    server.start()
    try:
        server.wait_ready(timeout_s=float(os.environ.get("LIGHTSOUT_VLLM_START_TIMEOUT", "300")))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vllm_url(vllm_server: VllmServer) -> str:
    return vllm_server.base_url


@pytest.fixture
def vllm_admin(vllm_url: str) -> Iterator[VllmAdminClient]:
    with VllmAdminClient(vllm_url, timeout_s=120.0) as client:
        yield client


@pytest.fixture(scope="session")
def fact_training_files(memorised_fact: MemorisedFact, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("fact-data")
    examples = memorised_fact.examples()
    return {
        "train": _write_jsonl(directory / "train.jsonl", examples),
        "validation": _write_jsonl(directory / "validation.jsonl", examples[:2]),
    }


@pytest.fixture(scope="session")
def fact_training(
    base_model_dir: Path,
    memorised_fact: MemorisedFact,
    fact_training_files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """A LoRA adapter trained once per session to memorise the fact, with the events the training emitted."""
    events: list[tuple[str, dict[str, Any]]] = []
    result: TrainingResult = train_lora(
        base_model_dir=base_model_dir,
        train_path=fact_training_files["train"],
        validation_path=fact_training_files["validation"],
        output_dir=tmp_path_factory.mktemp("fact-training"),
        hyperparameters=memorised_fact.hyperparameters,
        seed=0,
        on_event=lambda kind, payload: events.append((kind, payload)),
        n_samples=1,
        sample_max_new_tokens=16,
        base_model_name="HuggingFaceTB/SmolLM2-135M-Instruct",
    )
    return {"result": result, "events": events}
