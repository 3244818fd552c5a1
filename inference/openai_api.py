"""OpenAI's files and fine-tuning APIs (/v1/files, /v1/fine_tuning/jobs), so integrators' SDK code works unchanged.

The organisation comes from the API key alone; another organisation's objects answer 404. Errors use OpenAI's
shape. These are control-plane writes (files, jobs), so they are Django views; the completion hot path is the
lean gateway (inference.gateway).
"""

from django.db.models import Q
from django.http import FileResponse
from rest_framework import exceptions, parsers, permissions, status
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from foundation.api.downloads import file_download
from jobs import services as job_services
from jobs.models import Job, JobEvent
from tenants.actor import Actor
from tenants.audit import client_ip
from tenants.authentication import ApiKeyAuthentication
from tenants.scoping import organization_suspended_error

from . import fine_tuning
from .gateway.errors import openai_error
from .models import FineTuningCheckpoint, FineTuningJob, TrainingFile

STATUS: dict[str, str] = {  # keyed by the stored value, which each Status member equals
    Job.Status.QUEUED: "queued",
    Job.Status.RUNNING: "running",
    Job.Status.SUCCEEDED: "succeeded",
    Job.Status.FAILED: "failed",
    Job.Status.CANCELLED: "cancelled",
}


def openai_exception_handler(exc, context):
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.db import InterfaceError, OperationalError

    from foundation.api.errors import REDIS_UNAVAILABLE
    from foundation.storage import storage_full

    if storage_full(exc):
        message = "There is no room to store this right now; nothing was stored. Retry later or contact support."
        return Response(
            openai_error(message, type="server_error", code="insufficient_storage"),
            status=status.HTTP_507_INSUFFICIENT_STORAGE,
        )
    away = (OperationalError, InterfaceError, *REDIS_UNAVAILABLE)
    if isinstance(exc, away):
        # The database or Redis is away (restart, fail-over): OpenAI's 503 shape with Retry-After, never a crash.
        code = "database_unavailable" if isinstance(exc, OperationalError | InterfaceError) else "service_unavailable"
        response = Response(
            openai_error("The service is temporarily unavailable; retry shortly.", type="server_error", code=code),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "5"
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    param, message = None, str(getattr(exc, "detail", exc))
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        param, messages = next(iter(exc.detail.items()))
        message = "\n".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
    elif isinstance(exc, exceptions.ValidationError):
        message = "\n".join(str(m) for m in exc.detail)
    kind = {
        401: "invalid_request_error",
        403: "permission_error",
        404: "invalid_request_error",
        429: "rate_limit_error",
    }.get(response.status_code, "invalid_request_error")
    code = exc.get_codes() if hasattr(exc, "get_codes") and isinstance(exc.get_codes(), str) else None
    if response.status_code == 401:
        code = "invalid_api_key"
    response.data = openai_error(message, type=kind, param=param, code=code)
    return response


class KeyHasScope(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        key = request.auth
        if key is None:
            raise exceptions.NotAuthenticated("Send `Authorization: Bearer lo_live_...`.")
        if not key.organization.is_active:
            raise organization_suspended_error(key.organization)
        needed = view.write_scope if request.method == "POST" else view.read_scope
        if needed not in key.scopes:
            raise exceptions.PermissionDenied(f"This API key lacks the `{needed}` scope.")
        return True


class JsonAlways(BaseContentNegotiation):
    """OpenAI's SDK asks file content with `Accept: application/binary`: answer errors in JSON regardless."""

    def select_parser(self, request, parsers):
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class OpenAIView(APIView):
    # OpenAI publishes these endpoints' contract; our OpenAPI document covers the control plane.
    schema = None
    content_negotiation_class = JsonAlways
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [KeyHasScope]
    read_scope = "inference"
    write_scope = "inference"

    def get_exception_handler(self):
        return openai_exception_handler

    @property
    def organization(self):
        return self.request.auth.organization

    @property
    def actor(self) -> Actor:
        return Actor.for_api_key(api_key=self.request.auth, ip_address=client_ip(self.request))

    def owned(self, model, pk):
        """The organisation's object or 404: another tenant's does not exist."""
        obj = model.objects.filter(organization=self.organization, pk=pk).first()
        if obj is None:
            raise exceptions.NotFound(f"No such object: {pk}")
        return obj

    def page(self, queryset, serialize, *, cursor=None):
        """OpenAI's cursor list: newest first, `limit` (1-100, default 20) and `after`, the id of the last object of
        the previous page exactly as this list returned it; `has_more` says whether another page follows.

        `cursor` turns a returned id back into a primary key (events are numbered `ftevent-<pk>`). The order is
        total (creation time, then primary key), so rows created in the same instant are neither skipped nor
        repeated. An `after` that names nothing in this list is refused: answering the first page again would send
        an SDK that follows `has_more` round in a loop.
        """
        try:
            limit = int(self.request.query_params.get("limit", 20))
        except ValueError:
            raise exceptions.ValidationError({"limit": ["limit must be an integer from 1 to 100."]}) from None
        if not 1 <= limit <= 100:
            raise exceptions.ValidationError({"limit": ["limit must be an integer from 1 to 100."]})
        after = self.request.query_params.get("after")
        if after:
            pk = cursor(after) if cursor is not None else after
            anchor = queryset.filter(pk=pk).values("pk", "created_at").first() if pk is not None else None
            if anchor is None:
                raise exceptions.ValidationError({"after": [f"`after` must be an id from this list; got {after!r}."]})
            queryset = queryset.filter(
                Q(created_at__lt=anchor["created_at"]) | Q(created_at=anchor["created_at"], pk__lt=anchor["pk"])
            )
        rows = list(queryset.order_by("-created_at", "-pk")[: limit + 1])
        data = [serialize(r) for r in rows[:limit]]
        body = {"object": "list", "data": data, "has_more": len(rows) > limit}
        if data:
            body["first_id"], body["last_id"] = data[0]["id"], data[-1]["id"]
        return Response(body)


def file_object(f: TrainingFile) -> dict:
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": int(f.created_at.timestamp()),
        "filename": f.filename,
        "purpose": f.purpose,
        "status": "processed",
        "status_details": None,
    }


class FileListView(OpenAIView):
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]
    write_scope = "org:write"

    def get(self, request):
        return self.page(TrainingFile.objects.filter(organization=self.organization), file_object)

    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise exceptions.ValidationError({"file": ["Attach the file as multipart field `file`."]})
        record = fine_tuning.training_file_upload(
            organization=self.organization, upload=upload, purpose=request.data.get("purpose", "")
        )
        return Response(file_object(record), status=status.HTTP_200_OK)


class FileDetailView(OpenAIView):
    def get(self, request, file_id):
        return Response(file_object(self.owned(TrainingFile, file_id)))

    def delete(self, request, file_id):
        record = self.owned(TrainingFile, file_id)
        fine_tuning.training_file_delete(training_file=record)
        return Response({"id": file_id, "object": "file", "deleted": True})


class FileContentView(OpenAIView):
    def get(self, request, file_id):
        record = self.owned(TrainingFile, file_id)
        return FileResponse(
            open(record.path, "rb"), content_type="application/jsonl", as_attachment=True, filename=record.filename
        )


def job_object(ft: FineTuningJob) -> dict:
    job = ft.job
    status_name = "validating_files" if job.status == Job.Status.RUNNING and ft.validating else STATUS[job.status]
    hyper = ft.hyperparameters
    return {
        "object": "fine_tuning.job",
        "id": ft.id,
        "model": ft.base_model.name,
        "created_at": int(ft.created_at.timestamp()),
        "finished_at": int(job.finished_at.timestamp()) if job.finished_at else None,
        "fine_tuned_model": ft.fine_tuned_model.name if ft.fine_tuned_model else None,
        "organization_id": str(ft.organization_id),
        "result_files": [],
        "status": status_name,
        "training_file": ft.training_file_id,
        "validation_file": ft.validation_file_id,
        # The values the job trains with: the caller's, and those chosen for it where it left them out.
        "hyperparameters": {k: hyper.get(k) for k in fine_tuning.HYPERPARAMETER_NAMES},
        "method": {
            "type": "supervised",
            "supervised": {
                "hyperparameters": {
                    k: hyper.get(k) for k in (*fine_tuning.HYPERPARAMETER_NAMES, *fine_tuning.LORA_NAMES)
                }
            },
        },
        "trained_tokens": ft.trained_tokens,
        "seed": ft.seed,
        "user_provided_suffix": ft.suffix or None,
        "error": (
            {"code": job.error_code, "message": job.error_message, "param": None}
            if job.status == Job.Status.FAILED
            else None
        ),
        "estimated_finish": None,
        "integrations": [],
        "metadata": None,
        "result": job.result if job.status == Job.Status.SUCCEEDED else None,
    }


class FineTuningJobListView(OpenAIView):
    write_scope = "jobs"

    def get(self, request):
        jobs = FineTuningJob.objects.filter(organization=self.organization).select_related(
            "job", "base_model", "fine_tuned_model"
        )
        return self.page(jobs, job_object)

    def post(self, request):
        data = request.data
        files = {}
        for field in ("training_file", "validation_file"):
            if data.get(field):
                record = TrainingFile.objects.filter(organization=self.organization, pk=data[field]).first()
                if record is None:
                    raise exceptions.ValidationError({field: [f"No such file: {data[field]}"]})
                files[field] = record
        if "training_file" not in files:
            raise exceptions.ValidationError({"training_file": ["training_file is required."]})
        if not isinstance(data.get("model"), str):
            raise exceptions.ValidationError({"model": ["model is required."]})
        try:
            seed = int(data.get("seed") or 0)
        except (TypeError, ValueError):
            raise exceptions.ValidationError({"seed": ["seed must be an integer."]}) from None
        ft = fine_tuning.fine_tuning_job_create(
            organization=self.organization,
            actor=self.actor,
            model=data["model"],
            suffix=str(data.get("suffix") or ""),
            seed=seed,
            method=data.get("method"),
            hyperparameters=data.get("hyperparameters"),
            **files,
        )
        return Response(job_object(ft))


class FineTuningJobDetailView(OpenAIView):
    def get(self, request, job_id):
        return Response(job_object(self.owned(FineTuningJob, job_id)))


class FineTuningJobCancelView(OpenAIView):
    write_scope = "jobs"

    def post(self, request, job_id):
        ft = self.owned(FineTuningJob, job_id)
        job_services.job_cancel(job=ft.job, actor=self.actor)  # already finished: a 400 saying so
        ft.refresh_from_db()
        return Response(job_object(ft))


EVENT_PREFIX = "ftevent-"


def event_object(event: JobEvent) -> dict:
    return {
        "object": "fine_tuning.job.event",
        "id": f"{EVENT_PREFIX}{event.pk}",
        "created_at": int(event.created_at.timestamp()),
        "level": "info" if event.level == JobEvent.Level.METRICS else event.level,
        "message": event.message,
        "data": event.data,
        "type": "metrics" if event.level == JobEvent.Level.METRICS else "message",
    }


def event_pk(event_id: str) -> int | None:
    """The primary key in an event id (`ftevent-42` -> 42); None when it is not one of ours."""
    number = event_id.removeprefix(EVENT_PREFIX)
    return int(number) if number.isascii() and number.isdigit() and event_id.startswith(EVENT_PREFIX) else None


class FineTuningJobEventsView(OpenAIView):
    def get(self, request, job_id):
        ft = self.owned(FineTuningJob, job_id)
        events = JobEvent.objects.filter(job=ft.job, organization=self.organization)
        return self.page(events, event_object, cursor=event_pk)


class FineTuningJobCheckpointsView(OpenAIView):
    def get(self, request, job_id):
        ft = self.owned(FineTuningJob, job_id)
        name = fine_tuning.fine_tuned_name(ft)

        def checkpoint_object(c: FineTuningCheckpoint) -> dict:
            return {
                "object": "fine_tuning.job.checkpoint",
                "id": c.id,
                "created_at": int(c.created_at.timestamp()),
                "fine_tuned_model_checkpoint": f"{name}:ckpt-step-{c.step_number}",
                "step_number": c.step_number,
                "metrics": c.metrics,
                "fine_tuning_job_id": ft.id,
            }

        return self.page(ft.checkpoints.all(), checkpoint_object)


class FineTuningJobExportView(OpenAIView):
    """Lightsout's extension: the trained adapter as a bundle to serve on the tenant's own vLLM."""

    def get(self, request, job_id):
        ft = self.owned(FineTuningJob, job_id)
        if ft.fine_tuned_model is None:
            raise exceptions.NotFound("This job has no trained model (yet).")
        handle, name = fine_tuning.adapter_export_open(version=ft.fine_tuned_model)
        return file_download(request, handle, filename=name, content_type="application/gzip")
