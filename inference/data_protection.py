"""Inference's data for export and erasure (see `tenants.data_protection`): tenant models and their adapter
files, training files, fine-tuning jobs and checkpoints. Erasing unloads the adapters from the vLLM servers and
removes the files once the transaction has committed."""

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from tenants.data_protection import register_section

from .engine.vllm_server import VllmAdminClient, VllmError
from .models import AdapterVersion, FineTuningCheckpoint, FineTuningJob, Placement, TenantModel, TrainingFile

logger = logging.getLogger(__name__)


def _adapter_files(organization):
    for version in AdapterVersion.objects.filter(organization=organization).select_related("tenant_model"):
        yield f"{version.tenant_model.alias}/{version.lora_name}".replace(":", "_"), Path(version.path)


def _training_files(organization):
    for training_file in TrainingFile.objects.filter(organization=organization):
        yield f"training_files/{training_file.pk}-{Path(training_file.path).name}", Path(training_file.path)
    for checkpoint in FineTuningCheckpoint.objects.filter(organization=organization):
        yield f"checkpoints/{checkpoint.fine_tuning_job_id}/{checkpoint.pk}", Path(checkpoint.path)


def _unload_and_remove(organization) -> None:
    loaded = [
        (p.server.url, p.adapter.lora_name)
        for p in Placement.objects.filter(organization=organization).select_related("server", "adapter")
    ]
    directories = [
        Path(settings.ADAPTER_STORE) / str(organization.pk),
        Path(settings.TRAINING_STORE) / "files" / str(organization.pk),
        *(
            Path(settings.TRAINING_STORE) / "runs" / str(pk)
            for pk in FineTuningJob.objects.filter(organization=organization).values_list("pk", flat=True)
        ),
        *(Path(v.path) for v in AdapterVersion.objects.filter(organization=organization)),
    ]

    def after_commit() -> None:
        for url, lora_name in loaded:
            try:
                with VllmAdminClient(url, timeout_s=30) as client:
                    client.unload_lora(lora_name)
            except VllmError as exc:  # a server that is down has lost it anyway; placement re-checks skip it
                logger.warning("Could not unload %s from %s while erasing: %s", lora_name, url, exc)
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)

    transaction.on_commit(after_commit)


def register() -> None:
    register_section(
        "models",
        app_label="inference",
        models=[Placement, AdapterVersion, TenantModel],
        files=_adapter_files,
        before_erase=_unload_and_remove,
    )
    register_section(
        "fine_tuning",
        app_label="inference",
        models=[FineTuningCheckpoint, FineTuningJob, TrainingFile],
        files=_training_files,
    )
