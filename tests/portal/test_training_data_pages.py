"""The portal's training-data pages (Django's test client, real services): build a data set from a manual and the
records, see each answer highlighted in its source, edit and delete pairs, start fine-tuning; viewers only look."""

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from assistant.models import QaDataset, QaPair
from assistant.services import Upload, document_upload
from automation.maintenance import services as maintenance
from inference.models import FineTuningJob
from inference.services import base_model_register
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db

MANUAL = (
    b"# Hydraulics\n\nHydraulic pressure should be 180 bar in normal operation. Check hoses weekly.\n\n"
    b"# Lubrication\n\nThe ram guide bushing is HX-4471-B. The grease must be LGEP-2.\n"
)


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"portal:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def factory(org):
    document_upload(
        organization=org, upload=Upload(filename="press.md", content=MANUAL), actor=builders.owner_actor(org)
    )
    press = maintenance.asset_type_create(organization=org, code="PRESS", channels=[{"name": "p", "unit": "bar"}])
    for number in (3, 4, 5):
        maintenance.asset_create(
            organization=org, code=f"P-{number}", asset_type=press, name=f"Press {number}", site="Hall B"
        )
    return org  # 3 passage pairs and 9 record pairs: a fine-tuning file needs at least 10 examples


def test_build_review_and_fine_tune(factory, base_model_dir, settings, tmp_path):
    org = factory
    settings.TRAINING_STORE = tmp_path / "training"
    base_model_register(name="smollm2-135m-instruct", weights_path=base_model_dir, license="apache-2.0")
    client = _client(org.memberships.get(role=Role.OWNER).user)
    assert client.get(_url("finetuning", org)).content.count(_url("datasets", org).encode()) == 1
    response = client.post(_url("datasets", org), {"name": "plant v1", "documents": "on", "records": "on"})
    dataset = QaDataset.objects.get(organization=org)
    assert response.status_code == 302 and response["Location"] == _url("dataset", org, pk=dataset.pk)
    page = client.get(response["Location"]).content.decode()
    # The extracted answer is marked inside its passage; the record pair names its asset.
    assert "<mark>Hydraulic pressure should be 180 bar in normal operation.</mark>" in page
    assert "Asset P-4" in page
    pair = QaPair.objects.filter(
        dataset=dataset, source_kind="asset", record_code="P-4", question__contains="Where"
    ).get()
    prefix = str(pair.pk)
    client.post(
        _url("dataset-pair", org, pk=pair.pk), {f"{prefix}-question": "Where is P-4?", f"{prefix}-answer": "Hall B."}
    )
    pair.refresh_from_db()
    assert (pair.question, pair.answer, pair.edited) == ("Where is P-4?", "Hall B.", True)
    other = QaPair.objects.filter(dataset=dataset).exclude(pk=pair.pk).first()
    client.post(_url("dataset-pair", org, pk=other.pk), {"delete": "1"})
    assert not QaPair.objects.filter(pk=other.pk).exists()
    started = client.post(_url("dataset-fine-tune", org, pk=dataset.pk))
    job = FineTuningJob.objects.get(organization=org)
    assert started["Location"] == _url("finetuning-job", org, pk=job.pk)
    assert "Hall B." in Path(job.training_file.path).read_text()


def test_nothing_to_build_from_is_shown_on_the_form(org):
    client = _client(org.memberships.get(role=Role.OWNER).user)
    response = client.post(_url("datasets", org), {"name": "empty", "documents": "on"})
    assert response.status_code == 400 and b"No question-answer pair could be made" in response.content
    assert not QaDataset.objects.filter(organization=org).exists()


def test_a_viewer_reads_but_cannot_build_edit_or_fine_tune(factory, other_org):
    org = factory
    owner = _client(org.memberships.get(role=Role.OWNER).user)
    owner.post(_url("datasets", org), {"name": "v1", "documents": "on"})
    dataset = QaDataset.objects.get(organization=org)
    pair = dataset.pairs.first()
    viewer = _client(builders.add_member(org, Role.VIEWER))
    dataset_page = viewer.get(_url("dataset", org, pk=dataset.pk))
    assert dataset_page.status_code == 200 and b"dataset-fine-tune" not in dataset_page.content
    assert viewer.post(_url("datasets", org), {"name": "x", "documents": "on"}).status_code == 403
    assert viewer.post(_url("dataset-pair", org, pk=pair.pk), {"delete": "1"}).status_code == 403
    assert viewer.post(_url("dataset-fine-tune", org, pk=dataset.pk)).status_code == 403
    assert QaPair.objects.filter(pk=pair.pk).exists() and QaDataset.objects.filter(organization=org).count() == 1
    # Another organisation's member gets 404 for our data set.
    stranger = _client(other_org.memberships.get(role=Role.OWNER).user)
    assert stranger.get(_url("dataset", other_org, pk=dataset.pk)).status_code == 404
