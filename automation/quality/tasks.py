"""The quality job kinds. Celery autodiscovers this module; the app's ready() imports it too, so web processes
can create such jobs."""

from jobs.queues import Queue
from jobs.runner import JobContext, job_task

from .conf import ANALYSE_JOB_KIND, ANALYSE_TIME_LIMIT_S


@job_task(kind=ANALYSE_JOB_KIND, queue=Queue.QUALITY, time_limit_s=ANALYSE_TIME_LIMIT_S)
def analyse(ctx: JobContext) -> dict:
    from .analysis import analysis_execute

    return analysis_execute(ctx)
