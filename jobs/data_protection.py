"""The jobs app's data for export and erasure (see `tenants.data_protection`): jobs, their events and results,
and the organisation's export archives (erased with it, never exported into each other, and removed by the retention
job `DATA_EXPORT_ARCHIVE_DAYS` after their job finished)."""

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction

from tenants.data_protection import register_expiry, register_section

from .models import Job, JobEvent


def export_store(organization_id) -> Path:
    return Path(settings.DATA_EXPORT_STORE) / str(organization_id)


def _remove_exports(organization) -> None:
    directory = export_store(organization.pk)
    transaction.on_commit(lambda: shutil.rmtree(directory, ignore_errors=True))


def export_expires_at(job: Job) -> datetime | None:
    """When an export job's archive stops being downloadable (None while the job has not finished)."""
    if job.finished_at is None:
        return None
    return job.finished_at + timedelta(days=settings.DATA_EXPORT_ARCHIVE_DAYS)


def exports_expire(now: datetime) -> int:
    """Remove the archives whose time is up; returns how many went. The job rows stay (the audit trail)."""
    from .data_export import EXPORT_JOB_KIND

    cutoff = now - timedelta(days=settings.DATA_EXPORT_ARCHIVE_DAYS)
    removed = 0
    expired = Job.objects.filter(kind=EXPORT_JOB_KIND, finished_at__lt=cutoff).values_list("organization_id", "pk")
    for organization_id, pk in expired.iterator():
        path = export_store(organization_id) / f"{pk}.zip"
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def register() -> None:
    register_section("jobs", app_label="jobs", models=[JobEvent, Job], before_erase=_remove_exports)
    register_expiry("data_exports", remove=exports_expire, app_label="jobs")
