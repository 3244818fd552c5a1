"""/v1 routes served by Django (the completion paths are served by inference.gateway, see controlplane.asgi)."""

from django.urls import path

from . import openai_api as api
from .openai_schema import openapi_document

urlpatterns = [
    path("openapi.json", openapi_document, name="openai-openapi"),
    path("files", api.FileListView.as_view(), name="openai-files"),
    path("files/<str:file_id>", api.FileDetailView.as_view(), name="openai-file"),
    path("files/<str:file_id>/content", api.FileContentView.as_view(), name="openai-file-content"),
    path("fine_tuning/jobs", api.FineTuningJobListView.as_view(), name="openai-ft-jobs"),
    path("fine_tuning/jobs/<str:job_id>", api.FineTuningJobDetailView.as_view(), name="openai-ft-job"),
    path("fine_tuning/jobs/<str:job_id>/cancel", api.FineTuningJobCancelView.as_view(), name="openai-ft-cancel"),
    path("fine_tuning/jobs/<str:job_id>/events", api.FineTuningJobEventsView.as_view(), name="openai-ft-events"),
    path(
        "fine_tuning/jobs/<str:job_id>/checkpoints",
        api.FineTuningJobCheckpointsView.as_view(),
        name="openai-ft-checkpoints",
    ),
    path("fine_tuning/jobs/<str:job_id>/export", api.FineTuningJobExportView.as_view(), name="openai-ft-export"),
]
