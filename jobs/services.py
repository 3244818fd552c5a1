"""The one job state machine: queued -> running -> succeeded | failed | cancelled.

Transitions are single conditional UPDATEs, so two workers that both receive a job (a broker redelivery, a
re-queue of a job whose worker died) cannot both run it, and an attempt that was given up for dead cannot
finish a job that a later attempt owns.
"""

import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from foundation.redis import get_redis
from tenants.actor import Actor
from tenants.audit import audit_record
from tenants.models import AuditEvent, Organization

from . import registry
from .models import Job, JobEvent

logger = logging.getLogger(__name__)
Status = Job.Status


def job_dispatch(*, job: Job) -> None:
    """Send the job to its queue once the surrounding transaction commits (never a task for a missing row)."""
    kind = registry.get(job.kind)
    kwargs = {"organization_id": str(job.organization_id), "job_id": str(job.id)}

    def send() -> None:
        current_app.send_task(
            kind.task_name,
            kwargs=kwargs,
            queue=kind.queue,
            soft_time_limit=kind.time_limit_s,
            time_limit=kind.time_limit_s + 30,
        )

    # Robust: a broker that is away (restarting) must not fail the request that created the job after its row is
    # committed. The job stays queued, and `job_requeue_stale` sends it again (`_redispatch_lost`).
    transaction.on_commit(send, robust=True)


def job_create(*, organization: Organization, kind: str, params: dict, actor: Actor | None = None) -> Job:
    spec = registry.get(kind)
    if not organization.is_active:
        raise ValidationError({"non_field_errors": [f"The organisation {organization.slug} is suspended."]})
    # No savepoint inside a caller's transaction (two statements fewer per job): a failure here marks the caller's
    # transaction for rollback rather than rolling back to a savepoint, and no caller goes on after one.
    with transaction.atomic(savepoint=False):
        job = Job.objects.create(
            organization=organization,
            kind=kind,
            queue=spec.queue,
            params=params,
            max_attempts=spec.max_attempts,
            requested_by=actor.user if actor else None,
            requested_by_label=actor.label if actor else "system",
        )
        JobEvent.objects.create(organization=organization, job=job, message=f"Queued on {spec.queue}.")
        job_dispatch(job=job)
    return job


def job_event(*, job: Job, message: str, level: str = JobEvent.Level.INFO, data: dict | None = None) -> JobEvent:
    return JobEvent.objects.create(
        organization_id=job.organization_id,
        job=job,
        level=level,
        message=message,
        data=data or {},
        attempt=job.attempts,
    )


def job_cancel(*, job: Job, actor: Actor) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop and is cancelled by its worker."""
    now = timezone.now()
    with transaction.atomic():
        if Job.objects.filter(pk=job.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, cancel_requested_at=now, finished_at=now
        ):
            job_event(job=job, message=f"Cancelled by {actor.label} before it started.")
        elif Job.objects.filter(pk=job.pk, status=Status.RUNNING, cancel_requested_at__isnull=True).update(
            cancel_requested_at=now
        ):
            job_event(job=job, message=f"Cancellation requested by {actor.label}.")
        else:
            job.refresh_from_db()
            if job.is_finished:
                raise ValidationError({"non_field_errors": [f"The job has already {job.status}."]})
            return job
        audit_record(action=AuditEvent.Action.JOB_CANCELLED, target=job, **actor.audit_kwargs())
    job.refresh_from_db()
    return job


def job_retry(*, job: Job, actor: Actor) -> Job:
    """Run a failed or cancelled job again from the start, keeping its event log."""
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, status__in=[Status.FAILED, Status.CANCELLED]).update(
            status=Status.QUEUED,
            progress=0,
            result=None,
            error_code="",
            error_message="",
            attempts=0,
            cancel_requested_at=None,
            heartbeat_at=None,
            started_at=None,
            finished_at=None,
            worker="",
        )
        if not updated:
            raise ValidationError({"non_field_errors": ["Only failed or cancelled jobs can be retried."]})
        job.refresh_from_db()
        job_event(job=job, message=f"Retried by {actor.label}.")
        audit_record(action=AuditEvent.Action.JOB_RETRIED, target=job, **actor.audit_kwargs())
        job_dispatch(job=job)
    return job


# --- used by the worker (jobs.runner) ---------------------------------------------------------------------------


def _stale_cutoff():
    return timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)


def job_claim(*, job_id: str, organization_id: str, worker: str) -> Job | None:
    """Take the job for this worker. None if it is finished, cancelled, or alive on another worker."""
    now = timezone.now()
    # A running job whose heartbeat stopped is claimable too: a broker redelivery may arrive before the
    # periodic re-queue notices the dead worker.
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, heartbeat_at__lt=_stale_cutoff())
    with transaction.atomic():
        claimed = Job.objects.filter(
            claimable, pk=job_id, organization_id=organization_id, attempts__lt=F("max_attempts")
        ).update(
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            heartbeat_at=now,
            worker=worker[:200],
            started_at=Coalesce("started_at", Value(now, output_field=DateTimeField())),
        )
        if not claimed:
            return None
        job = Job.objects.get(pk=job_id)
        note = "Started" if job.attempts == 1 else f"Restarted (attempt {job.attempts}) after its worker was lost"
        job_event(job=job, message=f"{note} on {worker}.")
    return job


def job_heartbeat(*, job: Job) -> bool:
    """Keep the claim alive. Returns whether cancellation has been requested."""
    Job.objects.filter(pk=job.pk, status=Status.RUNNING, attempts=job.attempts).update(heartbeat_at=timezone.now())
    return Job.objects.filter(pk=job.pk).exclude(cancel_requested_at=None).exists()


def job_set_progress(*, job: Job, progress: int) -> None:
    progress = max(0, min(100, int(progress)))
    Job.objects.filter(pk=job.pk, status=Status.RUNNING, attempts=job.attempts).update(progress=progress)
    job.progress = progress


def job_finish(
    *, job: Job, status: str, result: dict | None = None, error_code: str = "", error_message: str = ""
) -> bool:
    """Record the outcome if this attempt still owns the job. Returns False for a superseded attempt."""
    assert status in Job.FINISHED
    with transaction.atomic():
        finished = Job.objects.filter(pk=job.pk, status=Status.RUNNING, attempts=job.attempts).update(
            status=status,
            result=result,
            error_code=error_code,
            error_message=error_message,
            progress=100 if status == Status.SUCCEEDED else F("progress"),
            finished_at=timezone.now(),
        )
        if finished:
            job.status = status
            level = JobEvent.Level.ERROR if status == Status.FAILED else JobEvent.Level.INFO
            job_event(
                job=job, level=level, message=f"{status.capitalize()}." + (f" {error_message}" if error_message else "")
            )
    if not finished:
        logger.warning("Attempt %s of job %s finished after losing its claim; outcome discarded.", job.attempts, job.id)
    return bool(finished)


def _redispatch_lost(*, just_sent: set) -> int:
    """Send again the queued jobs whose message may be lost (a broker restarted without its data, or away when the
    job was created). Each is re-sent at most once per max(JOB_REDISPATCH_AFTER_SECONDS, its age so far), so a job
    that merely waits in a long queue adds a few duplicate messages over its wait, not one per beat; a duplicate
    message is a no-op (the claim is one conditional UPDATE)."""
    now = timezone.now()
    after = settings.JOB_REDISPATCH_AFTER_SECONDS
    waiting = Job.objects.filter(status=Status.QUEUED, created_at__lt=now - timedelta(seconds=after))
    redis = get_redis()
    sent = 0
    for job in waiting.exclude(pk__in=just_sent).order_by("created_at")[:1000]:
        age = int((now - job.created_at).total_seconds())
        if redis.set(f"jobs:redispatched:{job.pk}", "1", nx=True, ex=max(after, age)):
            job_event(
                job=job,
                level=JobEvent.Level.WARNING,
                message=f"Still queued after {age} s; sent to its queue again (its message may have been lost).",
            )
            job_dispatch(job=job)
            sent += 1
    if sent:
        logger.warning("Re-sent %d queued jobs whose message may have been lost.", sent)
    return sent


def job_requeue_stale() -> dict[str, int]:
    """Give another worker the jobs whose worker stopped sending heartbeats; fail those out of attempts; send again
    the queued jobs whose message may be lost."""
    requeued = failed = 0
    sent: set = set()
    stale = Job.objects.filter(status=Status.RUNNING, heartbeat_at__lt=_stale_cutoff())
    for job in stale.select_related("organization"):
        if job.attempts >= job.max_attempts:
            with transaction.atomic():
                if Job.objects.filter(pk=job.pk, status=Status.RUNNING, attempts=job.attempts).update(
                    status=Status.FAILED,
                    error_code="worker_lost",
                    finished_at=timezone.now(),
                    error_message=f"The worker was lost {job.attempts} times; giving up.",
                ):
                    job_event(job=job, level=JobEvent.Level.ERROR, message="Failed: worker lost on every attempt.")
                    failed += 1
        else:
            with transaction.atomic():
                # Back to queued: the next claim is immediate, and the lost attempt can no longer finish it.
                if Job.objects.filter(pk=job.pk, status=Status.RUNNING, attempts=job.attempts).update(
                    status=Status.QUEUED, heartbeat_at=None
                ):
                    job_event(
                        job=job,
                        level=JobEvent.Level.WARNING,
                        message=f"No heartbeat from {job.worker or 'its worker'}; re-queued.",
                    )
                    job_dispatch(job=job)
                    sent.add(job.pk)
                    requeued += 1
    return {"requeued": requeued, "failed": failed, "redispatched": _redispatch_lost(just_sent=sent)}
