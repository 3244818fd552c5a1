"""Fine-tuning: training files, OpenAI-shaped fine-tuning jobs run on the training queue, and adapter export.

A training file is validated (JSONL chat format, every error with its line number, token limits) before it is
stored, and again against the chosen base model's tokenizer and the plan's limits before a job is queued: a bad
file never starts a job. The job trains a LoRA adapter with PEFT (inference.engine.lora_training), checkpoints as
it goes so a killed worker's re-run resumes, and on success registers the adapter as the tenant model
`ft:<base>:<org>:<suffix>:<id>`, deploys it and meters `trained_tokens`.
"""

import hashlib
import json
import logging
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q

from billing.quotas import quota_check
from billing.usage import usage_record
from foundation.storage import delete_prefix, fetch_file, list_keys, store_directory, store_file
from jobs import services as job_services
from jobs.models import Job
from jobs.runner import JobCancelled, JobContext
from tenants.actor import Actor
from tenants.models import Organization

from . import services
from .engine.adapter_bundle import export_bundle
from .engine.auto_hyperparameters import choose_hyperparameters, hold_back_count
from .engine.lora_checkpoints import latest_checkpoint
from .engine.lora_training import LoraHyperparameters, train_lora
from .engine.training_data import TrainingDataLimits, TrainingFileReport, validate_training_file
from .models import AdapterVersion, BaseModel, FineTuningCheckpoint, FineTuningJob, TrainingFile
from .placement import NoCapacity, placement_ensure

logger = logging.getLogger(__name__)
FINE_TUNE_KIND = "fine_tune"
HYPERPARAMETER_NAMES = ("n_epochs", "batch_size", "learning_rate_multiplier")
LORA_NAMES = ("lora_r", "lora_alpha", "target_modules")


@lru_cache(maxsize=4)
def _tokenizer(weights_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(weights_path)


def _limits() -> TrainingDataLimits:
    return TrainingDataLimits(
        max_bytes=settings.FINE_TUNE_MAX_FILE_BYTES,
        min_examples=settings.FINE_TUNE_MIN_EXAMPLES,
        max_tokens_per_example=settings.FINE_TUNE_MAX_TOKENS_PER_EXAMPLE,
        max_total_tokens=settings.FINE_TUNE_MAX_TOTAL_TOKENS,
    )


def _report_error(report: TrainingFileReport, field: str) -> ValidationError:
    lines = [str(issue) for issue in report.errors]
    if report.errors_truncated:
        lines.append("… more errors not listed.")
    return ValidationError({field: lines})


def default_base_model() -> BaseModel:
    model = BaseModel.objects.order_by("created_at").first()
    if model is None:
        raise ValidationError({"model": ["No base model is provisioned."]})
    return model


def training_file_upload(*, organization: Organization, upload: UploadedFile, purpose: str) -> TrainingFile:
    """Validate and store a fine-tuning file; a file with any error is refused whole, with line numbers."""
    if purpose != "fine-tune":
        raise ValidationError({"purpose": ["Only purpose `fine-tune` is supported."]})
    if upload.size > settings.FINE_TUNE_MAX_FILE_BYTES:
        raise ValidationError({"file": [f"The file is larger than {settings.FINE_TUNE_MAX_FILE_BYTES} bytes."]})
    store = Path(settings.TRAINING_STORE) / "files" / str(organization.pk)
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=store, delete=False, suffix=".part") as part:
        for chunk in upload.chunks():
            part.write(chunk)
    staged = Path(part.name)
    try:
        base = default_base_model()
        report = validate_training_file(path=staged, tokenizer=_tokenizer(base.weights_path), limits=_limits())
        if not report.ok:
            raise _report_error(report, "file")
        with transaction.atomic():
            record = TrainingFile(
                organization=organization,
                filename=Path(upload.name or "upload.jsonl").name[:255],
                purpose=purpose,
                bytes=report.bytes,
                sha256=report.sha256,
                path="",
                examples=report.examples,
                total_tokens=report.total_tokens,
            )
            final = store / f"{record.id}.jsonl"
            record.path = str(final)
            record.save()
            staged.rename(final)
            try:
                # The training worker (another pod) reads the file from the shared artifact store.
                store_file(local_path=final, key=training_file_key(record))
            except BaseException:  # a full store: the row is rolled back, so no file may stay behind it
                final.unlink(missing_ok=True)
                raise
    finally:
        staged.unlink(missing_ok=True)
    return record


def training_file_delete(*, training_file: TrainingFile) -> None:
    users = FineTuningJob.objects.filter(Q(training_file=training_file) | Q(validation_file=training_file))
    if users.exclude(job__status__in=Job.FINISHED).exists():
        raise ValidationError({"file": ["A running fine-tuning job uses this file."]})
    if users.exists():
        # A finished job's record says what it was trained on, so the file stays while the job does.
        raise ValidationError({"file": [f"{training_file.filename} trained a fine-tuning job and is kept with it."]})
    path = Path(training_file.path)
    key = training_file_key(training_file)

    def remove() -> None:
        path.unlink(missing_ok=True)
        delete_prefix(prefix=key)

    with transaction.atomic():
        training_file.delete()
        transaction.on_commit(remove)


def training_file_key(training_file: TrainingFile) -> str:
    return f"training/files/{training_file.organization_id}/{training_file.id}.jsonl"


def training_file_local(training_file: TrainingFile) -> Path:
    """The file on this machine: the uploading pod's copy, or fetched from the artifact store."""
    path = Path(training_file.path)
    if not path.is_file():
        fetch_file(key=training_file_key(training_file), local_path=path)
    return path


def _checkpoints_prefix(ft: FineTuningJob) -> str:
    return f"training/runs/{ft.id}/checkpoints"


def _requested(method: dict | None, legacy: dict | None) -> dict:
    chosen = dict(legacy or {})
    if method:
        if not isinstance(method, dict) or method.get("type", "supervised") != "supervised":
            raise ValidationError({"method": ["Only the `supervised` method is supported."]})
        chosen.update((method.get("supervised") or {}).get("hyperparameters") or {})
    return chosen


def _hyperparameters(*, requested: dict, base: BaseModel, n_examples: int) -> dict:
    """What the job trains with: the caller's values, and for what it left out (absent or "auto") the values
    chosen for this dataset size and base model (inference.engine.auto_hyperparameters). Stored with the names
    the caller chose itself (`explicit`) and how many examples are held back for validation (`hold_back`)."""
    config = Path(base.weights_path) / "config.json"
    model_type = json.loads(config.read_text()).get("model_type", "") if config.exists() else ""
    try:
        chosen = choose_hyperparameters(
            given=requested, n_examples=n_examples, model_type=model_type, max_lora_rank=base.max_lora_rank
        )
        values = LoraHyperparameters.from_dict(dict(chosen.values)).as_dict()
    except (TypeError, ValueError) as exc:
        raise ValidationError({"hyperparameters": [str(exc)]}) from exc
    return values | {"explicit": sorted(set(requested) - set(chosen.automatic))}


def lora_hyperparameters(stored: dict) -> LoraHyperparameters:
    """The engine's hyperparameters from a job's stored ones (which also hold bookkeeping keys)."""
    return LoraHyperparameters.from_dict(
        {k: v for k, v in stored.items() if k in LoraHyperparameters.__dataclass_fields__}
    )


def fine_tuning_job_create(
    *,
    organization: Organization,
    actor: Actor,
    model: str,
    training_file: TrainingFile,
    validation_file: TrainingFile | None = None,
    suffix: str = "",
    seed: int = 0,
    method: dict | None = None,
    hyperparameters: dict | None = None,
) -> FineTuningJob:
    base = BaseModel.objects.filter(name=model).first()
    if base is None:
        raise ValidationError({"model": [f"Unknown base model {model!r}."]})
    requested = _requested(method, hyperparameters)
    for field, item in (("training_file", training_file), ("validation_file", validation_file)):
        if item is None:
            continue
        report = validate_training_file(
            path=training_file_local(item), tokenizer=_tokenizer(base.weights_path), limits=_limits()
        )
        if not report.ok:
            raise _report_error(report, field)
    # Without a validation file a few examples are held back to judge the training by; fewer examples remain
    # to train on, and the automatic epochs and batch size are chosen for those.
    hold_back = 0 if validation_file is not None else hold_back_count(training_file.examples)
    params = _hyperparameters(requested=requested, base=base, n_examples=training_file.examples - hold_back)
    params["hold_back"] = hold_back
    tokens = training_file.total_tokens * params["n_epochs"]
    quota_check(organization=organization, meter="training.tokens", quantity=tokens)
    with transaction.atomic():
        job = job_services.job_create(
            organization=organization, kind=FINE_TUNE_KIND, actor=actor, params={"base_model": base.name}
        )
        return FineTuningJob.objects.create(
            organization=organization,
            job=job,
            base_model=base,
            training_file=training_file,
            validation_file=validation_file,
            suffix=suffix,
            seed=seed,
            hyperparameters=params,
        )


def fine_tuned_name(fine_tuning_job: FineTuningJob) -> str:
    org = fine_tuning_job.organization.slug
    suffix = fine_tuning_job.suffix or "model"
    return f"ft:{fine_tuning_job.base_model.name}:{org}:{suffix}:{fine_tuning_job.id.removeprefix('ftjob-')[:8]}"


def fine_tune_run(ctx: JobContext) -> dict:
    """The training job. Resumes from the last checkpoint when a previous attempt's worker died."""
    ft = FineTuningJob.objects.select_related("base_model", "training_file", "validation_file", "organization").get(
        job_id=ctx.job.id
    )
    base = ft.base_model
    work = Path(settings.TRAINING_STORE) / "runs" / ft.id
    if ctx.attempt > 1:  # a previous attempt may have run on another worker: its checkpoints are in the store
        for key in list_keys(prefix=_checkpoints_prefix(ft)):
            local = work / "checkpoints" / key.removeprefix(_checkpoints_prefix(ft) + "/")
            if not local.exists():
                fetch_file(key=key, local_path=local)
    resume = latest_checkpoint(work / "checkpoints") if ctx.attempt > 1 else None
    if resume is not None:
        ctx.event(f"Resuming from checkpoint {resume.name}.")
    FineTuningJob.objects.filter(pk=ft.pk).update(validating=False)

    def on_event(kind: str, payload: dict) -> None:
        if kind == "step":
            ctx.progress(payload["progress"])
            ctx.metrics(
                f"Step {payload['step']}/{payload['total_steps']}: training loss {payload['train_loss']}", **payload
            )
        elif kind == "validation":
            ctx.metrics(f"Validation loss ({payload['model']} model) {payload['valid_loss']}", **payload)
        elif kind == "checkpoint":
            checkpoint = Path(payload["path"])
            store_directory(local_dir=checkpoint, prefix=f"{_checkpoints_prefix(ft)}/{checkpoint.name}")
            FineTuningCheckpoint.objects.get_or_create(
                fine_tuning_job=ft,
                step_number=payload["step"],
                defaults={"organization_id": ft.organization_id, "path": payload["path"]},
            )
        elif kind in ("started", "cancelled"):
            ctx.event(f"Training {kind}.", **payload)
        elif kind == "validation_split":
            ctx.event(
                f"No validation file: {payload['held_back']} of {payload['of']} examples are held back to validate "
                f"on; {payload['training_examples']} train.",
                **payload,
            )
        elif kind == "warning":
            ctx.event(f"{payload['message']} {payload['advice']}", level="warning", warning=payload)

    lora = lora_hyperparameters(ft.hyperparameters)
    hyper = lora.as_dict()
    explicit = set(ft.hyperparameters.get("explicit", []))
    shown = {k: hyper[k] for k in (*HYPERPARAMETER_NAMES, *LORA_NAMES)}
    ctx.event(
        "Hyperparameters: "
        + ", ".join(f"{k}={v}{'' if k in explicit else ' (auto)'}" for k, v in shown.items() if k != "target_modules")
        + f", target_modules={','.join(shown['target_modules'])}"
        + ("" if "target_modules" in explicit else " (auto)")
        + ".",
        hyperparameters=shown,
        automatic=sorted(set(shown) - explicit),
    )
    result = train_lora(
        base_model_dir=Path(base.weights_path),
        train_path=training_file_local(ft.training_file),
        validation_path=training_file_local(ft.validation_file) if ft.validation_file else None,
        output_dir=work,
        hyperparameters=lora,
        seed=ft.seed,
        hold_back=int(ft.hyperparameters.get("hold_back", 0)),
        on_event=on_event,
        should_stop=ctx.should_stop,
        checkpoint_every_steps=settings.FINE_TUNE_CHECKPOINT_EVERY_STEPS,
        resume_from=resume,
        eval_every_steps=settings.FINE_TUNE_EVAL_EVERY_STEPS,
        base_model_name=base.name,
    )
    if result.status == "cancelled":
        raise JobCancelled({"steps_completed": result.steps_completed, "metrics": result.metrics})
    if result.adapter_dir is None:  # a succeeded run always has one
        raise RuntimeError("Training succeeded without an adapter directory.")

    name = fine_tuned_name(ft)
    tenant_model = services.tenant_model_get_or_create(organization=ft.organization, alias=name, base_model=base)
    version = services.adapter_version_create(
        tenant_model=tenant_model,
        adapter_dir=result.adapter_dir,
        rank=hyper["lora_r"],
        target_modules=list(hyper["target_modules"]),
        source=AdapterVersion.Source.FINE_TUNE,
        name=name,
        metadata={
            "fine_tuning_job": ft.id,
            "data_sha256": result.data_sha256,
            "hyperparameters": hyper,
            "metrics": result.metrics,
            "trained_tokens": result.trained_tokens,
        },
    )
    FineTuningJob.objects.filter(pk=ft.pk).update(fine_tuned_model=version, trained_tokens=result.trained_tokens)
    usage_record(
        organization_id=ft.organization_id,
        meter="training.tokens",
        quantity=max(1, result.trained_tokens),
        idempotency_key=f"fine_tune:{ft.id}",
        attributes={"base_model": base.name, "job": ft.id},
    )
    try:
        placement_ensure(adapter=version)
    except NoCapacity as exc:
        ctx.event(f"Trained, but not deployed yet: {exc}", level="warning")
    metrics = result.metrics
    if "exact_match_fine_tuned" in metrics:
        ctx.event(
            f"Held-back answers given exactly: fine-tuned {metrics['exact_match_fine_tuned']:.0%}, base model "
            f"{metrics['exact_match_base']:.0%} ({metrics['exact_match_examples']} questions); validation loss "
            f"{metrics.get('valid_loss_before')} -> {metrics.get('valid_loss_after')}.",
            exact_match_base=metrics["exact_match_base"],
            exact_match_fine_tuned=metrics["exact_match_fine_tuned"],
            exact_match_examples=metrics["exact_match_examples"],
        )
    return {
        "fine_tuned_model": name,
        "trained_tokens": result.trained_tokens,
        "converged": metrics.get("converged"),
        "warnings": metrics.get("warnings", []),
        "hyperparameters": shown,
        "metrics": result.metrics,
        "samples": result.samples,
        "steps": result.steps_completed,
    }


def adapter_export_open(*, version: AdapterVersion) -> tuple[BinaryIO, str]:
    """The bundle as an open file and its name, for a download: built in a scratch directory that is removed at
    once (the open file stays readable until it is closed), so nothing is left behind."""
    out = Path(tempfile.mkdtemp(prefix="export-"))
    try:
        bundle = adapter_export(version=version, out_dir=out)
        return bundle.open("rb"), bundle.name
    finally:
        shutil.rmtree(out, ignore_errors=True)


def adapter_export(*, version: AdapterVersion, out_dir: Path) -> Path:
    """The tenant's adapter as a bundle it can serve on its own vLLM: safetensors, config, model card."""
    meta = version.metadata or {}
    card = {
        "name": version.name,
        "base_model": version.tenant_model.base_model.name,
        "data_sha256": meta.get("data_sha256", ""),
        "trained_tokens": meta.get("trained_tokens"),
        "hyperparameters": meta.get("hyperparameters", {}),
        "metrics": meta.get("metrics", {}),
        "created_at": version.created_at.isoformat(),
    }
    safe = hashlib.sha256(version.name.encode()).hexdigest()[:12]
    return export_bundle(
        adapter_dir=services.adapter_local_dir(version=version),
        out_path=out_dir / f"lightsout-adapter-{safe}.tar.gz",
        model_card=card,
    )
