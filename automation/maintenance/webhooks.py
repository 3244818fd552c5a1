"""Webhooks: integrators receive new recommendations, signed, delivered by a Celery task with retries.

Each event is one POST of JSON with the headers
    Lightsout-Event: recommendation.created
    Lightsout-Delivery: <delivery id>       (the same on every retry: de-duplicate on it)
    Lightsout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the endpoint's secret>

To verify, a receiver takes the raw body bytes as received (before any JSON parsing), computes
HMAC-SHA256(secret, f"{t}.".encode() + body), compares it with v1 in constant time, and refuses a `t` more than
five minutes away from its clock; `automation.maintenance.signing.webhook_signature_verify` does exactly that.
Any 2xx answer is success; anything else (or no answer within the timeout) is retried with exponential backoff.
Requests go through the platform's one outbound helper (foundation.outbound): redirects are not followed, URLs that
resolve to private, loopback, link-local or metadata addresses are refused (unless
MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS or OUTBOUND_ALLOW_PRIVATE_HOSTS is set: local runs and tests), at creation
and again at each delivery, and the delivery connects to the very address it checked (no second DNS lookup).
The attempt itself is foundation.webhooks (shared with quality).
"""

from django.conf import settings
from django.utils import timezone

from foundation.metrics import WEBHOOK_FAILURES
from foundation.outbound import outbound_url_problem
from foundation.webhooks import webhook_post

from .models import WebhookDelivery
from .signing import webhook_secret

MAX_ATTEMPTS = 8


class DeliveryFailed(Exception):
    pass


def _allow_private() -> bool:
    return bool(
        getattr(settings, "MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS", False)
        or getattr(settings, "OUTBOUND_ALLOW_PRIVATE_HOSTS", False)
    )


def webhook_url_problem(url: str) -> str | None:
    return outbound_url_problem(url, allow_private=_allow_private())


def webhook_deliver(*, delivery_id: str) -> WebhookDelivery:
    """One attempt. Raises DeliveryFailed (after recording why) when the receiver did not take it."""
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if delivery.status != WebhookDelivery.Status.PENDING:
        return delivery
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED, last_error="The endpoint was disabled."
        )
        return delivery
    attempt = webhook_post(
        url=endpoint.url,
        secret=webhook_secret(salt=endpoint.salt),
        event=delivery.event,
        delivery_id=str(delivery.pk),
        payload=delivery.payload,
        timeout=getattr(settings, "MAINTENANCE_WEBHOOK_TIMEOUT_S", 10),
        allow_private=_allow_private(),
    )
    status, error = attempt.status, attempt.error
    delivery.attempts += 1
    delivery.response_status = status
    delivery.last_error = error
    if not error:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, timezone.now()
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    delivery.save(update_fields=["attempts", "response_status", "last_error", "status", "delivered_at"])
    if error:
        WEBHOOK_FAILURES.labels(kind="maintenance_delivery").inc()
    if error and delivery.status == WebhookDelivery.Status.PENDING:
        raise DeliveryFailed(error)
    return delivery
