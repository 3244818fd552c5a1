from celery import shared_task

from jobs.queues import Queue
from jobs.runner import job_task

from .fine_tuning import FINE_TUNE_KIND, fine_tune_run
from .models import VllmServer
from .placement import server_check_health


@shared_task(name="inference.check_servers", ignore_result=True, soft_time_limit=60, time_limit=90)
def check_servers() -> dict[str, int]:
    """Mark each vLLM server healthy or down from its own /health; re-place the adapters of a down one."""
    results = [server_check_health(server=server) for server in VllmServer.objects.all()]
    return {"healthy": sum(results), "down": len(results) - sum(results)}


@job_task(kind=FINE_TUNE_KIND, queue=Queue.TRAINING, time_limit_s=6 * 60 * 60)
def fine_tune(ctx):
    return fine_tune_run(ctx)
