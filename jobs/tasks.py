from celery import shared_task

from . import services


@shared_task(name="jobs.requeue_stale", ignore_result=True, soft_time_limit=60, time_limit=90)
def requeue_stale() -> dict[str, int]:
    return services.job_requeue_stale()
