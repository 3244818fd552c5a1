"""An organisation's data export as a job, and its endpoints (owner only).

`POST /api/v1/orgs/{slug}/data-exports` queues an `organization.export` job that writes every registered section
(`tenants.data_protection`) into one zip archive (`tenants.data_export`); `GET .../data-exports/{id}/download`
sends it once the job has succeeded, for `DATA_EXPORT_ARCHIVE_DAYS` after that (then `410 export_expired`, and the
retention job removes the file). Requests and downloads are audited.
"""

import hashlib

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from foundation.api.downloads import file_download
from foundation.api.errors import ApiError
from tenants.actor import Actor
from tenants.audit import audit_record
from tenants.data_export import organization_export_write
from tenants.data_protection_api import OwnerOnlyMixin
from tenants.models import AuditEvent, Organization

from . import services
from .data_protection import export_expires_at, export_store
from .models import Job
from .queues import Queue
from .runner import JobContext, job_task
from .serializers import JobSerializer

EXPORT_JOB_KIND = "organization.export"


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@job_task(kind=EXPORT_JOB_KIND, queue=Queue.DEFAULT, time_limit_s=2 * 60 * 60)
def organization_export_job(ctx: JobContext) -> dict:
    organization = Organization.objects.get(pk=ctx.organization_id)
    destination = export_store(organization.pk) / f"{ctx.job.pk}.zip"
    manifest = organization_export_write(
        organization=organization,
        destination=destination,
        progress=lambda percent, section: ctx.progress(min(percent, 99), f"Exported {section}."),
    )
    entries = manifest["entries"]
    return {
        "archive": destination.name,
        "bytes": destination.stat().st_size,
        "sha256": _sha256(destination),
        "rows": sum(e.get("rows", 0) for e in entries.values()),
        "files": sum(1 for e in entries.values() if "rows" not in e),
    }


def data_export_start(*, organization: Organization, actor: Actor) -> Job:
    job = services.job_create(organization=organization, kind=EXPORT_JOB_KIND, params={}, actor=actor)
    audit_record(action=AuditEvent.Action.DATA_EXPORT_REQUESTED, target=job, **actor.audit_kwargs())
    return job


def data_export_archive(*, job: Job):
    """The finished archive of an export job; raises `ApiError` when there is none (yet, or any more)."""
    if job.kind != EXPORT_JOB_KIND or job.status != Job.Status.SUCCEEDED:
        raise ApiError(
            "This export has not succeeded (yet).", code="export_not_ready", status_code=status.HTTP_409_CONFLICT
        )
    path = export_store(job.organization_id) / f"{job.pk}.zip"
    expires_at = export_expires_at(job)
    if (expires_at is not None and expires_at <= timezone.now()) or not path.is_file():
        raise ApiError(
            "This export's archive has expired and was removed; start a new export.",
            code="export_expired",
            status_code=status.HTTP_410_GONE,
        )
    return path


class DataExportViewSet(OwnerOnlyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Exports of all the organisation's data, each a job; the owner downloads the archive when it has succeeded."""

    queryset = Job.objects.filter(kind=EXPORT_JOB_KIND)
    serializer_class = JobSerializer

    @extend_schema(request=None, responses={202: JobSerializer})
    def create(self, request, *args, **kwargs):
        job = data_export_start(organization=self.organization, actor=self.actor)
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(description="The archive (zip)."),
            409: OpenApiResponse(description="The export has not succeeded (yet)."),
            410: OpenApiResponse(description="The archive has expired (`DATA_EXPORT_ARCHIVE_DAYS`) and was removed."),
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request, *args, **kwargs):
        job = self.get_object()
        path = data_export_archive(job=job)
        audit_record(action=AuditEvent.Action.DATA_EXPORT_DOWNLOADED, target=job, **self.actor.audit_kwargs())
        filename = f"lightsout-{self.organization.slug}-{job.created_at:%Y%m%d-%H%M%S}.zip"
        return file_download(request, path.open("rb"), filename=filename, content_type="application/zip")
