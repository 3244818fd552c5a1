"""The portal's data-protection page: owner-only export, retention and deletion, in every language."""

import pytest
from django.test import Client

from jobs.data_export import organization_export_job
from jobs.models import Job
from tenants.models import OrganizationDeletion
from tenants.roles import Role
from tests.automation.maintenance.maintenance_api import run_job_here
from tests.builders import add_member

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_owner_exports_sets_retention_and_deletes_others_are_refused(org):
    """Catches: an admin exporting or deleting through the portal, or the owner's buttons doing nothing."""
    owner = _client(org.memberships.get(role=Role.OWNER).user)
    admin = _client(add_member(org, Role.ADMIN))
    viewer = _client(add_member(org, Role.VIEWER))
    url = f"/app/{org.slug}/data"

    assert viewer.get(url).status_code == 403
    page = admin.get(url)
    assert page.status_code == 200 and b"Export all data" not in page.content.split(b"</h2>", 1)[1][:400]
    assert admin.post(url, {"action": "export"}).status_code == 403
    assert admin.post(url, {"action": "delete", "confirm": org.slug}).status_code == 403
    assert not Job.objects.filter(organization=org).exists()

    assert owner.post(url, {"action": "export"}).status_code == 302
    job = Job.objects.get(organization=org, kind="organization.export")
    run_job_here(job, organization_export_job.handler)
    assert admin.get(f"{url}/exports/{job.pk}").status_code == 403
    download = owner.get(f"{url}/exports/{job.pk}")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"

    assert owner.post(url, {"action": "retention", "kind": "telemetry", "days": "30"}).status_code == 302
    assert b'value="30"' in owner.get(url).content

    assert owner.post(url, {"action": "delete", "confirm": "wrong"}).status_code == 400
    assert owner.post(url, {"action": "delete", "confirm": org.slug}).status_code == 302
    assert OrganizationDeletion.objects.filter(organization=org, status="scheduled").exists()
    assert owner.get(url).status_code == 403  # suspended


@pytest.mark.parametrize(("language", "heading"), [("ko", "데이터 및 개인정보"), ("de", "Daten und Datenschutz")])
def test_page_is_translated(org, language, heading):
    owner = org.memberships.get(role=Role.OWNER).user
    owner.language = language
    owner.save(update_fields=["language"])
    assert heading in _client(owner).get(f"/app/{org.slug}/data").content.decode()
