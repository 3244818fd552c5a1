"""Operators' admin: organisations with filters and suspend/reactivate, key revocation, jobs, read-only audit."""

import pytest

import tests.jobs.sample_jobs  # noqa: F401
from jobs.models import Job
from jobs.services import job_create
from tenants.models import AuditEvent, Organization, User
from tests import builders

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = User.objects.create_superuser(email="ops@lightsout.example", password=builders.PASSWORD)
    client.force_login(operator)
    return client


def test_organisation_list_searches_and_filters(operator_client, org):
    builders.make_org(region="us-east")
    page = operator_client.get("/admin/tenants/organization/?region__exact=eu-central&q=" + org.slug)
    assert page.status_code == 200 and org.slug in page.content.decode()
    detail = operator_client.get(f"/admin/tenants/organization/{org.pk}/change/")
    assert detail.status_code == 200 and "memberships" in detail.content.decode()


def test_suspend_and_reactivate_actions_are_audited(operator_client, org):
    _, plaintext = builders.make_key(org)
    response = operator_client.post("/admin/tenants/organization/", {"action": "suspend", "_selected_action": [org.pk]})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.status == Organization.Status.SUSPENDED
    assert builders.key_client(plaintext).get(f"/api/v1/orgs/{org.slug}").status_code == 403
    operator_client.post("/admin/tenants/organization/", {"action": "reactivate", "_selected_action": [org.pk]})
    org.refresh_from_db()
    assert org.is_active
    suspended = AuditEvent.objects.get(action=AuditEvent.Action.ORG_SUSPENDED)
    assert suspended.actor.email == "ops@lightsout.example"


def test_revoke_key_action(operator_client, org):
    key, plaintext = builders.make_key(org)
    operator_client.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert builders.key_client(plaintext).get(f"/api/v1/orgs/{org.slug}").status_code == 401


def test_job_cancel_and_retry_actions(operator_client, org):
    job = job_create(organization=org, kind="test.count", params={}, actor=builders.owner_actor(org))
    operator_client.post("/admin/jobs/job/", {"action": "cancel", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    operator_client.post("/admin/jobs/job/", {"action": "retry", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_audit_log_is_read_only_in_the_admin(operator_client, org):
    event = AuditEvent.objects.filter(organization=org).first()
    assert operator_client.get("/admin/tenants/auditevent/").status_code == 200
    assert operator_client.get("/admin/tenants/auditevent/add/").status_code == 403
    assert operator_client.post(f"/admin/tenants/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
