"""Delivering an app's webhook deliveries (foundation.webhook_models): one attempt recorded, retried by the app's
Celery task with exponential backoff until the receiver takes it or `max_attempts` have failed. The app gives its
delivery model, the secret derived in its namespace, its settings and its queue.
"""

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.utils import timezone

from .metrics import WEBHOOK_FAILURES
from .webhook_models import AbstractWebhookDelivery, SecretFor
from .webhooks import webhook_post

logger = logging.getLogger(__name__)

Delivery = TypeVar("Delivery", bound=AbstractWebhookDelivery)


# The app's delivery task: `@shared_task(name=..., **DELIVERY_TASK_OPTIONS)`, its body `webhook_deliver_retrying`.
DELIVERY_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "ignore_result": True,
    "acks_late": True,
    "max_retries": None,
    "soft_time_limit": 60,
    "time_limit": 90,
}


class DeliveryFailed(Exception):
    pass


def webhook_deliver(
    model: type[Delivery],
    *,
    delivery_id: str,
    secret_for: SecretFor,
    timeout: float,
    allow_private: bool,
    max_attempts: int,
    failure_kind: str,
) -> Delivery:
    """One attempt. Raises DeliveryFailed (after recording why) when the receiver did not take it."""
    delivery = model._default_manager.select_related("endpoint").get(pk=delivery_id)
    if delivery.status != model.Status.PENDING:
        return delivery
    endpoint = delivery.endpoint  # type: ignore[attr-defined]  # the concrete model's foreign key
    if not endpoint.is_active:
        model._default_manager.filter(pk=delivery.pk).update(
            status=model.Status.FAILED, last_error="The endpoint was disabled."
        )
        delivery.refresh_from_db()
        return delivery
    attempt = webhook_post(
        url=endpoint.url,
        secret=secret_for(salt=endpoint.salt),
        event=delivery.event,
        delivery_id=str(delivery.pk),
        payload=delivery.payload,
        timeout=timeout,
        allow_private=allow_private,
    )
    delivery.attempts += 1
    delivery.response_status = attempt.status
    delivery.last_error = attempt.error
    if not attempt.error:
        delivery.status, delivery.delivered_at = model.Status.DELIVERED, timezone.now()
    elif delivery.attempts >= max_attempts:
        delivery.status = model.Status.FAILED
    delivery.save(update_fields=["attempts", "response_status", "last_error", "status", "delivered_at"])
    if attempt.error:
        WEBHOOK_FAILURES.labels(kind=failure_kind).inc()
        if delivery.status == model.Status.PENDING:
            raise DeliveryFailed(attempt.error)
    return delivery


def webhook_deliver_retrying(
    task: Any,
    deliver: Callable[..., AbstractWebhookDelivery],
    *,
    delivery_id: str,
    gone: type[Exception],
    queue: str,
    what: str,
) -> str:
    """The body of an app's delivery task (bound, max_retries=None): the delivery's status, "gone" when it was
    deleted, or a retry later on `queue` while it is pending."""
    try:
        return deliver(delivery_id=delivery_id).status
    except gone:
        return "gone"
    except DeliveryFailed as exc:
        # 10 s, 20 s, 40 s ... at most an hour between attempts; webhook_deliver gives up after max_attempts.
        countdown = min(3600, 10 * 2**task.request.retries)
        logger.info("%s %s failed (%s); retrying in %s s.", what, delivery_id, exc, countdown)
        raise task.retry(countdown=countdown, exc=exc, queue=queue) from exc
