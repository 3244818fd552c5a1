"""The maintenance job kinds and tasks. Celery autodiscovers this module; the app's ready() imports it too, so web
processes can create such jobs.

Periodic (see CELERY_BEAT_SCHEDULE): `maintenance.enqueue_scoring` starts a scoring job per asset type with a
trained model; `maintenance.explain_pending` retries explanations that found no model answering.
"""

from celery import shared_task

from foundation.webhook_delivery import DELIVERY_TASK_OPTIONS, webhook_deliver_retrying
from jobs.queues import Queue
from jobs.runner import JobContext, job_task

from .conf import (
    SCORE_JOB_KIND,
    SCORE_TIME_LIMIT_S,
    TRAIN_JOB_KIND,
    TRAIN_TIME_LIMIT_S,
    VIBRATION_ANALYSE_JOB_KIND,
    VIBRATION_ANALYSE_TIME_LIMIT_S,
    VIBRATION_TRAIN_JOB_KIND,
    VIBRATION_TRAIN_TIME_LIMIT_S,
)


@job_task(kind=TRAIN_JOB_KIND, queue=Queue.MAINTENANCE, time_limit_s=TRAIN_TIME_LIMIT_S)
def train(ctx: JobContext) -> dict:
    from .modeling import train_execute

    return train_execute(ctx)


@job_task(kind=SCORE_JOB_KIND, queue=Queue.MAINTENANCE, time_limit_s=SCORE_TIME_LIMIT_S)
def score(ctx: JobContext) -> dict:
    from .modeling import score_execute

    return score_execute(ctx)


@shared_task(name="maintenance.enqueue_scoring", ignore_result=True, soft_time_limit=120, time_limit=150)
def enqueue_scoring() -> int:
    from .services import scoring_enqueue_due

    return scoring_enqueue_due()


@shared_task(
    name="maintenance.explain_recommendation", ignore_result=True, acks_late=True, soft_time_limit=120, time_limit=150
)
def explain_recommendation(*, recommendation_id: str, organization_id: str) -> str:
    from .explainer import recommendation_explain
    from .models import Recommendation

    try:
        return recommendation_explain(
            recommendation_id=recommendation_id, organization_id=organization_id
        ).explanation_status
    except Recommendation.DoesNotExist:
        return "gone"  # deleted with its asset since it was queued


@shared_task(
    name="maintenance.explain_diagnoses", ignore_result=True, acks_late=True, soft_time_limit=300, time_limit=330
)
def explain_diagnoses(*, diagnosis_ids: list[str], organization_id: str) -> list[str]:
    """The diagnoses of one analysis job (a capture or a batch), explained one after the other."""
    from .explainer import diagnosis_explain
    from .models import VibrationDiagnosis

    statuses = []
    for diagnosis_id in diagnosis_ids:
        try:
            statuses.append(
                diagnosis_explain(diagnosis_id=diagnosis_id, organization_id=organization_id).explanation_status
            )
        except VibrationDiagnosis.DoesNotExist:
            statuses.append("gone")  # re-analysed or deleted since it was queued
    return statuses


@shared_task(name="maintenance.explain_pending", ignore_result=True, soft_time_limit=60, time_limit=90)
def explain_pending() -> int:
    from .explainer import pending_explanations
    from .models import VibrationDiagnosis

    due = pending_explanations()
    for recommendation_id, organization_id in due:
        explain_recommendation.apply_async(
            kwargs={"recommendation_id": recommendation_id, "organization_id": organization_id}, queue="maintenance"
        )
    diagnoses = pending_explanations(of=VibrationDiagnosis)
    for diagnosis_id, organization_id in diagnoses:
        explain_diagnoses.apply_async(
            kwargs={"diagnosis_ids": [diagnosis_id], "organization_id": organization_id}, queue="maintenance"
        )
    return len(due) + len(diagnoses)


@shared_task(name="maintenance.deliver_webhook", **DELIVERY_TASK_OPTIONS)
def deliver_webhook(self, *, delivery_id: str) -> str:
    from .models import WebhookDelivery
    from .webhooks import webhook_deliver

    return webhook_deliver_retrying(
        self,
        webhook_deliver,
        delivery_id=delivery_id,
        gone=WebhookDelivery.DoesNotExist,
        queue="maintenance",
        what="Webhook delivery",
    )


@job_task(kind=VIBRATION_ANALYSE_JOB_KIND, queue=Queue.MAINTENANCE, time_limit_s=VIBRATION_ANALYSE_TIME_LIMIT_S)
def vibration_analyse(ctx: JobContext) -> dict:
    from .diagnostics import vibration_analyse_execute

    return vibration_analyse_execute(ctx)


@job_task(kind=VIBRATION_TRAIN_JOB_KIND, queue=Queue.MAINTENANCE, time_limit_s=VIBRATION_TRAIN_TIME_LIMIT_S)
def vibration_train(ctx: JobContext) -> dict:
    from .diagnostics import vibration_train_execute

    return vibration_train_execute(ctx)
