"""Data protection: the owner's export and deletion, the operator's undo, the erasure after the grace period, and
retention per data kind. Everything through the real services, PostgreSQL and Redis."""

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from automation.maintenance import services as maintenance
from automation.maintenance.models import Asset, Telemetry
from automation.maintenance.telemetry import telemetry_store
from billing.ledger import ledger_flush
from billing.models import Subscription, UsageEvent
from billing.services import subscription_for
from billing.usage import usage_record
from jobs.data_export import EXPORT_JOB_KIND, organization_export_job
from jobs.models import Job
from tenants import data_protection
from tenants.actor import Actor
from tenants.erasure import organization_deletion_cancel, organizations_erase_due
from tenants.models import ApiKey, AuditEvent, Membership, Organization, OrganizationDeletion
from tenants.retention import retention_enforce
from tenants.roles import ALL_SCOPES, Role
from tests.automation.maintenance.maintenance_api import run_job_here
from tests.builders import add_member, key_client, make_key, make_user, session_client

pytestmark = pytest.mark.django_db


def _owner(org):
    return org.memberships.get(role=Role.OWNER).user


def _world(org):
    """Rows of several apps: a member, a key, an asset with telemetry, usage in the ledger."""
    member = add_member(org, Role.MEMBER)
    key, plaintext = make_key(org)
    asset_type = maintenance.asset_type_create(
        organization=org, code="pump", channels=[{"name": "vibration", "unit": "mm/s"}]
    )
    asset = maintenance.asset_create(organization=org, code="P-1", asset_type=asset_type)
    channel = asset_type.channels.get()
    now = timezone.now()
    telemetry_store(
        rows=[(org.pk, asset.pk, channel.pk, now - timedelta(days=days), float(days)) for days in (1, 10, 400)]
    )
    subscription_for(organization=org)
    usage_record(organization_id=org.pk, meter="maintenance.model_runs", quantity=3, idempotency_key="dp-1")
    ledger_flush()
    return member, key, plaintext, asset


def test_every_organisation_owned_model_is_in_a_data_section():
    """Catches: an app adding a model that holds an organisation's rows without registering it, so that the export
    would leave it out and the erasure would leave it behind (or fail on its PROTECT)."""
    covered = {model for section in data_protection.sections() for model in section.models}
    owned = {
        model
        for model in apps.get_models()
        if any(f.is_relation and f.related_model is Organization for f in model._meta.concrete_fields)
    }
    assert owned - covered == set()
    # The billing records that law keeps are declared retained, and nothing else is.
    retained = {m._meta.label for s in data_protection.sections() if s.retained for m in s.models}
    assert {"billing.Invoice", "billing.UsageEvent"} <= retained
    assert "maintenance.Telemetry" not in retained


def test_owner_exports_everything_without_secrets(org):
    """Catches: an export that misses an app's data, leaks key hashes or signing salts, or is readable by others."""
    member, key, plaintext, _ = _world(org)
    admin = add_member(org, Role.ADMIN)
    assert session_client(admin).post(f"/api/v1/orgs/{org.slug}/data-exports").status_code == 403
    assert key_client(plaintext).post(f"/api/v1/orgs/{org.slug}/data-exports").status_code == 403
    assert session_client(member).get(f"/api/v1/orgs/{org.slug}/data-exports").status_code == 403

    owner = session_client(_owner(org))
    response = owner.post(f"/api/v1/orgs/{org.slug}/data-exports")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"], kind=EXPORT_JOB_KIND)
    not_yet = owner.get(f"/api/v1/orgs/{org.slug}/data-exports/{job.pk}/download")
    assert not_yet.status_code == 409 and not_yet.json()["error"]["code"] == "export_not_ready"

    assert run_job_here(job, organization_export_job.handler).status == Job.Status.SUCCEEDED
    download = owner.get(f"/api/v1/orgs/{org.slug}/data-exports/{job.pk}/download")
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    archive = zipfile.ZipFile(io.BytesIO(body))
    manifest = json.loads(archive.read("manifest.json"))
    names = set(archive.namelist())
    for section in ("members", "api_keys", "jobs", "telemetry", "maintenance", "invoices", "scheduling", "models"):
        assert section in manifest["sections"]
    assert manifest["entries"]["telemetry/maintenance.telemetry.jsonl"]["rows"] == 3
    assert manifest["entries"]["invoices/billing.usageevent.jsonl"]["rows"] == 1
    members = [json.loads(line) for line in archive.read("members/tenants.membership.jsonl").splitlines()]
    assert member.email in {m["email"] for m in members}
    keys = archive.read("api_keys/tenants.apikey.jsonl").decode()
    assert key.last_four in keys and key.key_hash not in keys and "key_hash" not in keys
    assert not any(b'"key_hash"' in archive.read(name) for name in names)
    assert AuditEvent.objects.filter(organization=org, action=AuditEvent.Action.DATA_EXPORT_DOWNLOADED).exists()


def test_only_the_owner_may_delete_and_must_confirm(org):
    """Catches: an admin, a member or an API key deleting the organisation, or a deletion without confirmation."""
    admin = add_member(org, Role.ADMIN)
    _, plaintext = make_key(org, scopes=ALL_SCOPES)
    url = f"/api/v1/orgs/{org.slug}/deletion"
    refused = session_client(admin).post(url, {"confirm": org.slug}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "owner_required"
    assert key_client(plaintext).post(url, {"confirm": org.slug}, format="json").status_code == 403
    wrong = session_client(_owner(org)).post(url, {"confirm": "not-it"}, format="json")
    assert wrong.status_code == 400 and "confirm" in wrong.json()["error"]["fields"]
    assert not OrganizationDeletion.objects.exists()
    org.refresh_from_db()
    assert org.is_active


def test_deletion_suspends_at_once_and_an_operator_can_undo_it(org):
    """Catches: keys that keep working after the owner deleted the organisation, and an undo that loses data."""
    _, plaintext = make_key(org)
    assert key_client(plaintext).get(f"/api/v1/orgs/{org.slug}/jobs").status_code == 200
    response = session_client(_owner(org)).post(
        f"/api/v1/orgs/{org.slug}/deletion", {"confirm": org.slug, "reason": "closing the plant"}, format="json"
    )
    assert response.status_code == 202, response.content
    deletion = OrganizationDeletion.objects.get(pk=response.json()["id"])
    assert deletion.erase_after - deletion.requested_at == timedelta(days=14)
    refused = key_client(plaintext).get(f"/api/v1/orgs/{org.slug}/jobs")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "organization_suspended"
    assert AuditEvent.objects.filter(organization=org, action=AuditEvent.Action.ORG_DELETION_REQUESTED).exists()
    # Within the grace period nothing is erased.
    assert organizations_erase_due(now=deletion.erase_after - timedelta(seconds=1)) == 0
    assert Membership.objects.filter(organization=org).exists()

    operator = make_user()
    organization_deletion_cancel(deletion=deletion, actor=Actor.system(organization=org, user=operator))
    assert key_client(plaintext).get(f"/api/v1/orgs/{org.slug}/jobs").status_code == 200
    # An undone request is never erased later.
    assert organizations_erase_due(now=deletion.erase_after + timedelta(days=1)) == 0
    assert ApiKey.objects.filter(organization=org).exists()


def test_erasure_after_the_grace_period_keeps_only_what_billing_law_keeps(
    org, other_org, tmp_path, settings, django_capture_on_commit_callbacks
):
    """Catches: an erasure that leaves an organisation's data behind, deletes invoices or the ledger, touches
    another organisation, or leaves the short name taken."""
    settings.DATA_EXPORT_STORE = tmp_path
    _world(org)
    _world(other_org)
    export_dir = tmp_path / str(org.pk)
    export_dir.mkdir()
    (export_dir / "old.zip").write_bytes(b"zip")
    slug = org.slug
    response = session_client(_owner(org)).post(f"/api/v1/orgs/{slug}/deletion", {"confirm": slug}, format="json")
    deletion = OrganizationDeletion.objects.get(pk=response.json()["id"])

    with django_capture_on_commit_callbacks(execute=True):
        assert organizations_erase_due(now=deletion.erase_after + timedelta(seconds=1)) == 1

    for section in data_protection.sections():
        for model in section.models:
            rows = model._default_manager.filter(**{section.organization_field: org.pk})
            if model is AuditEvent:
                assert set(rows.values_list("action", flat=True)) <= {
                    AuditEvent.Action.ORG_DELETION_REQUESTED,
                    AuditEvent.Action.ORG_ERASED,
                }
            elif not section.retained:
                assert not rows.exists(), model
    assert UsageEvent.objects.filter(organization=org).count() == 1
    assert Subscription.objects.filter(organization=org).exists()
    assert not export_dir.exists()
    org.refresh_from_db()
    assert org.slug != slug and not org.is_active and "Plant" not in org.name
    assert not AuditEvent.objects.filter(organization=org, ip_address__isnull=False).exists()
    deletion.refresh_from_db()
    assert deletion.status == OrganizationDeletion.Status.ERASED
    assert deletion.summary["telemetry"]["erased"]["maintenance.telemetry"] == 3
    # The other organisation is untouched, and the short name can be taken again.
    assert Telemetry.objects.filter(organization=other_org).count() == 3
    assert Membership.objects.filter(organization=other_org).count() == 2
    assert (
        session_client(make_user(verified=True))
        .post("/api/v1/orgs", {"name": "New", "slug": slug, "country": "DE", "region": "eu-central"}, format="json")
        .status_code
        == 201
    )


def test_retention_purges_only_what_is_older_than_the_organisations_period(org, other_org):
    """Catches: retention not enforced, enforced with the wrong organisation's period, or set by a non-owner."""
    _world(org)
    _world(other_org)
    owner = session_client(_owner(org))
    listed = owner.get(f"/api/v1/orgs/{org.slug}/retention").json()
    assert {"kind": "telemetry", "days": 365, "is_default": True}.items() <= next(
        p for p in listed if p["kind"] == "telemetry"
    ).items()
    member = session_client(add_member(org, Role.MEMBER))
    assert member.get(f"/api/v1/orgs/{org.slug}/retention").status_code == 200
    assert (
        member.put(f"/api/v1/orgs/{org.slug}/retention", {"kind": "telemetry", "days": 5}, format="json").status_code
        == 403
    )
    assert (
        owner.put(f"/api/v1/orgs/{org.slug}/retention", {"kind": "nothing", "days": 5}, format="json").status_code
        == 400
    )
    bad = owner.put(f"/api/v1/orgs/{org.slug}/retention", {"kind": "telemetry", "days": 0}, format="json")
    assert bad.status_code == 400
    changed = owner.put(f"/api/v1/orgs/{org.slug}/retention", {"kind": "telemetry", "days": 5}, format="json")
    assert changed.status_code == 200 and changed.json()["days"] == 5

    purged = retention_enforce()
    assert purged["telemetry"] == 3  # 10 and 400 days old here (5-day period), 400 days old there (365)
    assert Telemetry.objects.filter(organization=org).count() == 1
    assert Telemetry.objects.filter(organization=other_org).count() == 2
    assert AuditEvent.objects.filter(organization=org, action=AuditEvent.Action.RETENTION_CHANGED).count() == 1
    assert Asset.objects.filter(organization=org).exists()


def test_export_archives_expire_and_the_retention_job_removes_them(org, settings, tmp_path):
    """Catches: an export archive (all of an organisation's data) downloadable for ever, or left on disk."""
    settings.DATA_EXPORT_STORE = tmp_path
    settings.DATA_EXPORT_ARCHIVE_DAYS = 7
    owner = session_client(_owner(org))
    jobs = []
    for _ in range(2):
        job = Job.objects.get(pk=owner.post(f"/api/v1/orgs/{org.slug}/data-exports").json()["id"])
        assert run_job_here(job, organization_export_job.handler).status == Job.Status.SUCCEEDED
        jobs.append(job)
    old, fresh = jobs
    Job.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=7, minutes=1))
    old_path = tmp_path / str(org.pk) / f"{old.pk}.zip"
    assert old_path.is_file()

    expired = owner.get(f"/api/v1/orgs/{org.slug}/data-exports/{old.pk}/download")
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "export_expired"
    assert owner.get(f"/app/{org.slug}/data/exports/{old.pk}").status_code == 404  # the portal's door too

    assert retention_enforce()["data_exports"] == 1
    assert not old_path.exists()
    assert owner.get(f"/api/v1/orgs/{org.slug}/data-exports/{old.pk}/download").status_code == 410
    assert owner.get(f"/api/v1/orgs/{org.slug}/data-exports/{fresh.pk}/download").status_code == 200
    assert (tmp_path / str(org.pk) / f"{fresh.pk}.zip").is_file()
