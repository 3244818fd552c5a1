"""The quality job kinds. Celery autodiscovers this module; the app's ready() imports it too, so web processes
can create such jobs."""

from celery import shared_task

from foundation.webhook_delivery import DELIVERY_TASK_OPTIONS, webhook_deliver_retrying
from jobs.queues import Queue
from jobs.runner import JobContext, job_task

from .conf import ANALYSE_JOB_KIND, ANALYSE_TIME_LIMIT_S


@job_task(kind=ANALYSE_JOB_KIND, queue=Queue.QUALITY, time_limit_s=ANALYSE_TIME_LIMIT_S)
def analyse(ctx: JobContext) -> dict:
    from .analysis import analysis_execute

    return analysis_execute(ctx)


@shared_task(name="quality.deliver_webhook", **DELIVERY_TASK_OPTIONS)
def deliver_webhook(self, *, delivery_id: str) -> str:
    from .models import WebhookDelivery
    from .webhooks import webhook_deliver

    return webhook_deliver_retrying(
        self,
        webhook_deliver,
        delivery_id=delivery_id,
        gone=WebhookDelivery.DoesNotExist,
        queue="quality",
        what="Quality webhook delivery",
    )


@shared_task(name="quality.draft_report", ignore_result=True, soft_time_limit=180, time_limit=240)
def draft_report(*, report_id: str, organization_id: str) -> str:
    from .models import Report8D
    from .report8d import report_draft

    try:
        return report_draft(report_id=report_id, organization_id=organization_id).status
    except Report8D.DoesNotExist:
        return "gone"


@shared_task(name="quality.draft_pending_reports", ignore_result=True, soft_time_limit=60, time_limit=90)
def draft_pending_reports() -> int:
    from .report8d import pending_reports

    due = pending_reports()
    for report_id, organization_id in due:
        draft_report.apply_async(kwargs={"report_id": report_id, "organization_id": organization_id}, queue="quality")
    return len(due)
