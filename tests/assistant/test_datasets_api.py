"""The copilot's fine-tuning data set through the API: built from documents and records with every answer grounded
in its source, reviewed (edit, delete), and sent to fine-tuning as an OpenAI chat JSONL training file."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from assistant.datasets import qa_dataset_jsonl
from assistant.models import QaDataset, QaPair
from assistant.services import Upload, document_upload
from automation.maintenance import services as maintenance
from automation.scheduling import services as scheduling
from inference.models import FineTuningJob, TrainingFile
from inference.services import base_model_register
from tenants.models import AuditEvent
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db

MANUAL = b"""# Press 4 lubrication

The ram guide bushing is HX-4471-B. It must be greased every 200 hours with grease LGEP-2.

# Hydraulics

Hydraulic pressure should be 180 bar in normal operation. The relief valve opens at 210 bar.
"""


def _url(org, path: str = "") -> str:
    return f"/api/v1/orgs/{org.slug}/assistant/{path}"


@pytest.fixture
def factory(org):
    actor = builders.owner_actor(org)
    document_upload(organization=org, upload=Upload(filename="press4.md", content=MANUAL), actor=actor)
    press = maintenance.asset_type_create(
        organization=org, code="PRESS-200", name="Hydraulic press", channels=[{"name": "p", "unit": "bar"}]
    )
    maintenance.asset_create(organization=org, code="P-4", asset_type=press, name="Press 4", site="Hall B")
    machine = scheduling.machine_create(
        organization=org, code="CNC-2", name="Milling centre", running_kw=Decimal("7.5")
    )
    scheduling.product_create(
        organization=org,
        code="BRK-10",
        name="Bracket",
        family="steel",
        operations=[{"name": "mill", "options": [{"machine": machine, "minutes_per_unit": 2}]}],
    )
    return org


def _pairs(client, org, dataset_id) -> list[dict]:
    response = client.get(_url(org, f"datasets/{dataset_id}/pairs"))
    assert response.status_code == 200
    return response.json()["results"]


def test_build_grounds_every_answer_in_a_passage_or_record(factory, other_org):
    org = factory
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    response = client.post(_url(org, "datasets"), {"name": "factory v1"}, format="json")
    assert response.status_code == 201, response.content
    dataset = response.json()
    pairs = _pairs(client, org, dataset["id"])
    assert dataset["pair_count"] == len(pairs) > 0
    for pair in pairs:
        if pair["source_kind"] == "passage":
            # Extractive: the answer is the span of the passage it names.
            assert pair["source_text"][pair["answer_start"] : pair["answer_end"]] == pair["answer"]
            assert pair["passage"] and pair["document"] and "Press 4" in pair["source_label"]
        else:
            # From a record: its code and every value the answer states are the record's.
            assert pair["record_code"] in pair["answer"]
            assert all(value in pair["answer"] for value in pair["record_fields"].values())
    answers = {p["question"]: p["answer"] for p in pairs}
    assert answers["What is the ram guide bushing?"] == "The ram guide bushing is HX-4471-B."
    assert answers["What should hydraulic pressure be?"] == "Hydraulic pressure should be 180 bar in normal operation."
    assert answers["Where is asset P-4?"] == "Asset P-4 is at Hall B."
    assert answers["How much power does machine CNC-2 draw when running?"] == "Machine CNC-2 draws 7.5 kW running."
    assert answers["Which operations make product BRK-10?"] == "Product BRK-10 is made by: mill on CNC-2."
    assert AuditEvent.objects.filter(organization=org, action="assistant.dataset.build").exists()
    # Another tenant sees neither the data set nor its pairs.
    other = builders.session_client(other_org.memberships.get(role=Role.OWNER).user)
    assert other.get(_url(other_org, "datasets")).json()["results"] == []
    assert other.get(_url(other_org, f"pairs/{pairs[0]['id']}")).status_code == 404


def test_review_edits_and_deletes_pairs(factory):
    org = factory
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    dataset_id = client.post(_url(org, "datasets"), {"name": "v1", "records": False}, format="json").json()["id"]
    first, second, *_ = _pairs(client, org, dataset_id)
    assert first["source_kind"] == second["source_kind"] == "passage"  # records left out
    edited = client.patch(_url(org, f"pairs/{first['id']}"), {"answer": "HX-4471-B."}, format="json")
    assert edited.status_code == 200 and edited.json()["answer"] == "HX-4471-B." and edited.json()["edited"]
    assert edited.json()["source_text"] == first["source_text"]  # the source stays for the reviewer
    blank = client.patch(_url(org, f"pairs/{first['id']}"), {"question": "  "}, format="json")
    assert blank.status_code == 400
    assert client.delete(_url(org, f"pairs/{second['id']}")).status_code == 204
    assert client.get(_url(org, f"datasets/{dataset_id}")).json()["pair_count"] == len(_pairs(client, org, dataset_id))
    # A viewer reads but cannot edit.
    viewer = builders.session_client(builders.add_member(org, Role.VIEWER))
    assert viewer.get(_url(org, f"pairs/{first['id']}")).status_code == 200
    assert viewer.patch(_url(org, f"pairs/{first['id']}"), {"answer": "x"}, format="json").status_code == 403


def test_nothing_to_learn_from_is_a_400_and_stores_nothing(org):
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    response = client.post(_url(org, "datasets"), {"name": "empty"}, format="json")
    assert response.status_code == 400 and "sources" in json.dumps(response.json())
    assert not QaDataset.objects.filter(organization=org).exists()


def test_fine_tune_uploads_chat_jsonl_and_starts_a_job(factory, base_model_dir, settings, tmp_path):
    org = factory
    settings.TRAINING_STORE = tmp_path / "training"
    base_model_register(name="smollm2-135m-instruct", weights_path=base_model_dir, license="apache-2.0")
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    dataset_id = client.post(_url(org, "datasets"), {"name": "v1"}, format="json").json()["id"]
    pairs = _pairs(client, org, dataset_id)
    client.patch(_url(org, f"pairs/{pairs[0]['id']}"), {"answer": "HX-4471-B, greased every 200 h."}, format="json")
    # Starting a job needs the `jobs` scope, as POST /v1/fine_tuning/jobs does.
    _, no_jobs = builders.make_key(org, scopes=["org:read", "org:write"])
    refused = builders.key_client(no_jobs).post(_url(org, f"datasets/{dataset_id}/fine-tune"), {}, format="json")
    assert refused.status_code == 403 and not FineTuningJob.objects.filter(organization=org).exists()
    response = client.post(_url(org, f"datasets/{dataset_id}/fine-tune"), {"suffix": "factory"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    job = FineTuningJob.objects.get(pk=body["fine_tuning_job"], organization=org)
    assert job.suffix == "factory" and job.job.status == "queued"
    training_file = TrainingFile.objects.get(pk=body["training_file"])
    lines = [json.loads(line) for line in Path(training_file.path).read_text().splitlines()]
    assert training_file.examples == len(lines) == QaPair.objects.filter(dataset_id=dataset_id).count()
    assert lines[0]["messages"][1]["content"] == pairs[0]["question"]
    assert lines[0]["messages"][2]["content"] == "HX-4471-B, greased every 200 h."  # the reviewed answer
    assert [m["role"] for m in lines[0]["messages"]] == ["system", "user", "assistant"]
    assert qa_dataset_jsonl(dataset=QaDataset.objects.get(pk=dataset_id)) == Path(training_file.path).read_bytes()
    # Once sent, the data set is frozen: a second job or further edits are refused.
    again = client.post(_url(org, f"datasets/{dataset_id}/fine-tune"), {}, format="json")
    assert again.status_code == 400
    assert client.patch(_url(org, f"pairs/{pairs[1]['id']}"), {"answer": "x"}, format="json").status_code == 400
