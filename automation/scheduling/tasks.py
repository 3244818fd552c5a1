"""The `scheduling.optimize` job kind. Celery autodiscovers this module; the app's ready() imports it too, so
web processes can create such jobs."""

from jobs.queues import Queue
from jobs.runner import JobContext, job_task

from .conf import MAX_TIME_LIMIT_S, OPTIMIZE_JOB_KIND
from .execution import run_execute


# The solver stops at the run's own limit (at most MAX_TIME_LIMIT_S); the margin covers building the model
# before it and recording the schedule after it.
@job_task(kind=OPTIMIZE_JOB_KIND, queue=Queue.OPTIMIZATION, time_limit_s=MAX_TIME_LIMIT_S + 300)
def optimize(ctx: JobContext) -> dict:
    return run_execute(ctx)
