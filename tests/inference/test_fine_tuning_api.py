"""Fine-tuning through OpenAI's API with the official SDK: upload, train on a real worker, call, export."""

import io
import json
import signal
import tarfile
import time

import httpx
import openai
import pytest

from inference.engine.vllm_server import VllmServer
from inference.models import FineTuningJob, TrainingFile
from inference.services import base_model_register, server_register
from jobs.models import Job
from tests import builders
from tests.workers import running_worker, start_worker, stop_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
BASE = "smollm2-135m-instruct"


def _jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@pytest.fixture
def tenant(vllm_url, base_model_dir, web_server):
    base = base_model_register(name=BASE, weights_path=base_model_dir, license="apache-2.0")
    server_register(url=vllm_url, base_model=base, cluster_name="eu-test", region="eu-central")
    org = builders.make_org()
    _, key = builders.make_key(org, scopes=["inference", "jobs", "org:read", "org:write"])
    client = openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0, timeout=120)
    return {"org": org, "key": key, "client": client, "url": web_server}


@pytest.fixture
def fact_file(memorised_fact):
    examples = memorised_fact.examples()
    return _jsonl(examples + examples[:2])  # ten examples: the platform's minimum


def _wait_finished(client, job_id, timeout=600):
    def finished():
        job = client.fine_tuning.jobs.retrieve(job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return wait_until(finished, timeout=timeout, interval=1, what=f"fine-tuning job {job_id} to finish")


def test_upload_train_call_and_export_with_the_official_sdk(
    tenant, fact_file, memorised_fact, base_model_dir, tmp_path
):
    """The whole journey: a fact only the training data holds is answered by the tenant's model, and the
    exported bundle serves on a fresh vLLM of the tenant's own."""
    client = tenant["client"]
    training = client.files.create(file=("train.jsonl", fact_file), purpose="fine-tune")
    validation = client.files.create(file=("valid.jsonl", fact_file), purpose="fine-tune")
    assert training.status == "processed" and training.bytes == len(fact_file)
    with running_worker(queues="training", name="trainer", log_path=tmp_path / "trainer.log"):
        # No hyperparameters: the job chooses them (issue #21), and they must be enough to learn the fact.
        job = client.fine_tuning.jobs.create(
            model=BASE,
            training_file=training.id,
            validation_file=validation.id,
            suffix="x9",
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": "auto"}}},
        )
        assert job.status in ("queued", "validating_files", "running")
        job = _wait_finished(client, job.id)
    assert job.status == "succeeded", job.error
    auto = memorised_fact.hyperparameters  # what a job picks for eight examples; ten here, the same values
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (auto.n_epochs, auto.batch_size)
    assert job.hyperparameters.learning_rate_multiplier == auto.learning_rate_multiplier
    assert job.fine_tuned_model.startswith(f"ft:{BASE}:{tenant['org'].slug}:x9:")
    assert job.trained_tokens > 0

    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    losses = [e.data["train_loss"] for e in reversed(events) if e.type == "metrics" and "train_loss" in e.data]
    assert len(losses) >= 5 and losses[-1] < losses[0]
    assert any("valid_loss" in e.data for e in events if e.type == "metrics")
    result = FineTuningJob.objects.get(pk=job.id).job.result
    assert result["metrics"]["valid_loss_after"] < result["metrics"]["valid_loss_before"]
    assert result["samples"] and {"base", "fine_tuned"} <= set(result["samples"][0])

    answer = client.chat.completions.create(
        model=job.fine_tuned_model,
        temperature=0,
        max_tokens=24,
        messages=memorised_fact.prompt(memorised_fact.questions[0]),
    )
    assert memorised_fact.key in answer.choices[0].message.content

    bundle = httpx.get(
        f"{tenant['url']}/v1/fine_tuning/jobs/{job.id}/export",
        headers={"Authorization": f"Bearer {tenant['key']}"},
        timeout=60,
    )
    assert bundle.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(bundle.content)) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "bundle", filter="data")
    assert any(n.endswith("adapter_model.safetensors") for n in names)
    assert any(n.endswith("README.md") for n in names) and any(n.endswith("lightsout.json") for n in names)
    adapter_dir = next((tmp_path / "bundle").glob("*/adapter_config.json")).parent
    card = json.loads((adapter_dir / "lightsout.json").read_text())
    assert card["base_model"] == BASE and card["data_sha256"]

    # The customer's own vLLM, started the way the README says, serves the bundle.
    own = VllmServer(
        model_dir=base_model_dir,
        served_name=BASE,
        kv_cache_gib=1,
        log_path=tmp_path / "own.log",
        extra_args=["--lora-modules", f"x9={adapter_dir}"],
    )
    with own, own.admin_client() as admin:
        reply = admin.chat(model="x9", messages=memorised_fact.prompt(memorised_fact.questions[1]), max_tokens=24)
    assert memorised_fact.key in reply["choices"][0]["message"]["content"]


BAD_FILES = [
    (b'{"messages": [{"role": "user", "content": "hi"}]}\n{not json\n', [2], "JSON"),
    (b'{"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}\n', [1], "role"),
    (b'{"prompt": "old format"}\n', [1], "messages"),
]


@pytest.mark.parametrize("content, lines, fragment", BAD_FILES)
def test_bad_training_files_are_refused_with_line_numbers_and_not_stored(tenant, content, lines, fragment):
    with pytest.raises(openai.BadRequestError) as error:
        tenant["client"].files.create(file=("bad.jsonl", content), purpose="fine-tune")
    message = error.value.body["message"]
    for line in lines:
        assert f"line {line}" in message
    assert fragment.lower() in message.lower()
    assert not TrainingFile.objects.exists()


def test_too_few_examples_and_a_bad_job_never_start(tenant, fact_file):
    with pytest.raises(openai.BadRequestError, match="example"):
        tenant["client"].files.create(file=("small.jsonl", fact_file.splitlines(keepends=True)[0]), purpose="fine-tune")
    training = tenant["client"].files.create(file=("t.jsonl", fact_file), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError, match="Unknown base model"):
        tenant["client"].fine_tuning.jobs.create(model="gpt-99", training_file=training.id)
    with pytest.raises(openai.BadRequestError, match="Unknown hyperparameters"):
        tenant["client"].fine_tuning.jobs.create(
            model=BASE, training_file=training.id, hyperparameters={"warp_factor": 9}
        )
    assert not Job.objects.exists()


def test_cancellation_stops_training_within_seconds(tenant, fact_file, tmp_path):
    client = tenant["client"]
    training = client.files.create(file=("t.jsonl", fact_file), purpose="fine-tune")
    with running_worker(queues="training", name="trainer", log_path=tmp_path / "trainer.log"):
        job = client.fine_tuning.jobs.create(
            model=BASE, training_file=training.id, hyperparameters={"n_epochs": 50, "batch_size": 2}
        )
        wait_until(
            lambda: (
                client.fine_tuning.jobs.retrieve(job.id).status == "running"
                and Job.objects.get(fine_tuning__id=job.id).progress > 0
            ),
            timeout=300,
            interval=0.5,
            what="training to start",
        )
        asked = time.monotonic()
        client.fine_tuning.jobs.cancel(job.id)
        job = _wait_finished(client, job.id, timeout=60)
        took = time.monotonic() - asked
    assert job.status == "cancelled" and took < 30
    assert job.fine_tuned_model is None


def test_a_worker_killed_mid_training_resumes_from_its_checkpoint(tenant, fact_file, tmp_path, settings):
    """SIGKILL the training worker after a checkpoint: a new worker resumes, and the job succeeds once."""
    from jobs.services import job_requeue_stale

    client = tenant["client"]
    training = client.files.create(file=("t.jsonl", fact_file), purpose="fine-tune")
    doomed = start_worker(queues="training", name="doomed", log_path=tmp_path / "doomed.log")
    try:
        job = client.fine_tuning.jobs.create(
            model=BASE, training_file=training.id, hyperparameters={"n_epochs": 8, "batch_size": 2}
        )
        ft = FineTuningJob.objects.get(pk=job.id)
        wait_until(lambda: ft.checkpoints.exists(), timeout=300, interval=0.5, what="a first checkpoint")
    finally:
        stop_worker(doomed, sig=signal.SIGKILL)
    with running_worker(queues="training", name="rescuer", log_path=tmp_path / "rescuer.log"):
        wait_until(lambda: job_requeue_stale()["requeued"], timeout=60, what="the stale job to be re-queued")
        job = _wait_finished(client, job.id)
    assert job.status == "succeeded"
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]  # every page
    assert any(m.startswith("Resuming from checkpoint") for m in messages)
    assert sum(m == "Succeeded." for m in messages) == 1
    assert Job.objects.get(fine_tuning__id=job.id).attempts == 2


def test_another_organisation_sees_none_of_it(tenant, fact_file, web_server):
    training = tenant["client"].files.create(file=("t.jsonl", fact_file), purpose="fine-tune")
    job = tenant["client"].fine_tuning.jobs.create(model=BASE, training_file=training.id)
    other = builders.make_org()
    _, key = builders.make_key(other, scopes=["inference", "jobs", "org:read", "org:write"])
    stranger = openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0)
    assert stranger.files.list().data == [] and stranger.fine_tuning.jobs.list().data == []
    for call in (
        lambda: stranger.files.retrieve(training.id),
        lambda: stranger.files.content(training.id),
        lambda: stranger.files.delete(training.id),
        lambda: stranger.fine_tuning.jobs.retrieve(job.id),
        lambda: stranger.fine_tuning.jobs.list_events(job.id),
        lambda: stranger.fine_tuning.jobs.checkpoints.list(job.id),
        lambda: stranger.fine_tuning.jobs.cancel(job.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    export = httpx.get(
        f"{web_server}/v1/fine_tuning/jobs/{job.id}/export", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    assert export.status_code == 404
    with pytest.raises(openai.BadRequestError):  # someone else's file cannot train my model either
        stranger.fine_tuning.jobs.create(model=BASE, training_file=training.id)
