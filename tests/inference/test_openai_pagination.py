"""Every /v1 list, iterated through the official SDK's auto-pagination over several pages (issue #21)."""

import json

import openai
import pytest

from inference.models import FineTuningCheckpoint, FineTuningJob
from inference.services import base_model_register, server_register
from jobs import services as job_services
from tests import builders

pytestmark = pytest.mark.django_db(transaction=True)
BASE = "smollm2-135m-instruct"


def _chats(n: int, tag: str) -> bytes:
    return "".join(
        json.dumps({"messages": [{"role": "user", "content": f"{tag} q{i}?"}, {"role": "assistant", "content": "ok"}]})
        + "\n"
        for i in range(n)
    ).encode()


@pytest.fixture
def client(base_model_dir, web_server):
    base = base_model_register(name=BASE, weights_path=base_model_dir, license="apache-2.0")
    # Registered, never called: /v1/models lists the base models with a server in the organisation's region.
    server_register(url="http://127.0.0.1:9", base_model=base, cluster_name="eu-test", region="eu-central")
    org = builders.make_org()
    _, key = builders.make_key(org, scopes=["inference", "jobs", "org:read", "org:write"])
    return openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0, timeout=60)


def test_every_v1_list_pages_through_the_sdk(client):
    files = [client.files.create(file=(f"t{i}.jsonl", _chats(10, f"f{i}")), purpose="fine-tune") for i in range(5)]
    jobs = [client.fine_tuning.jobs.create(model=BASE, training_file=files[i].id) for i in range(3)]

    # Files: five, two a page, newest first, every one exactly once.
    first = client.files.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    assert [f.id for f in client.files.list(limit=2)] == [f.id for f in reversed(files)]

    # Jobs: three, one a page.
    assert [j.id for j in client.fine_tuning.jobs.list(limit=1)] == [j.id for j in reversed(jobs)]

    # Events: the SDK follows `after=ftevent-N` (the 500 of the issue).
    ft = FineTuningJob.objects.get(pk=jobs[0].id)
    for i in range(7):
        job_services.job_event(job=ft.job, message=f"note {i}")
    page = client.fine_tuning.jobs.list_events(jobs[0].id, limit=3)
    assert page.has_more and page.data[-1].id.startswith("ftevent-")
    events = list(client.fine_tuning.jobs.list_events(jobs[0].id, limit=3))
    messages = [e.message for e in events]
    assert len(events) >= 8 and len({e.id for e in events}) == len(events)
    assert [m for m in messages if m.startswith("note ")] == [f"note {i}" for i in reversed(range(7))]

    # Checkpoints: as training records them, four of them over two-a-page.
    for step in (5, 10, 15, 20):
        FineTuningCheckpoint.objects.create(
            organization_id=ft.organization_id, fine_tuning_job=ft, step_number=step, path=f"/x/{step}"
        )
    steps = [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(jobs[0].id, limit=2)]
    assert steps == [20, 15, 10, 5]

    # Models (the gateway's list, not paginated by OpenAI either): iterating it yields the base model.
    assert BASE in [m.id for m in client.models.list()]


def test_a_cursor_from_nowhere_is_a_clear_400_not_the_first_page_again(client):
    client.files.create(file=("t.jsonl", _chats(10, "x")), purpose="fine-tune")
    for bad in ("file-doesnotexist", "ftevent-9"):
        with pytest.raises(openai.BadRequestError) as error:
            client.files.list(after=bad)
        assert error.value.body["param"] == "after"
    for bad in ("0", "101", "many"):
        with pytest.raises(openai.BadRequestError) as error:
            client.files.list(limit=bad)
        assert error.value.body["param"] == "limit"
