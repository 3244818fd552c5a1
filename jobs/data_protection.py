"""The jobs app's data for export and erasure (see `tenants.data_protection`): jobs, their events and results,
and the organisation's export archives (erased with it, never exported into each other)."""

import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from tenants.data_protection import register_section

from .models import Job, JobEvent


def export_store(organization_id) -> Path:
    return Path(settings.DATA_EXPORT_STORE) / str(organization_id)


def _remove_exports(organization) -> None:
    directory = export_store(organization.pk)
    transaction.on_commit(lambda: shutil.rmtree(directory, ignore_errors=True))


def register() -> None:
    register_section("jobs", app_label="jobs", models=[JobEvent, Job], before_erase=_remove_exports)
