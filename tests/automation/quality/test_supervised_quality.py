"""Labelling analyses with their confirmed causes through the API, and the supervised ranking the job then adds
beside the unsupervised one once enough labelled history exists (jobs run by their own handler in this
process)."""

from datetime import timedelta

import pytest

from automation.quality import ingest
from automation.quality.analysis import analysis_execute
from automation.quality.models import Analysis
from jobs.models import Job
from tests import builders
from tests.automation.maintenance.maintenance_api import run_job_here
from tests.automation.quality.quality_api import BASE, client_for, line_csvs, make_line, url
from tests.automation.quality.simulated import simulate

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def _analyse(client, org, day: int) -> dict:
    window = {"start": (BASE + day * DAY).isoformat(), "end": (BASE + (day + 1) * DAY).isoformat()}
    response = client.post(url(org, "analyses"), {"defect_code": "FIT-FAIL", "method": "line", **window}, format="json")
    assert response.status_code == 202, response.json()
    job = run_job_here(Job.objects.get(pk=response.json()["job"]), analysis_execute)
    assert job.status == "succeeded", job.error_message
    return client.get(url(org, f"analyses/{response.json()['id']}")).json()


def test_labels_are_validated_and_stored_and_train_a_supervised_ranking(org):
    """Catches: a label naming something the analysis never ranked, a reader labelling, labels not reaching the
    ranking, the ranking not saying which ranking leads, or an analysis learning from a labelled analysis of
    the same units."""
    make_line(org)
    client = client_for(org)
    for day in range(7):
        files = line_csvs(simulate(scenario="lot", n=160, seed=day), prefix=f"d{day}-", start=BASE + day * DAY)
        for kind, content in files.items():
            ingest.ingest(organization=org, kind=kind, rows=ingest.rows_from_csv(kind=kind, content=content))

    first = _analyse(client, org, 0)
    assert first["result"]["ranking"] == "unsupervised" and "supervised" not in first["result"]
    refused = client.post(url(org, f"analyses/{first['id']}/label"), {"causes": ["L999"]}, format="json")
    assert refused.status_code == 400 and "'L999' is not among the ranked causes." in str(refused.json())
    _, plaintext = builders.make_key(org, scopes=["org:read"])
    reader = builders.key_client(plaintext)
    assert (
        reader.post(url(org, f"analyses/{first['id']}/label"), {"causes": ["L042"]}, format="json").status_code == 403
    )
    assert Analysis.objects.get(pk=first["id"]).confirmed_causes == []
    # Per-unit labels belong to `unit` analyses only.
    per_unit = client.post(
        url(org, f"analyses/{first['id']}/label"), {"unit": "d0-U00001", "causes": ["L042"]}, format="json"
    )
    assert per_unit.status_code == 400 and "is not a failed unit of this analysis" in str(per_unit.json())

    labelled = client.post(url(org, f"analyses/{first['id']}/label"), {"causes": ["L042"]}, format="json")
    assert labelled.status_code == 200 and labelled.json()["confirmed_causes"] == ["L042"]
    for day in range(1, 5):
        analysis = _analyse(client, org, day)
        assert analysis["result"]["ranking"] == "unsupervised"  # fewer than 5 labelled analyses so far
        assert (
            client.post(url(org, f"analyses/{analysis['id']}/label"), {"causes": ["L042"]}, format="json").status_code
            == 200
        )

    sixth = _analyse(client, org, 5)
    supervised = sixth["result"]["supervised"]
    assert sixth["result"]["ranking"] == "supervised" and supervised["trained_on"] == 5
    assert supervised["causes"][0]["name"] == "L042"
    assert {c["name"] for c in supervised["causes"]} == {c["name"] for c in sixth["result"]["causes"]}
    assert supervised["causes"][0]["unsupervised_rank"] >= 1

    # Over day 0 again: the labelled analysis of the same window is not history for it, so 4 remain: too few.
    again = _analyse(client, org, 0)
    assert again["result"]["ranking"] == "unsupervised"
    # Removing a label takes the analysis out of the history.
    cleared = client.post(url(org, f"analyses/{first['id']}/label"), {"causes": []}, format="json")
    assert cleared.json()["confirmed_causes"] == [] and cleared.json()["labelled_at"] is None
