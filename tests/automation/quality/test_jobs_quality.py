"""Simulated lines with causes the test wrote, through the API and a real worker on the `quality` queue: the
analysis names the drifting machine, the bad lot and the upstream cause, claims nothing on a healthy line, and
ranks a unit's failure from its traces; every analysis is metered once."""

from datetime import timedelta

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from billing.periods import period_containing
from billing.usage import usage_observed
from tests.automation.quality.quality_api import BASE, client_for, line_csvs, make_line, url
from tests.automation.quality.simulated import simulate
from tests.workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SCENARIOS = ("drift", "lot", "propagation", "healthy")
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_worker(
        queues="quality", name="quality", log_path=tmp_path_factory.mktemp("worker") / "worker.log"
    ) as process:
        yield process


def _upload(client, org, kind: str, content: bytes) -> dict:
    response = client.post(
        url(org, f"ingest/{kind}"),
        {"file": SimpleUploadedFile(f"{kind}.csv", content, content_type="text/csv")},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _analyse(client, org, body: dict) -> dict:
    response = client.post(url(org, "analyses"), body, format="json")
    assert response.status_code == 202, response.json()
    analysis_id = response.json()["id"]

    # The handler records the analysis before the runner marks its job finished, so wait for the job: it is the
    # last thing written.
    def finished():
        data = client.get(url(org, f"analyses/{analysis_id}")).json()
        job = client.get(f"/api/v1/orgs/{org.slug}/jobs/{data['job']}").json()
        return (data, job) if job["status"] in ("succeeded", "failed", "cancelled") else None

    data, job = wait_until(finished, timeout=180, interval=0.5, what=f"analysis {analysis_id}")
    assert job["status"] == "succeeded", job
    assert data["status"] == "succeeded", data
    return data


def test_line_analyses_find_the_written_causes_and_nothing_on_a_healthy_line(worker, org):
    """Catches: a drift, a bad lot or an upstream cause not ranked first by the job; a cause claimed on a healthy
    line; progress events or metering missing."""
    from django.test import override_settings

    from automation.quality import services
    from automation.quality.models import Alarm, WebhookDelivery

    make_line(org)
    client = client_for(org)
    with override_settings(QUALITY_WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        services.webhook_endpoint_create(
            organization=org, url="http://127.0.0.1:9/hooks", events=["quality.analysis.finished"]
        )
    for i, scenario in enumerate(SCENARIOS):
        files = line_csvs(simulate(scenario=scenario), prefix=f"{scenario}-", start=BASE + i * DAY)
        for kind in ("units", "steps", "inspections"):
            _upload(client, org, kind, files[kind])

    results = {}
    for i, scenario in enumerate(SCENARIOS):
        window = {"start": (BASE + i * DAY).isoformat(), "end": (BASE + (i + 1) * DAY).isoformat()}
        results[scenario] = _analyse(client, org, {"defect_code": "FIT-FAIL", "method": "line", **window})

    drift = results["drift"]
    assert drift["verdict"] == "cause_found", drift["message"]
    named = [c["name"] for c in drift["result"]["causes"][:3] if c["significant"]]
    assert "turn/T2" in named and "diameter" in named
    machine = next(c for c in drift["result"]["causes"] if c["name"] == "turn/T2")
    assert machine["rate_with"] > 3 * machine["rate_without"] and machine["p_adjusted"] < 0.001
    assert machine["change_point"] >= (BASE + timedelta(seconds=300 * 60)).isoformat()
    assert machine["affected_units"][0].startswith("drift-")

    lot = results["lot"]
    assert lot["verdict"] == "cause_found"
    assert (lot["result"]["causes"][0]["level"], lot["result"]["causes"][0]["name"]) == ("lot", "L042")

    propagation = results["propagation"]
    variables = [c for c in propagation["result"]["causes"] if c["level"] == "variable"]
    assert variables[0]["name"] == "spindle_speed"
    flatness = next(c for c in variables if c["name"] == "flatness")
    assert variables.index(flatness) > 0 and "spindle_speed" in flatness["explained_by"]

    healthy = results["healthy"]
    assert healthy["verdict"] in ("no_cause", "too_few_defects"), healthy["message"]
    assert not any(c["significant"] for c in healthy["result"]["causes"])

    events = client.get(f"/api/v1/orgs/{org.slug}/jobs/{drift['job']}/events").json()["results"]
    messages = [e["message"] for e in events]
    assert any("method line" in m for m in messages), messages
    used = usage_observed(organization_id=org.id, period=period_containing(timezone.now()))
    assert used.get("quality.analyses") == len(SCENARIOS)
    # Each finished analysis is announced to the subscribed endpoint; the drift raised an SPC alarm on T2's diameter.
    finished = WebhookDelivery.objects.filter(organization=org, event="quality.analysis.finished")
    assert sorted(d.payload["data"]["id"] for d in finished) == sorted(r["id"] for r in results.values())
    assert Alarm.objects.filter(organization=org, variable__name="diameter", machine__code="T2").exists()


def test_unit_analysis_ranks_the_variable_its_causes_do_not_explain(worker, org):
    """Catches: the per-unit (trace) method blaming the variable that merely followed its cause, or guessing
    when nothing left its healthy behaviour."""
    from automation.quality import services
    from automation.quality.models import ProcessVariable

    line = make_line(org)
    # command -> position: the position follows the command within a second on a healthy unit.
    station = line["stations"]["turn"]
    command = services.variable_create(organization=org, station=station, name="clamp_cmd")
    services.variable_create(organization=org, station=station, name="clamp_pos", causes=[command])
    line["characteristic"].affected_by.add(*ProcessVariable.objects.filter(name__in=["clamp_pos", "clamp_cmd"]))
    client = client_for(org)
    rng = np.random.default_rng(3)
    steps = ["unit,station,machine,ts,variable,value"]
    inspections = ["unit,characteristic,ts,value,defect_code"]
    for u in range(12):
        serial, start = f"C{u:03d}", BASE + timedelta(hours=u)
        failed = u >= 10
        t = 0.0
        for _ in range(8):
            t += 5 + rng.random()
            steps.append(f"{serial},turn,T1,{(start + timedelta(seconds=t)).isoformat()},clamp_cmd,1")
            steps.append(f"{serial},turn,T1,{(start + timedelta(seconds=t + 0.5)).isoformat()},clamp_pos,1")
            t += 5 + rng.random()
            steps.append(f"{serial},turn,T1,{(start + timedelta(seconds=t)).isoformat()},clamp_cmd,0")
            steps.append(f"{serial},turn,T1,{(start + timedelta(seconds=t + 0.5)).isoformat()},clamp_pos,0")
        if failed:  # the clamp opens on its own while commanded closed
            t += 5
            steps.append(f"{serial},turn,T1,{(start + timedelta(seconds=t)).isoformat()},clamp_cmd,1")
            steps.append(f"{serial},turn,T1,{(start + timedelta(seconds=t + 0.5)).isoformat()},clamp_pos,1")
            steps.append(f"{serial},turn,T1,{(start + timedelta(seconds=t + 2)).isoformat()},clamp_pos,0")
            t += 6
        end = (start + timedelta(seconds=t + 1)).isoformat()
        inspections.append(f"{serial},fit,{end},,{'FIT-FAIL' if failed else ''}")
    _upload(client, org, "steps", "\n".join(steps).encode() + b"\n")
    _upload(client, org, "inspections", "\n".join(inspections).encode() + b"\n")

    data = _analyse(
        client, org, {"defect_code": "FIT-FAIL", "method": "unit", "units": ["C010", "C011"], "window_seconds": 10}
    )
    assert data["verdict"] == "cause_found", data["message"]
    assert [u["unit"] for u in data["result"]["units"]] == ["C010", "C011"]
    for unit in data["result"]["units"]:
        assert unit["causes"][0]["name"] == "clamp_pos", unit
        assert unit["reference"] == "same machine" and unit["reference_units"] == 10
    assert data["result"]["causes"][0]["name"] == "clamp_pos"
