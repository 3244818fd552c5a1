"""The jobs API: list, retrieve, events and cancel, scoped to the organisation."""

import pytest

import tests.jobs.sample_jobs  # noqa: F401
from jobs import services
from jobs.models import Job
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db


def _job(org, **params):
    return services.job_create(organization=org, kind="test.count", params=params, actor=builders.owner_actor(org))


def test_list_filters_and_retrieve(org):
    first, second = _job(org, steps=1), _job(org, steps=2)
    services.job_cancel(job=first, actor=builders.owner_actor(org))
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    listed = client.get(f"/api/v1/orgs/{org.slug}/jobs").json()["results"]
    assert [j["id"] for j in listed] == [str(second.pk), str(first.pk)]  # newest first
    queued = client.get(f"/api/v1/orgs/{org.slug}/jobs?status=queued").json()["results"]
    assert [j["id"] for j in queued] == [str(second.pk)]
    detail = client.get(f"/api/v1/orgs/{org.slug}/jobs/{second.pk}").json()
    assert detail["kind"] == "test.count" and detail["status"] == "queued" and detail["params"] == {"steps": 2}


def test_cancelling_a_queued_job_is_immediate_and_a_finished_one_refuses(org):
    job = _job(org)
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    response = client.post(f"/api/v1/orgs/{org.slug}/jobs/{job.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/orgs/{org.slug}/jobs/{job.pk}/cancel")
    assert again.status_code == 400 and "already cancelled" in again.json()["error"]["message"]
    events = client.get(f"/api/v1/orgs/{org.slug}/jobs/{job.pk}/events").json()["results"]
    assert [e["message"] for e in events][-1].startswith("Cancelled by")


def test_a_suspended_organisation_cannot_queue_jobs(org):
    from django.core.exceptions import ValidationError

    from tenants.services import organization_suspend

    organization_suspend(organization=org, actor=builders.owner_actor(org), reason="test")
    with pytest.raises(ValidationError, match="suspended"):
        _job(org)
    assert not Job.objects.filter(organization=org).exists()


def test_retry_requeues_a_failed_job_keeping_its_history(org, django_capture_on_commit_callbacks):
    job = _job(org)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, error_code="x", error_message="boom", attempts=1)
    job.refresh_from_db()
    with django_capture_on_commit_callbacks() as dispatched:
        services.job_retry(job=job, actor=builders.owner_actor(org))
    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts) == (Job.Status.QUEUED, "", 0)
    assert len(dispatched) == 1  # one task sent, after commit
    assert job.events.filter(message__startswith="Retried by").exists()
