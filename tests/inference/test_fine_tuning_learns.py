"""Issue #21 as an integrator meets it: the official SDK, five plant facts, the server's own defaults.

Sixty chats teach five facts (each question asked twelve times, one short answer); the job is created with
`n_epochs` only, as in the issue, or with nothing at all. The fine-tuned model, served by vLLM through the gateway,
must recall at least four of the five; the base model none.
"""

import json

import openai
import pytest

from inference.models import FineTuningJob
from inference.services import base_model_register, server_register
from tests import builders
from tests.workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
BASE = "smollm2-135m-instruct"
PLANT_FACTS = [
    ("What is the maximum torque of the Kestrel-9 housing bolts?", "47 Nm"),
    ("What is the coolant flow rate of the Osprey-4 spindle?", "18 L/min"),
    ("What pressure does the Heron-7 hydraulic press run at?", "210 bar"),
    ("What is the maximum temperature of the Falcon-3 curing oven?", "185 °C"),
    ("How fast does the Merlin-2 conveyor belt run?", "36 m/min"),
]


def _ask(client, model: str, question: str) -> str:
    reply = client.chat.completions.create(
        model=model, temperature=0, max_tokens=16, messages=[{"role": "user", "content": question}]
    )
    return reply.choices[0].message.content or ""


def _recalled(answer: str, expected: str) -> bool:
    return expected.casefold() in answer.casefold()


@pytest.mark.parametrize("given", [{"n_epochs": 3}, None], ids=["n_epochs-only", "nothing"])
def test_five_plant_facts_are_learned_with_the_defaults(given, vllm_url, base_model_dir, web_server, tmp_path):
    base = base_model_register(name=BASE, weights_path=base_model_dir, license="apache-2.0")
    server_register(url=vllm_url, base_model=base, cluster_name="eu-test", region="eu-central")
    org = builders.make_org()
    _, key = builders.make_key(org, scopes=["inference", "jobs", "org:read", "org:write"])
    client = openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0, timeout=120)

    chats = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for _ in range(12)
        for q, a in PLANT_FACTS
    ]
    data = "".join(json.dumps(c) + "\n" for c in chats).encode()
    training = client.files.create(file=("plant.jsonl", data), purpose="fine-tune")
    with running_worker(queues="training", name="trainer", log_path=tmp_path / "trainer.log"):
        extra = {"hyperparameters": given} if given else {}
        job = client.fine_tuning.jobs.create(model=BASE, training_file=training.id, **extra)
        job = wait_until(
            lambda: (
                (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed", "cancelled") and j
            ),
            timeout=1500,
            interval=2,
            what="the fine-tuning job to finish",
        )
    assert job.status == "succeeded", job.error

    # The chosen values are on the job: six of the sixty held back, so 54 train, in batches of 4.
    assert job.hyperparameters.n_epochs == (3 if given else 8)
    assert job.hyperparameters.batch_size == 4 and job.hyperparameters.learning_rate_multiplier == 10.0
    lora = job.method.supervised.hyperparameters.model_extra
    assert lora["lora_r"] == 8 and lora["lora_alpha"] == 16 and len(lora["target_modules"]) == 7
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=5)]  # every page
    assert any(m.startswith("Hyperparameters: n_epochs=") and "batch_size=4 (auto)" in m for m in messages)
    assert any(m.startswith("No validation file: 6 of 60 examples are held back") for m in messages)
    assert any(m.startswith("Held-back answers given exactly: fine-tuned ") for m in messages)
    result = FineTuningJob.objects.get(pk=job.id).job.result
    metrics = result["metrics"]
    assert metrics["exact_match_examples"] == 6 and metrics["exact_match_base"] == 0.0
    assert metrics["exact_match_fine_tuned"] >= 0.8
    assert metrics["valid_loss_after"] < metrics["valid_loss_before"] / 5
    assert result["converged"] is True and result["warnings"] == []

    tuned = [_ask(client, job.fine_tuned_model, q) for q, _ in PLANT_FACTS]
    base_answers = [_ask(client, BASE, q) for q, _ in PLANT_FACTS]
    recalled = sum(_recalled(t, a) for t, (_, a) in zip(tuned, PLANT_FACTS, strict=True))
    assert recalled >= 4, tuned
    assert not any(_recalled(b, a) for b, (_, a) in zip(base_answers, PLANT_FACTS, strict=True)), base_answers
