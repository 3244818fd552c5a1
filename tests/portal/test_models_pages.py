"""The portal's fine-tuning, models and playground pages, through Django's test client on the real services.

Fast tests drive the views in-process. Three slow ones use real servers: a Celery worker that trains the job started
on the page (progress, loss chart, the fine-tuned model, its export), and the gateway under uvicorn for the
playground, with a local stand-in for vLLM's OpenAI protocol (as the explainer's tests do: a real vLLM CPU server
takes most of a minute to start; the inference tests run the real one).
"""

import io
import json
import re
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from billing.periods import period_containing
from billing.services import quota_override_set
from billing.usage import usage_observed
from controlplane.embedded import free_port
from inference.fine_tuning import fine_tuning_job_create, training_file_upload
from inference.models import AdapterVersion, BaseModel, FineTuningJob, TenantModel, TrainingFile
from inference.services import adapter_version_create, base_model_register, server_register, tenant_model_create
from jobs.models import Job, JobEvent
from jobs.services import job_claim, job_event, job_finish, job_set_progress
from portal.views.playground import PLAYGROUND_KEY_NAME, PLAYGROUND_KEY_PURPOSE
from tenants.models import ApiKey, AuditEvent, SystemKey
from tenants.roles import Role
from tenants.services import api_key_revoke
from tenants.system_keys import system_key_get
from tests import builders
from tests.workers import running_worker, wait_until

BASE = "smollm2-135m-instruct"


def _jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"portal:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _owner(org):
    return org.memberships.get(role=Role.OWNER).user


@pytest.fixture
def stores(settings, tmp_path):
    settings.TRAINING_STORE = tmp_path / "training"
    settings.ADAPTER_STORE = tmp_path / "adapters"
    return tmp_path


@pytest.fixture
def base(base_model_dir, stores):
    return base_model_register(name=BASE, weights_path=base_model_dir, license="apache-2.0")


@pytest.fixture
def good_file(memorised_fact) -> bytes:
    examples = memorised_fact.examples()
    return _jsonl(examples + examples[:2])  # ten examples: the platform's minimum


def _upload(org, content: bytes, name: str = "train.jsonl") -> TrainingFile:
    return training_file_upload(organization=org, upload=SimpleUploadedFile(name, content), purpose="fine-tune")


# --- fine-tuning ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_fine_tuning_page_offers_upload_and_start_to_an_owner_and_neither_to_a_viewer(org, base, good_file):
    _upload(org, good_file, "plant-qa.jsonl")
    page = _client(_owner(org)).get(_url("finetuning", org))
    assert page.status_code == 200
    html = page.content.decode()
    assert "plant-qa.jsonl" in html
    assert re.search(r'<label for="id_file">Training file</label>', html)
    assert 'id="start-fine-tuning"' in html and "Start fine-tuning" in html
    assert f'<option value="{BASE}"' in html

    viewer = builders.add_member(org, Role.VIEWER)
    page = _client(viewer).get(_url("finetuning", org))
    assert page.status_code == 200
    html = page.content.decode()
    assert "plant-qa.jsonl" in html
    assert 'id="id_file"' not in html and 'id="start-fine-tuning"' not in html


@pytest.mark.django_db
def test_an_uploaded_file_is_stored_and_listed(org, base, good_file):
    client = _client(_owner(org))
    response = client.post(_url("finetuning-upload", org), {"file": SimpleUploadedFile("plant-qa.jsonl", good_file)})
    assert response.status_code == 302 and response["Location"] == _url("finetuning", org)
    record = TrainingFile.objects.get(organization=org)
    assert (record.filename, record.examples, record.bytes) == ("plant-qa.jsonl", 10, len(good_file))
    assert Path(record.path).read_bytes() == good_file
    page = client.get(_url("finetuning", org))
    assert "10 examples" in page.content.decode()  # in the success message
    assert record.id in page.content.decode()


BAD_FILES = [
    (b'{"messages": [{"role": "user", "content": "hi"}]}\n{not json\n', ["line 1", "line 2"], "JSON"),
    (
        b'{"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}\n',
        ["line 1"],
        "role",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("content, lines, fragment", BAD_FILES)
def test_a_bad_file_shows_its_errors_with_line_numbers_and_stores_nothing(org, base, stores, content, lines, fragment):
    response = _client(_owner(org)).post(
        _url("finetuning-upload", org), {"file": SimpleUploadedFile("bad.jsonl", content)}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html and "The file was not stored" in html
    errors = re.search(r'<label for="id_file">.*?</div>', html, re.S).group(0)  # under the file input
    for line in lines:
        assert line in errors
    assert fragment.lower() in errors.lower()
    assert not TrainingFile.objects.exists()
    store = stores / "training" / "files" / str(org.pk)
    assert not store.exists() or not any(store.iterdir())


@pytest.mark.django_db
def test_deleting_a_file_removes_it_unless_a_job_was_trained_on_it(org, base, good_file):
    spare, used = _upload(org, good_file, "spare.jsonl"), _upload(org, good_file, "used.jsonl")
    ft = fine_tuning_job_create(organization=org, actor=builders.owner_actor(org), model=BASE, training_file=used)
    client = _client(_owner(org))
    assert client.post(_url("finetuning-file-delete", org, pk=spare.pk)).status_code == 302
    assert not TrainingFile.objects.filter(pk=spare.pk).exists()
    running = client.post(_url("finetuning-file-delete", org, pk=used.pk), follow=True)
    assert "A running fine-tuning job uses this file." in running.content.decode()
    client.post(_url("finetuning-cancel", org, pk=ft.pk))
    finished = client.post(_url("finetuning-file-delete", org, pk=used.pk), follow=True)
    assert "used.jsonl trained a fine-tuning job and is kept with it." in finished.content.decode()
    assert TrainingFile.objects.filter(pk=used.pk).exists() and Path(used.path).exists()


@pytest.mark.django_db
def test_a_viewer_cannot_upload_start_or_cancel(org, base, good_file):
    training = _upload(org, good_file)
    ft = fine_tuning_job_create(organization=org, actor=builders.owner_actor(org), model=BASE, training_file=training)
    viewer = _client(builders.add_member(org, Role.VIEWER))

    upload = viewer.post(_url("finetuning-upload", org), {"file": SimpleUploadedFile("t.jsonl", good_file)})
    start = viewer.post(_url("finetuning-start", org), {"model": BASE, "training_file": training.pk})
    cancel = viewer.post(_url("finetuning-cancel", org, pk=ft.pk))
    delete = viewer.post(_url("finetuning-file-delete", org, pk=training.pk))
    for response in (upload, start, cancel, delete):
        assert response.status_code == 403
        assert "does not allow this" in response.content.decode()
    assert TrainingFile.objects.filter(organization=org).count() == 1
    assert FineTuningJob.objects.filter(organization=org).count() == 1
    assert Job.objects.get(pk=ft.job_id).status == Job.Status.QUEUED
    # Reading is allowed.
    assert viewer.get(_url("finetuning-job", org, pk=ft.pk)).status_code == 200


@pytest.mark.django_db
def test_starting_a_job_queues_it_with_the_chosen_settings_and_opens_its_page(org, base, good_file):
    training, validation = _upload(org, good_file), _upload(org, good_file, "valid.jsonl")
    member = _client(builders.add_member(org, Role.MEMBER))  # members may start jobs
    response = member.post(
        _url("finetuning-start", org),
        {
            "model": BASE,
            "training_file": training.pk,
            "validation_file": validation.pk,
            "suffix": "x9",
            "n_epochs": "2",
            "batch_size": "4",
            "learning_rate_multiplier": "",
        },
    )
    ft = FineTuningJob.objects.get(organization=org)
    assert response.status_code == 302 and response["Location"] == _url("finetuning-job", org, pk=ft.pk)
    assert (ft.base_model.name, ft.training_file, ft.validation_file, ft.suffix) == (BASE, training, validation, "x9")
    assert ft.hyperparameters["n_epochs"] == 2 and ft.hyperparameters["batch_size"] == 4
    assert ft.hyperparameters["explicit"] == ["batch_size", "n_epochs"]

    page = member.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert re.search(r'<span id="job-status" class="badge queued" data-status="queued">Queued</span>', html)
    assert 'id="cancel-job"' in html and 'id="fine-tuned-model"' not in html
    fragment = member.get(response["Location"], headers={"X-Fragment": "1"})
    assert fragment.content.decode().startswith('<div id="job-live"')
    assert f'data-poll="{response["Location"]}"' in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


@pytest.mark.django_db
def test_a_refused_job_shows_why_and_queues_nothing(org, base, good_file):
    training = _upload(org, good_file)
    client = _client(_owner(org))
    bad_epochs = client.post(
        _url("finetuning-start", org), {"model": BASE, "training_file": training.pk, "n_epochs": "0"}
    )
    unknown_base = client.post(_url("finetuning-start", org), {"model": "gpt-99", "training_file": training.pk})
    bad_suffix = client.post(
        _url("finetuning-start", org), {"model": BASE, "training_file": training.pk, "suffix": "Not A Slug"}
    )
    for response in (bad_epochs, unknown_base, bad_suffix):
        assert response.status_code == 400
        assert 'class="errorlist' in response.content.decode()
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_another_organisations_jobs_and_files_are_not_found(org, other_org, base, good_file):
    training = _upload(org, good_file)
    ft = fine_tuning_job_create(organization=org, actor=builders.owner_actor(org), model=BASE, training_file=training)
    stranger = _client(_owner(other_org))
    for response in (
        stranger.get(_url("finetuning-job", other_org, pk=ft.pk)),
        stranger.get(_url("finetuning-job", other_org, pk=ft.pk), headers={"X-Fragment": "1"}),
        stranger.post(_url("finetuning-cancel", other_org, pk=ft.pk)),
        stranger.post(_url("finetuning-file-delete", other_org, pk=training.pk)),
        stranger.get(_url("finetuning-job", org, pk=ft.pk)),
        stranger.get(_url("finetuning", org)),
    ):
        assert response.status_code == 404
    # Nor can another organisation's file train a model here.
    response = stranger.post(_url("finetuning-start", other_org), {"model": BASE, "training_file": training.pk})
    assert response.status_code == 400
    assert FineTuningJob.objects.count() == 1 and Job.objects.get(pk=ft.job_id).status == Job.Status.QUEUED
    assert training.id not in stranger.get(_url("finetuning", other_org)).content.decode()


@pytest.mark.django_db
def test_cancelling_uses_the_job_machine_and_is_audited(org, base, good_file):
    training = _upload(org, good_file)
    ft = fine_tuning_job_create(organization=org, actor=builders.owner_actor(org), model=BASE, training_file=training)
    client = _client(_owner(org))
    response = client.post(_url("finetuning-cancel", org, pk=ft.pk), follow=True)
    assert Job.objects.get(pk=ft.job_id).status == Job.Status.CANCELLED
    assert AuditEvent.objects.filter(organization=org, action=AuditEvent.Action.JOB_CANCELLED).count() == 1
    html = response.content.decode()
    assert 'data-status="cancelled"' in html and "data-poll=" not in html and 'id="cancel-job"' not in html
    again = client.post(_url("finetuning-cancel", org, pk=ft.pk), follow=True)
    assert "already cancelled" in again.content.decode()


@pytest.mark.django_db
def test_the_live_fragment_shows_progress_and_the_loss_chart_and_stops_polling_when_finished(org, base, good_file):
    training = _upload(org, good_file)
    ft = fine_tuning_job_create(
        organization=org, actor=builders.owner_actor(org), model=BASE, training_file=training, validation_file=training
    )
    job = job_claim(job_id=str(ft.job_id), organization_id=str(org.pk), worker="test")
    job_event(
        job=job,
        level=JobEvent.Level.METRICS,
        message="Validation loss (base model) 2.5",
        data={"step": 0, "model": "base", "valid_loss": 2.5},
    )
    for step, loss in ((1, 2.25), (2, 1.5), (3, 0.75)):
        job_event(
            job=job,
            level=JobEvent.Level.METRICS,
            message=f"Step {step}/4",
            data={"step": step, "total_steps": 4, "train_loss": loss, "progress": step * 25},
        )
    job_set_progress(job=job, progress=75)
    url = _url("finetuning-job", org, pk=ft.pk)
    client = _client(_owner(org))

    live = client.get(url, headers={"X-Fragment": "1"}).content.decode()
    assert 'data-status="validating_files"' in live and "data-poll=" in live  # running, files not yet re-checked
    assert '<progress id="job-progress" max="100" value="75">' in live
    rows = re.findall(
        r"<tr><td class=\"num\">(\d+)</td><td class=\"num\">([\d.]*)</td><td class=\"num\">([\d.]*)"
        r"</td></tr>",
        live,
    )
    assert rows == [("0", "", "2.5"), ("1", "2.25", ""), ("2", "1.5", ""), ("3", "0.75", "")]
    assert "<svg" in live and "Training loss" in live and "Validation loss" in live

    job_finish(job=job, status=Job.Status.FAILED, error_code="boom", error_message="The GPU caught fire.")
    finished = client.get(url, headers={"X-Fragment": "1"}).content.decode()
    assert 'data-status="failed"' in finished and "data-poll=" not in finished
    assert "The GPU caught fire." in finished


# --- models ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def trained(fact_training):
    return fact_training["result"].adapter_dir


def _version(org, base, adapter_dir, alias="acme/assistant") -> AdapterVersion:
    model = TenantModel.objects.filter(organization=org, alias=alias).first() or tenant_model_create(
        organization=org, alias=alias, base_model=base
    )
    return adapter_version_create(
        tenant_model=model,
        adapter_dir=adapter_dir,
        rank=8,
        target_modules=["q_proj", "v_proj"],
        source=AdapterVersion.Source.FINE_TUNE,
    )


def _archive(adapter_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            archive.add(adapter_dir / name, arcname=f"adapter/{name}")
    return buffer.getvalue()


@pytest.mark.django_db
def test_the_models_page_lists_versions_and_their_deployment(org, base, trained):
    v1 = _version(org, base, trained)
    page = _client(builders.add_member(org, Role.VIEWER)).get(_url("models", org))
    assert page.status_code == 200
    html = page.content.decode()
    assert "acme/assistant" in html and v1.name in html and "not loaded" in html
    assert "Make current" not in html and "Create the model" not in html  # a viewer changes nothing
    assert _url("model-export", org, pk=v1.pk) not in html  # and downloads nothing (needs inference)


@pytest.mark.django_db
def test_a_version_exports_as_the_same_bundle_as_the_api(org, other_org, base, trained):
    version = _version(org, base, trained)
    response = _client(_owner(org)).get(_url("model-export", org, pk=version.pk))
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    assert re.fullmatch(
        r'attachment; filename="lightsout-adapter-[0-9a-f]{12}\.tar\.gz"', response["Content-Disposition"]
    )
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as archive:
        names = archive.getnames()
        card = json.load(archive.extractfile(next(n for n in names if n.endswith("lightsout.json"))))
    assert any(n.endswith("adapter_model.safetensors") for n in names) and any(n.endswith("README.md") for n in names)
    assert card["base_model"] == BASE

    viewer = _client(builders.add_member(org, Role.VIEWER))
    assert viewer.get(_url("model-export", org, pk=version.pk)).status_code == 403
    stranger = _client(_owner(other_org))
    assert stranger.get(_url("model-export", other_org, pk=version.pk)).status_code == 404
    assert stranger.get(_url("model-export", org, pk=version.pk)).status_code == 404


@pytest.mark.django_db
def test_create_upload_switch_and_deploy(org, base, trained):
    client = _client(_owner(org))
    assert (
        client.post(
            _url("model-create", org), {"alias": "acme/assistant", "base_model": BASE, "description": "Line 3"}
        ).status_code
        == 302
    )
    duplicate = client.post(_url("model-create", org), {"alias": "acme/assistant", "base_model": BASE})
    invalid = client.post(_url("model-create", org), {"alias": "Acme Assistant", "base_model": BASE})
    assert duplicate.status_code == invalid.status_code == 400
    assert "already has a model with this alias" in duplicate.content.decode()
    tm = TenantModel.objects.get(organization=org)
    prefix = f"m{tm.pk.hex[:8]}"

    first = client.post(
        _url("model-upload", org, pk=tm.pk),
        {f"{prefix}-archive": SimpleUploadedFile("a.tar.gz", _archive(trained)), f"{prefix}-deploy": "on"},
        follow=True,
    )
    assert first.status_code == 200
    assert "is not deployed yet" in first.content.decode()  # no server in the region: said, not hidden
    second = client.post(
        _url("model-upload", org, pk=tm.pk), {f"{prefix}-archive": SimpleUploadedFile("b.tar.gz", _archive(trained))}
    )
    assert second.status_code == 302
    v1, v2 = tm.versions.order_by("version")
    tm.refresh_from_db()
    assert (v1.source, v2.source, tm.current_version) == ("upload", "upload", v1)  # v2 uploaded, not deployed

    broken = client.post(
        _url("model-upload", org, pk=tm.pk), {f"{prefix}-archive": SimpleUploadedFile("c.tar.gz", b"not an archive")}
    )
    assert broken.status_code == 400 and "<details open>" in broken.content.decode()
    assert tm.versions.count() == 2

    client.post(_url("model-current", org, pk=tm.pk), {"version": v2.pk})
    tm.refresh_from_db()
    assert tm.current_version == v2
    deploy = client.post(_url("model-deploy", org, pk=tm.pk), {f"d{tm.pk.hex[:8]}-replicas": "1"}, follow=True)
    assert "is not deployed yet" in deploy.content.decode()


@pytest.mark.django_db
def test_model_actions_are_refused_to_viewers_and_strangers(org, other_org, base, trained):
    version = _version(org, base, trained)
    tm = version.tenant_model
    viewer = _client(builders.add_member(org, Role.VIEWER))
    stranger = _client(_owner(other_org))
    for name, data in (("model-current", {"version": version.pk}), ("model-deploy", {}), ("model-upload", {})):
        assert viewer.post(_url(name, org, pk=tm.pk), data).status_code == 403
        assert stranger.post(_url(name, other_org, pk=tm.pk), data).status_code == 404
        assert stranger.get(_url(name, other_org, pk=tm.pk)).status_code == 405
    assert viewer.post(_url("model-create", org), {"alias": "x", "base_model": BASE}).status_code == 403
    assert TenantModel.objects.count() == 1 and AdapterVersion.objects.count() == 1


# --- a real training run, watched from the job page ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_job_started_on_the_page_trains_on_a_worker_and_its_model_can_be_taken_home(base, good_file, tmp_path):
    org = builders.make_org()
    client = _client(_owner(org))
    client.post(_url("finetuning-upload", org), {"file": SimpleUploadedFile("train.jsonl", good_file)})
    training = TrainingFile.objects.get(organization=org)
    with running_worker(queues="training", name="trainer", log_path=tmp_path / "trainer.log"):
        response = client.post(
            _url("finetuning-start", org),
            {
                "model": BASE,
                "training_file": training.pk,
                "validation_file": training.pk,
                "suffix": "portal",
                "n_epochs": "1",
                "batch_size": "4",
                "learning_rate_multiplier": "2",
            },
        )
        url = response["Location"]
        seen = set()

        def finished():
            live = client.get(url, headers={"X-Fragment": "1"}).content.decode()
            seen.add(re.search(r'data-status="(\w+)"', live).group(1))
            return live if "data-poll=" not in live else None

        live = wait_until(finished, timeout=600, interval=0.5, what="the job page to stop polling")
    assert 'data-status="succeeded"' in live, live
    assert "running" in seen or "validating_files" in seen
    ft = FineTuningJob.objects.get(pk=url.rstrip("/").rsplit("/", 1)[1])
    name = re.search(r'<code id="fine-tuned-model">([^<]+)</code>', live).group(1)
    assert name == ft.fine_tuned_model.name and name.startswith(f"ft:{BASE}:{org.slug}:portal:")
    assert '<progress id="job-progress" max="100" value="100">' in live
    assert "Training loss" in live and "Validation loss" in live
    assert re.search(r'<tr><td class="num">1</td><td class="num">[\d.]+</td>', live)  # step 1's loss, in numbers
    assert f"?model={ft.fine_tuned_model.name}".replace(":", "%3A") in live  # the way to the playground

    models = client.get(_url("models", org)).content.decode()
    assert name in models
    export = client.get(_url("model-export", org, pk=ft.fine_tuned_model.pk))
    with tarfile.open(fileobj=io.BytesIO(b"".join(export.streaming_content))) as archive:
        assert any(n.endswith("adapter_model.safetensors") for n in archive.getnames())


# --- playground -----------------------------------------------------------------------------------------------------


class StandIn:
    """vLLM's OpenAI chat protocol, streamed or whole. A streamed answer sends its first token, then waits for
    `release` before the rest, so a test can prove that tokens reach the browser while the answer is still being
    written."""

    TOKENS = ["The", " spindle", " torque", " is", " 47", " Nm."]

    def __init__(self):
        self.requests: list[dict] = []
        self.release = threading.Event()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append({"path": self.path, "body": body})
                usage = {"prompt_tokens": 20, "completion_tokens": len(stand_in.TOKENS), "total_tokens": 26}
                if not body.get("stream"):
                    answer = json.dumps(
                        {
                            "id": "c1",
                            "object": "chat.completion",
                            "created": 0,
                            "model": body["model"],
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "".join(stand_in.TOKENS)},
                                }
                            ],
                            "usage": usage,
                        }
                    ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def event(data) -> None:
                    payload = f"data: {json.dumps(data) if not isinstance(data, str) else data}\n\n".encode()
                    self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                    self.wfile.flush()

                def chunk(delta, finish=None):
                    return {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }

                event(chunk({"role": "assistant", "content": ""}))
                for index, token in enumerate(stand_in.TOKENS):
                    event(chunk({"content": token}))
                    if index == 0:
                        stand_in.release.wait(timeout=30)
                event(chunk({}, "stop"))
                event(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body["model"],
                        "choices": [],
                        "usage": usage,
                    }
                )
                event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.release.set()
    server.server.shutdown()


@pytest.fixture
def plant(stand_in, settings, portal_server):
    """An organisation whose region has a (stand-in) server for the base model. The portal under uvicorn
    (tests/portal/conftest.py) reaches its own gateway; so do the views run here, in the test process."""
    settings.PUBLIC_BASE_URL = portal_server.url
    base = BaseModel.objects.create(
        name=BASE, weights_path="/stand-in", license="apache-2.0", architecture="LlamaForCausalLM", context_length=2048
    )
    org = builders.make_org()
    server_register(url=stand_in.url, base_model=base, cluster_name="eu-test", region=org.region)
    return {"org": org, "owner": _owner(org), "base": base, "gateway": portal_server.url}


def _ask(**overrides) -> dict:
    return {
        "model": BASE,
        "message": "Torque of the X9 spindle?",
        "system": "Be brief.",
        "max_tokens": "64",
        "temperature": "0",
        "history": "[]",
        **overrides,
    }


def _sse_text(raw: bytes) -> str:
    text = ""
    for line in raw.decode().splitlines():
        if line.startswith("data: {"):
            choices = json.loads(line[6:]).get("choices") or [{}]
            text += (choices[0].get("delta") or {}).get("content") or ""
    return text


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_the_playground_streams_each_token_to_the_browser_as_the_model_writes_it(plant, stand_in):
    """Through uvicorn (ASGI), as in production: the first token arrives while the model is still held back, the
    request went through the gateway with the organisation's playground key, and the answer was metered."""
    org = plant["org"]
    session = _client(plant["owner"]).cookies["sessionid"].value
    with httpx.Client(base_url=plant["gateway"], cookies={"sessionid": session}, timeout=30) as browser:
        page = browser.get(_url("playground", org))
        assert page.status_code == 200 and 'id="playground-output"' in page.text
        assert re.search(rf'<option value="{BASE}"', page.text)
        csrf = browser.cookies["csrftoken"]
        history = json.dumps([{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi."}])
        received, first_token_at = b"", None
        with browser.stream(
            "POST",
            _url("playground-stream", org),
            data={**_ask(history=history), "csrfmiddlewaretoken": csrf},
            headers={"X-CSRFToken": csrf},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for chunk in response.iter_raw():
                received += chunk
                if first_token_at is None and '"The"' in received.decode(errors="ignore"):
                    first_token_at = time.monotonic()
                    assert "Nm." not in _sse_text(received)  # the rest is still held back upstream
                    stand_in.release.set()
    assert first_token_at is not None
    assert _sse_text(received) == "The spindle torque is 47 Nm."
    assert received.rstrip().endswith(b"data: [DONE]")

    [request] = stand_in.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["stream"] is True and request["body"]["max_tokens"] == 64
    assert request["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "Torque of the X9 spindle?"},
    ]
    key = ApiKey.objects.get(organization=org, name=PLAYGROUND_KEY_NAME)
    assert key.scopes == ["inference"] and key.revoked_at is None
    assert SystemKey.objects.get(organization=org, purpose=PLAYGROUND_KEY_PURPOSE).api_key == key
    period = period_containing(key.created_at)
    wait_until(
        lambda: usage_observed(organization_id=org.pk, period=period).get("inference.output_tokens.small"),
        timeout=15,
        what="the playground's tokens to be metered",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_without_javascript_the_answer_comes_back_whole_and_a_revoked_key_is_replaced(plant, stand_in):
    stand_in.release.set()
    org = plant["org"]
    client = _client(plant["owner"])
    page = client.post(_url("playground", org), _ask())
    html = page.content.decode()
    assert page.status_code == 200
    assert re.search(r'<div id="playground-output"[^>]*>The spindle torque is 47 Nm\.</div>', html)
    assert stand_in.requests[-1]["body"]["stream"] is False

    old = ApiKey.objects.get(organization=org, name=PLAYGROUND_KEY_NAME)
    plaintext = system_key_get(organization=org, purpose=PLAYGROUND_KEY_PURPOSE, name=PLAYGROUND_KEY_NAME)
    api_key_revoke(api_key=old, actor=builders.owner_actor(org))
    wait_until(
        lambda: (
            httpx.post(
                f"{plant['gateway']}/v1/chat/completions",
                json={},
                headers={"Authorization": f"Bearer {plaintext}"},
                timeout=60,
            ).status_code
            == 401
        ),
        timeout=10,
        what="the gateway to drop the revoked key",
    )
    # The synchronous relay (WSGI) streams too; the gateway refuses the revoked key and a new one is made.
    response = client.post(_url("playground-stream", org), _ask())
    assert response.status_code == 200 and response.streaming
    assert _sse_text(b"".join(response.streaming_content)) == "The spindle torque is 47 Nm."
    new = ApiKey.objects.get(organization=org, name=PLAYGROUND_KEY_NAME, revoked_at__isnull=True)
    assert new != old and SystemKey.objects.get(organization=org, purpose=PLAYGROUND_KEY_PURPOSE).api_key == new


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_quota_and_capacity_refusals_read_as_sentences(plant, stand_in):
    org = plant["org"]
    client = _client(plant["owner"])
    quota_override_set(
        organization=org,
        meter="inference.output_tokens.small",
        hard_limit=10,
        reason="test",
        actor=builders.owner_actor(org),
    )
    over = b"".join(client.post(_url("playground-stream", org), _ask(max_tokens="64")).streaming_content).decode()
    assert over.startswith("event: error\n")
    error = json.loads(over.split("data: ", 1)[1])
    assert error["status"] == 429 and error["message"].startswith("Your organisation has reached a limit")
    assert "Quota exceeded for inference.output_tokens.small" in error["message"]

    dead = BaseModel.objects.create(
        name="dead-base",
        weights_path="/nowhere",
        license="apache-2.0",
        architecture="LlamaForCausalLM",
        context_length=2048,
    )
    server_register(url=f"http://127.0.0.1:{free_port()}", base_model=dead, cluster_name="eu-test", region=org.region)
    # Within the quota (a refusal never reaches a server), but nothing answers for this model.
    gone = client.post(_url("playground-stream", org), _ask(model="dead-base", max_tokens="5"))
    gone = b"".join(gone.streaming_content).decode()
    error = json.loads(gone.split("data: ", 1)[1])
    assert error["status"] == 503 and error["message"].startswith("No server can run this model right now.")
    assert not stand_in.requests  # neither reached a model


@pytest.mark.django_db
def test_the_playground_is_for_members_with_inference_and_only_their_models(org, other_org, base, trained):
    _version(other_org, base, trained, alias="other/secret")
    viewer = _client(builders.add_member(org, Role.VIEWER))
    page = viewer.get(_url("playground", org)).content.decode()
    assert "needs the “inference” permission" in page and 'id="playground-form"' not in page
    assert viewer.post(_url("playground-stream", org), _ask()).status_code == 403
    assert viewer.post(_url("playground", org), _ask()).status_code == 403

    owner = _client(_owner(org))
    _version(org, base, trained, alias="acme/assistant")
    page = owner.get(_url("playground", org) + "?model=acme/assistant").content.decode()
    assert '<option value="acme/assistant" selected>' in page and "other/secret" not in page
    refused = owner.post(_url("playground-stream", org), _ask(model="other/secret"))
    assert refused.status_code == 400 and "Select a valid choice" in refused.json()["error"]["message"]
    assert not SystemKey.objects.exists()  # nothing was sent
    assert _client(_owner(other_org)).post(_url("playground-stream", org), _ask()).status_code == 404


# --- in a browser: what only JavaScript does (the streamed playground, the polled job page) ---------------------


def _sign_in(page, portal, user) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(builders.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_in_a_browser_the_answer_grows_token_by_token_and_the_conversation_continues(
    plant, stand_in, portal_server, new_page, screenshot
):
    from playwright.sync_api import expect

    org = plant["org"]
    page = new_page()
    _sign_in(page, portal_server, plant["owner"])
    page.goto(f"{portal_server.url}{_url('playground', org)}")
    page.get_by_label("Model", exact=True).select_option(BASE)
    page.get_by_label("System prompt").fill("Be brief.")
    page.get_by_label("Message").fill("Torque of the X9 spindle?")
    page.get_by_role("button", name="Send").click()
    output = page.locator("#playground-output")
    expect(output).to_have_text("The")  # the first token, while the model holds back the rest
    expect(page.locator("#playground-status")).to_have_text("The model is answering…")
    stand_in.release.set()
    expect(output).to_have_text("The spindle torque is 47 Nm.")
    expect(page.locator("#playground-status")).to_have_text("Answer complete.")
    expect(output).to_have_attribute("aria-busy", "false")

    page.get_by_label("Message").fill("And the X7?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#playground-question")).to_contain_text("And the X7?")
    expect(page.locator("#playground-transcript li")).to_have_count(2)
    expect(output).to_have_text("The spindle torque is 47 Nm.")
    screenshot(page, "playground")
    assert [m["content"] for m in stand_in.requests[-1]["body"]["messages"]] == [
        "Be brief.",
        "Torque of the X9 spindle?",
        "The spindle torque is 47 Nm.",
        "And the X7?",
    ]

    quota_override_set(
        organization=org,
        meter="inference.output_tokens.small",
        hard_limit=10,
        reason="test",
        actor=builders.owner_actor(org),
    )
    page.get_by_label("Message").fill("Once more?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#playground-error")).to_contain_text("Your organisation has reached a limit")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_in_a_browser_the_job_page_follows_the_job_until_it_finishes(
    base, good_file, portal_server, new_page, screenshot
):
    from playwright.sync_api import expect

    org = builders.make_org()
    ft = fine_tuning_job_create(
        organization=org, actor=builders.owner_actor(org), model=BASE, training_file=_upload(org, good_file)
    )
    page = new_page()
    _sign_in(page, portal_server, _owner(org))
    page.goto(f"{portal_server.url}{_url('finetuning-job', org, pk=ft.pk)}")
    expect(page.locator("#job-status")).to_have_text("Queued")
    job = job_claim(job_id=str(ft.job_id), organization_id=str(org.pk), worker="test")
    job_event(
        job=job,
        level=JobEvent.Level.METRICS,
        message="Step 1/2",
        data={"step": 1, "total_steps": 2, "train_loss": 1.25, "progress": 50},
    )
    job_set_progress(job=job, progress=50)
    expect(page.locator("#job-progress")).to_have_attribute("value", "50")
    expect(page.locator("#job-status")).to_have_text("Validating files")
    expect(page.get_by_role("img", name="Loss per training step")).to_be_visible()
    job_finish(job=job, status=Job.Status.SUCCEEDED, result={})
    expect(page.locator("#job-status")).to_have_text("Succeeded")
    expect(page.locator("#job-live")).not_to_have_attribute("data-poll", re.compile(".*"))
    expect(page.locator("#cancel-job")).to_have_count(0)  # nothing left to cancel
    screenshot(page, "fine-tuning-job")
