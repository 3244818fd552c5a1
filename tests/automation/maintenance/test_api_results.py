"""Models, health, recommendations and work orders through the API, on a world built by the jobs' own handlers."""

import pytest

from automation.maintenance.models import AssetHealth, Recommendation, TrainedModel, WorkOrder
from automation.maintenance.signing import webhook_signature, webhook_signature_verify
from jobs.models import Job
from tests import builders
from tests.automation.maintenance.maintenance_api import client_for, trained_world, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org):
    return {"org": org, **trained_world(org)}


def test_training_and_scoring_leave_a_model_health_and_an_open_work_order(world):
    """Catches a job that succeeds without storing its model (with CV metrics), health or recommendation."""
    org = world["org"]
    client = client_for(org)
    [model] = client.get(url(org, "models")).json()["results"]
    assert model["is_current"] and model["asset_type"] == "pump"
    assert set(model["training_assets"]) == {"hist-1", "hist-2", "hist-3"}
    assert model["metrics"]["cv_rmse"] > 0 and 0 <= model["metrics"]["band_coverage"] <= 1
    assert "artefact" not in model

    [health] = client.get(url(org, "health"), {"asset": "live-1"}).json()["results"]
    assert 0 <= health["health_score"] <= 100
    assert health["rul_low"] <= health["rul_cycles"] <= health["rul_high"]
    assert health["rul_cycles"] < 30, "scored two cycles before its failure"

    [recommendation] = client.get(url(org, "recommendations")).json()["results"]
    assert recommendation["asset"] == "live-1" and recommendation["action"] in ("inspect", "replace")
    assert recommendation["explanation_status"] == "pending" and recommendation["explanation"] == ""
    [work_order] = client.get(url(org, "work-orders"), {"status": "open"}).json()["results"]
    assert work_order["recommendation"]["id"] == recommendation["id"]

    job = Job.objects.get(pk=world["score_job"].pk)
    assert job.result["scored"] == 1 and job.result["recommendations"] == [recommendation["id"]]


def test_scoring_again_does_not_repeat_an_open_recommendation(world):
    """Catches hourly scoring filling the work-order list with copies of the same advice."""
    from automation.maintenance import services
    from automation.maintenance.modeling import score_execute
    from tests.automation.maintenance.maintenance_api import run_job_here

    org = world["org"]
    job = services.scoring_start(organization=org, asset_type=world["asset_type"], actor=builders.owner_actor(org))
    assert run_job_here(job, score_execute).status == "succeeded"
    assert AssetHealth.objects.filter(asset=world["live"]).count() == 2
    assert Recommendation.objects.filter(asset=world["live"]).count() == 1


def test_work_order_state_machine(world):
    """Catches illegal transitions (closing twice, acknowledging a closed order) and a viewer changing state."""
    org = world["org"]
    client = client_for(org)
    work_order = WorkOrder.objects.get(organization=org)
    base = url(org, f"work-orders/{work_order.pk}")

    viewer = builders.session_client(builders.add_member(org, "viewer"))
    assert viewer.post(f"{base}/acknowledge").status_code == 403

    acknowledged = client.post(f"{base}/acknowledge")
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["acknowledged_by"].startswith("key ")
    again = client.post(f"{base}/acknowledge")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"

    closed = client.post(f"{base}/close", {"resolution": "Bearing replaced."}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["resolution"] == "Bearing replaced."
    assert client.post(f"{base}/close").status_code == 409
    assert client.post(f"{base}/acknowledge").status_code == 409
    work_order.refresh_from_db()
    assert work_order.status == "closed" and work_order.closed_at >= work_order.acknowledged_at


def test_open_work_order_can_be_closed_directly_and_results_are_not_writable(world):
    """Catches a state machine that forces acknowledgement first, and writable result endpoints."""
    org = world["org"]
    client = client_for(org)
    work_order = WorkOrder.objects.get(organization=org)
    assert client.post(url(org, f"work-orders/{work_order.pk}/close")).json()["status"] == "closed"
    health = AssetHealth.objects.filter(organization=org).first()
    assert client.patch(url(org, f"health/{health.pk}"), {"health_score": 100}, format="json").status_code == 405
    model = TrainedModel.objects.get(organization=org)
    assert client.delete(url(org, f"models/{model.pk}")).status_code == 405


def test_another_tenant_sees_none_of_the_results(world, other_org):
    """Catches result lists or actions that are not scoped to the caller's organisation."""
    org = world["org"]
    stranger = client_for(other_org)
    for path in ("models", "health", "anomalies", "recommendations", "work-orders", "assets", "events"):
        assert stranger.get(url(other_org, path)).json()["results"] == [], path
        assert stranger.get(url(org, path)).status_code == 404, path
    work_order = WorkOrder.objects.get(organization=org)
    assert stranger.post(url(other_org, f"work-orders/{work_order.pk}/acknowledge")).status_code == 404
    assert stranger.post(url(other_org, "models/score"), {"asset_type": "pump"}, format="json").status_code == 400
    work_order.refresh_from_db()
    assert work_order.status == "open"


def test_webhook_signature_verifies_and_rejects_tampering():
    """Catches a signature scheme a receiver cannot check: wrong body, wrong secret, or a stale timestamp."""
    body = b'{"type":"recommendation.created"}'
    header = webhook_signature(secret="whsec_test", body=body, timestamp=1_700_000_000)
    assert webhook_signature_verify(secret="whsec_test", header=header, body=body, now=1_700_000_010)
    assert not webhook_signature_verify(secret="whsec_test", header=header, body=body + b" ", now=1_700_000_010)
    assert not webhook_signature_verify(secret="whsec_other", header=header, body=body, now=1_700_000_010)
    assert not webhook_signature_verify(secret="whsec_test", header=header, body=body, now=1_700_001_000)
    assert not webhook_signature_verify(secret="whsec_test", header="v1=abc", body=body)


def test_periodic_scoring_enqueues_one_job_per_trained_type_and_never_piles_up(world, settings):
    """Catches a beat task that floods the queue (a job per tick while one still waits) or never expires."""
    from automation.maintenance.services import scoring_enqueue_due

    entry = settings.CELERY_BEAT_SCHEDULE["maintenance-enqueue-scoring"]
    assert entry["task"] == "maintenance.enqueue_scoring"
    assert entry["options"]["expires"] == pytest.approx(1.5 * entry["schedule"])
    assert scoring_enqueue_due() == 1
    assert scoring_enqueue_due() == 0, "a scoring job is still queued"
    queued = Job.objects.get(organization=world["org"], kind="maintenance.score", status="queued")
    assert queued.params["asset_type_id"] == str(world["asset_type"].pk) and queued.requested_by_label == "system"


def test_admin_lists_and_shows_every_maintenance_model(world, client, django_user_model):
    """Catches an admin page that crashes (a bad list_display, the model bytes loaded into a form) or lets an
    operator edit what devices sent or jobs computed."""
    from django.contrib import admin
    from django.urls import reverse

    from automation.maintenance import models

    operator = django_user_model.objects.create_superuser(email="ops@example.com", password="x" * 12)
    client.force_login(operator)
    for model in (
        models.AssetType,
        models.Asset,
        models.Telemetry,
        models.AssetEvent,
        models.TrainedModel,
        models.AssetHealth,
        models.Anomaly,
        models.Recommendation,
        models.WorkOrder,
        models.IngestionKey,
        models.WebhookEndpoint,
        models.WebhookDelivery,
    ):
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        assert client.get(reverse(f"{name}_changelist")).status_code == 200, model
        instance = model.objects.filter(organization=world["org"]).first()
        assert client.get(reverse(f"{name}_change", args=[instance.pk])).status_code == 200, model
        if model in (models.Telemetry, models.TrainedModel, models.AssetHealth, models.WorkOrder):
            assert not admin.site._registry[model].has_change_permission(None), model
