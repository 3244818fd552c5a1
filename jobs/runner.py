"""Executing a job inside a Celery worker.

Apps declare a job kind with `@job_task(kind=..., queue=..., time_limit_s=...)` on a function taking a
`JobContext`. The task it becomes takes only ids (`organization_id`, `job_id`), claims the job row, keeps a
heartbeat while the function runs, and records the outcome. It is `acks_late`: a worker killed mid-job leaves
the message to be delivered again, and the heartbeat lets `job_requeue_stale` re-queue the job even when the
broker does not redeliver. Re-runs are idempotent: the claim admits one live attempt at a time, and a finished
job is never run or finished again.
"""

import logging
import socket
import threading
import time
from collections.abc import Callable

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection

from foundation.metrics import JOB_DURATION

from . import registry, services
from .models import Job, JobEvent

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised by a handler (or `ctx.raise_if_cancelled`) to stop early; carries the partial result."""

    def __init__(self, result: dict | None = None):
        super().__init__("cancelled")
        self.result = result


class JobFailure(Exception):
    """A handler's clear refusal: the job fails with this code and message, and is not retried."""

    def __init__(self, message: str, *, code: str = "failed", result: dict | None = None):
        super().__init__(message)
        self.code = code
        self.result = result


class JobContext:
    """What a job handler sees: its parameters, and ways to report progress and to notice cancellation."""

    def __init__(self, job: Job):
        self.job = job
        self._cancel_requested = threading.Event()

    @property
    def params(self) -> dict:
        return self.job.params

    @property
    def organization_id(self):
        return self.job.organization_id

    @property
    def attempt(self) -> int:
        return self.job.attempts

    def progress(self, percent: float, message: str | None = None, **data) -> None:
        services.job_set_progress(job=self.job, progress=int(percent))
        if message:
            self.event(message, **data)

    def event(self, message: str, *, level: str = JobEvent.Level.INFO, **data) -> None:
        services.job_event(job=self.job, message=message, level=level, data=data)

    def metrics(self, message: str = "", **data) -> None:
        services.job_event(job=self.job, message=message, level=JobEvent.Level.METRICS, data=data)

    def should_stop(self) -> bool:
        return self._cancel_requested.is_set()

    def raise_if_cancelled(self, result: dict | None = None) -> None:
        if self.should_stop():
            raise JobCancelled(result)


class _Heartbeat(threading.Thread):
    def __init__(self, ctx: JobContext):
        super().__init__(daemon=True, name=f"heartbeat-{ctx.job.id}")
        self.ctx = ctx
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOB_HEARTBEAT_SECONDS):
                if services.job_heartbeat(job=self.ctx.job):
                    self.ctx._cancel_requested.set()
        except Exception:
            logger.exception("Heartbeat of job %s failed", self.ctx.job.id)
        finally:
            connection.close()  # this thread's own connection


def run_job(*, job_id: str, organization_id: str, handler: Callable[[JobContext], dict | None]) -> str:
    close_old_connections()
    worker = f"{socket.gethostname()}"
    job = services.job_claim(job_id=job_id, organization_id=organization_id, worker=worker)
    if job is None:
        logger.info("Job %s is finished or owned by a live worker; nothing to do.", job_id)
        return "skipped"
    ctx = JobContext(job)
    if job.cancel_requested_at is not None:
        ctx._cancel_requested.set()
    heartbeat = _Heartbeat(ctx)
    heartbeat.start()
    started = time.monotonic()
    logger.info("Job %s (%s) started, attempt %s", job.id, job.kind, ctx.attempt, extra={"job_id": str(job.id)})
    try:
        ctx.raise_if_cancelled()
        result = handler(ctx)
    except JobCancelled as stop:
        services.job_finish(job=job, status=Job.Status.CANCELLED, result=stop.result)
    except JobFailure as failure:
        services.job_finish(
            job=job,
            status=Job.Status.FAILED,
            result=failure.result,
            error_code=failure.code,
            error_message=str(failure),
        )
    except SoftTimeLimitExceeded:
        limit = registry.get(job.kind).time_limit_s
        services.job_finish(
            job=job,
            status=Job.Status.FAILED,
            error_code="time_limit",
            error_message=f"The job ran past its time limit of {limit} s.",
        )
    except Exception as exc:
        logger.exception("Job %s (%s) crashed", job.id, job.kind)
        services.job_finish(
            job=job, status=Job.Status.FAILED, error_code="internal_error", error_message=f"{type(exc).__name__}: {exc}"
        )
    else:
        status = Job.Status.CANCELLED if ctx.should_stop() else Job.Status.SUCCEEDED
        services.job_finish(job=job, status=status, result=result)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
        kind = registry.get(job.kind)
        JOB_DURATION.labels(queue=kind.queue, kind=job.kind, outcome=job.status).observe(time.monotonic() - started)
    logger.info("Job %s (%s) finished: %s", job.id, job.kind, job.status, extra={"job_id": str(job.id)})
    return job.status


def job_task(*, kind: str, queue: str, time_limit_s: int, max_attempts: int = 3):
    """Declare a job kind and the Celery task that runs it."""

    def decorate(handler: Callable[[JobContext], dict | None]):
        task_name = f"jobs.run.{kind}"
        registry.register(
            registry.JobKind(
                name=kind, queue=queue, task_name=task_name, time_limit_s=time_limit_s, max_attempts=max_attempts
            )
        )

        @shared_task(
            name=task_name,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            soft_time_limit=time_limit_s,
            time_limit=time_limit_s + 30,
        )
        def task(*, organization_id: str, job_id: str) -> str:
            return run_job(job_id=job_id, organization_id=organization_id, handler=handler)

        task.handler = handler
        return task

    return decorate
