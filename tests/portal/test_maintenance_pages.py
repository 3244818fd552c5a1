"""The predictive-maintenance pages through Django's test client and the real services: registering asset types
and assets, telemetry and history uploads (line-numbered errors, all or nothing), training and scoring jobs (run
by the jobs' own handlers in this process) up to a recommendation with its work order, roles and isolation."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from automation.maintenance.modeling import score_execute, train_execute
from automation.maintenance.models import (
    Asset,
    AssetEvent,
    AssetType,
    Recommendation,
    Telemetry,
    WorkOrder,
)
from jobs.models import Job
from tenants.roles import Role
from tests import builders
from tests.automation.maintenance.maintenance_api import run_job_here, trained_world

DATA = Path(__file__).resolve().parent / "data" / "maintenance"
pytestmark = pytest.mark.django_db


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"portal:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _client(org, role: str):
    user = org.memberships.get(role=Role.OWNER).user if role == Role.OWNER else builders.add_member(org, role)
    return builders.session_client(user)


def _upload(name: str, content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(
        name, content if content is not None else (DATA / name).read_bytes(), content_type="text/csv"
    )


def _register_pump_type(client, org) -> AssetType:
    response = client.post(
        _url("maintenance-asset-type-create", org),
        {
            "type-code": "pump",
            "type-name": "Centrifugal pump",
            "type-cycle_seconds": 3600,
            "type-channels": (DATA / "channels.txt").read_text(),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    return AssetType.objects.get(organization=org, code="pump")


def _register_asset(client, org, code: str = "pump-live"):
    response = client.post(
        _url("maintenance-asset-create", org), {"asset-code": code, "asset-asset_type": "pump", "asset-site": "Hall 2"}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def test_register_a_type_and_an_asset_upload_telemetry_and_see_it_charted(org):
    """Catches forms that do not reach the services, channel lines read wrongly, or an asset page without its
    telemetry per channel."""
    client = _client(org, Role.MEMBER)
    page = client.get(_url("maintenance", org)).content.decode()
    for label in ("Type code", "Channels", "Asset code", "Telemetry CSV file", "History file"):
        assert f">{label}</label>" in page, label

    asset_type = _register_pump_type(client, org)
    channels = {c.name: c for c in asset_type.channels.all()}
    assert list(channels) == ["vibration", "temperature", "pressure", "current", "flow", "humidity"]
    vibration = channels["vibration"]
    assert (vibration.unit, vibration.min_value, vibration.max_value, vibration.component, vibration.is_setting) == (
        "mm/s",
        -5,
        10,
        "spindle bearing",
        False,
    )

    response = _register_asset(client, org)
    asset = Asset.objects.get(organization=org, code="pump-live")
    assert response["Location"] == _url("maintenance-asset", org, pk=asset.pk)
    assert asset.site == "Hall 2" and asset.asset_type == asset_type

    response = client.post(
        _url("maintenance-telemetry", org), {"telemetry-file": _upload("pump_live.csv")}, follow=True
    )
    assert response.status_code == 200
    assert "384 readings stored for 1 assets" in response.content.decode()
    assert Telemetry.objects.filter(asset=asset).count() == 64 * 6

    html = client.get(_url("maintenance-asset", org, pk=asset.pk)).content.decode()
    assert html.count('<figure class="chart">') == 6
    assert "vibration (mm/s)" in html and "2025-01-06 00:00" in html
    assert 'id="recommendations"' in html and "Not scored yet." in html

    # Failure history: a future moment is refused by the service, a past one recorded.
    later = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    refused = client.post(_url("maintenance-asset-event", org, pk=asset.pk), {"kind": "failure", "occurred_at": later})
    assert refused.status_code == 400 and "Record events once they have happened." in refused.content.decode()
    done = client.post(
        _url("maintenance-asset-event", org, pk=asset.pk),
        {"kind": "repair", "occurred_at": "2025-01-08T10:00", "component": "seal"},
    )
    assert done.status_code == 302
    assert AssetEvent.objects.get(asset=asset).component == "seal"


def test_bad_channel_lines_are_named_by_line_and_nothing_is_registered(org):
    client = _client(org, Role.OWNER)
    response = client.post(
        _url("maintenance-asset-type-create", org),
        {
            "type-code": "pump",
            "type-cycle_seconds": 3600,
            "type-channels": "vibration, mm/s, 0, 10\ntemperature, degC, low, 200\nflow, l/min, 0, 100, , maybe\n",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Line 2: the minimum &#x27;low&#x27; is not a number." in html
    assert "Line 3: setting is yes or no, not &#x27;maybe&#x27;." in html
    response = client.post(
        _url("maintenance-asset-type-create", org),
        {"type-code": "pump", "type-cycle_seconds": 3600, "type-channels": "vibration, mm/s, 10, 0\n"},
    )
    assert response.status_code == 400
    assert "Line 1: The minimum must not be above the maximum." in response.content.decode()
    assert not AssetType.objects.filter(organization=org).exists()


def test_bad_telemetry_is_named_by_line_and_nothing_is_stored(org):
    """Catches an upload that stores the good lines of a rejected file, or errors without their line."""
    client = _client(org, Role.OWNER)
    _register_pump_type(client, org)
    _register_asset(client, org)
    content = (
        b"asset,channel,ts,value\n"
        b"pump-live,vibration,2025-01-06T00:00:00Z,1.0\n"
        b"pump-live,vibration,2025-01-06T01:00:00Z,99\n"
        b"pump-live,noise,2025-01-06T01:00:00Z,3\n"
        b"ghost,vibration,2025-01-06T01:00:00Z,1\n"
    )
    response = client.post(_url("maintenance-telemetry", org), {"telemetry-file": _upload("bad.csv", content)})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="telemetry-errors"' in html and "Nothing was stored." in html
    assert "<strong>line 3</strong>: value 99 is above vibration&#x27;s expected maximum 10 mm/s" in html
    assert "<strong>line 4</strong>: asset pump-live (pump) has no channel &#x27;noise&#x27;" in html
    assert "<strong>line 5</strong>: no asset with the code &#x27;ghost&#x27;" in html
    assert not Telemetry.objects.filter(organization=org).exists()


def test_from_history_to_a_recommendation_with_live_jobs_and_work_order_actions(org):
    """The shortest path to a recommendation, as the end-to-end test drives it: a type, the run-to-failure
    history, the live pump and its telemetry, training, scoring. Catches a broken job start, a job page that
    never stops polling, or an asset page without its recommendation, charts and work-order actions."""
    client = _client(org, Role.MEMBER)
    _register_pump_type(client, org)
    response = client.post(
        _url("maintenance-history", org),
        {"history-asset_type": "pump", "history-file": _upload("pump_history.csv"), "history-format": "csv"},
        follow=True,
    )
    assert "History imported: 3 new assets" in response.content.decode()
    assert AssetEvent.objects.filter(organization=org, kind="failure").count() == 3
    _register_asset(client, org)
    assert (
        client.post(_url("maintenance-telemetry", org), {"telemetry-file": _upload("pump_live.csv")}).status_code == 302
    )

    started = client.post(_url("maintenance-train", org), {"asset_type": "pump"})
    job = Job.objects.get(organization=org, kind="maintenance.train")
    assert started.status_code == 302 and started["Location"] == _url("maintenance-job", org, pk=job.pk)
    live = client.get(started["Location"], HTTP_X_FRAGMENT="1").content.decode()
    assert live.lstrip().startswith('<div id="job-live" data-poll=') and 'data-status="queued"' in live
    assert run_job_here(job, train_execute).status == Job.Status.SUCCEEDED
    done = client.get(started["Location"], HTTP_X_FRAGMENT="1").content.decode()
    assert "data-poll=" not in done and 'data-status="succeeded"' in done and "Run-to-failure histories" in done

    page = client.get(_url("maintenance", org)).content.decode()
    assert "Score assets" in page and "Trained" in page
    started = client.post(_url("maintenance-score", org), {"asset_type": "pump"})
    job = Job.objects.get(organization=org, kind="maintenance.score")
    assert run_job_here(job, score_execute).status == Job.Status.SUCCEEDED
    result = client.get(started["Location"]).content.decode()
    assert 'id="scored"' in result and "pump-live" in result

    asset = Asset.objects.get(organization=org, code="pump-live")
    recommendation = Recommendation.objects.get(asset=asset)
    html = client.get(_url("maintenance-asset", org, pk=asset.pk)).content.decode()
    assert "appear from the second scoring on" in html and "Health index (0-100)" not in html
    client.post(_url("maintenance-score", org), {"asset_type": "pump"})
    job = Job.objects.filter(organization=org, kind="maintenance.score", status="queued").get()
    assert run_job_here(job, score_execute).status == Job.Status.SUCCEEDED
    assert Recommendation.objects.filter(asset=asset).count() == 1  # not repeated while its work order is open
    html = client.get(_url("maintenance-asset", org, pk=asset.pk)).content.decode()
    recommendations = html.split('id="recommendations"', 1)[1].split("</section>", 1)[0]
    assert f"{recommendation.action.capitalize()}: {recommendation.component}" in recommendations
    assert recommendation.reason.split(".")[0] in recommendations
    assert "Explanation pending" in recommendations and "Acknowledge" in recommendations
    assert "Health index (0-100)" in html and "Remaining useful life (cycles)" in html
    assert 'id="health-score"' in html

    work_order = recommendation.work_order
    listed = client.get(_url("maintenance", org)).content.decode()
    assert _url("maintenance-work-order", org, pk=work_order.pk) in listed
    response = client.post(
        _url("maintenance-work-order", org, pk=work_order.pk), {"action": "acknowledge", "back": "asset"}
    )
    assert response["Location"] == _url("maintenance-asset", org, pk=asset.pk)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.ACKNOWLEDGED and work_order.acknowledged_by
    again = client.post(_url("maintenance-work-order", org, pk=work_order.pk), {"action": "acknowledge"}, follow=True)
    assert "The work order is acknowledged" in again.content.decode()
    client.post(
        _url("maintenance-work-order", org, pk=work_order.pk), {"action": "close", "resolution": "Bearing replaced"}
    )
    work_order.refresh_from_db()
    assert (work_order.status, work_order.resolution) == (WorkOrder.Status.CLOSED, "Bearing replaced")


def test_scoring_without_a_model_says_so(org):
    client = _client(org, Role.OWNER)
    _register_pump_type(client, org)
    response = client.post(_url("maintenance-score", org), {"asset_type": "pump"}, follow=True)
    assert "pump has no trained model yet; train one first." in response.content.decode()
    assert not Job.objects.filter(organization=org).exists()


@pytest.fixture
def world(org):
    return trained_world(org)


def test_a_viewer_reads_every_page_but_cannot_write_or_start_jobs(org, world):
    """Catches a portal action that forgets the scope its API counterpart needs."""
    viewer = _client(org, Role.VIEWER)
    work_order = WorkOrder.objects.get(organization=org)
    for url in (
        _url("maintenance", org),
        _url("maintenance-asset", org, pk=world["live"].pk),
        _url("maintenance-job", org, pk=world["score_job"].pk),
    ):
        response = viewer.get(url)
        assert response.status_code == 200, url
        assert "Acknowledge" not in response.content.decode() and "Train a model" not in response.content.decode()
    before = (AssetType.objects.count(), Asset.objects.count(), Telemetry.objects.count(), Job.objects.count())
    for name, kwargs, data in [
        ("maintenance-asset-type-create", {}, {"type-code": "fan", "type-cycle_seconds": 60, "type-channels": "rpm"}),
        ("maintenance-asset-create", {}, {"asset-code": "x", "asset-asset_type": "pump"}),
        ("maintenance-telemetry", {}, {"telemetry-file": _upload("pump_live.csv")}),
        ("maintenance-history", {}, {"history-asset_type": "pump", "history-file": _upload("pump_history.csv")}),
        ("maintenance-train", {}, {"asset_type": "pump"}),
        ("maintenance-score", {}, {"asset_type": "pump"}),
        ("maintenance-asset-event", {"pk": world["live"].pk}, {"kind": "repair", "occurred_at": "2025-01-08T10:00"}),
        ("maintenance-work-order", {"pk": work_order.pk}, {"action": "close"}),
        ("maintenance-job-cancel", {"pk": world["score_job"].pk}, {}),
    ]:
        response = viewer.post(_url(name, org, **kwargs), data)
        assert response.status_code == 403, name
    assert (AssetType.objects.count(), Asset.objects.count(), Telemetry.objects.count(), Job.objects.count()) == before
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.OPEN


def test_another_organisations_assets_jobs_and_work_orders_do_not_exist(org, other_org, world):
    """Catches a page or action that looks an object up without the organisation."""
    stranger = _client(other_org, Role.OWNER)
    work_order = WorkOrder.objects.get(organization=org)
    for name, pk in (("maintenance-asset", world["live"].pk), ("maintenance-job", world["train_job"].pk)):
        assert stranger.get(_url(name, other_org, pk=pk)).status_code == 404, name
        assert stranger.get(_url(name, org, pk=pk)).status_code == 404, name
    for name, pk, data in (
        ("maintenance-work-order", work_order.pk, {"action": "close"}),
        ("maintenance-asset-event", world["live"].pk, {"kind": "repair", "occurred_at": "2025-01-08T10:00"}),
        ("maintenance-job-cancel", world["score_job"].pk, {}),
    ):
        assert stranger.post(_url(name, other_org, pk=pk), data).status_code == 404, name
    # Another organisation's asset type is not theirs to train or score, by code either.
    assert stranger.post(_url("maintenance-train", other_org), {"asset_type": "pump"}).status_code == 404
    assert (
        stranger.post(
            _url("maintenance-asset-create", other_org), {"asset-code": "x", "asset-asset_type": "pump"}
        ).status_code
        == 400
    )
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.OPEN
    assert not Job.objects.filter(organization=other_org).exists()
