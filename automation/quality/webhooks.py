"""Quality's webhooks: `quality.alarm` (a new SPC alarm) and `quality.analysis.finished`, signed, delivered by a
Celery task (`quality.deliver_webhook`, queue `quality`) with exponential backoff, at most MAX_ATTEMPTS.

The request, its headers and signature are those of every Lightsout webhook (foundation.webhooks, verified with
`foundation.signing.webhook_signature_verify`); the endpoint's secret is derived in quality's own namespace, so a
maintenance secret verifies nothing of quality's. URLs go through foundation.outbound (private hosts allowed only
with QUALITY_WEBHOOK_ALLOW_PRIVATE_HOSTS or OUTBOUND_ALLOW_PRIVATE_HOSTS: local runs and tests).
"""

from celery import current_app
from django.conf import settings
from django.db import transaction

from foundation import webhook_delivery
from foundation.outbound import outbound_url_problem, private_allowed
from foundation.signing import derived_secret

from .models import WebhookDelivery, WebhookEndpoint

ALARM = "quality.alarm"
ANALYSIS_FINISHED = "quality.analysis.finished"
EVENTS = (ALARM, ANALYSIS_FINISHED)
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
MAX_ATTEMPTS = 8
DELIVER_TASK = "quality.deliver_webhook"


def webhook_secret(*, salt: str) -> str:
    return derived_secret(namespace="quality", purpose="webhook", salt=salt, prefix=SECRET_PREFIX)


def _allow_private() -> bool:
    return private_allowed("QUALITY_WEBHOOK_ALLOW_PRIVATE_HOSTS")


def webhook_url_problem(url: str) -> str | None:
    return outbound_url_problem(url, allow_private=_allow_private())


def webhook_event(*, organization_id, event: str, data: dict) -> list[WebhookDelivery]:
    """One delivery per active endpoint subscribed to `event`; sent once the current transaction commits."""
    deliveries = [
        WebhookDelivery.objects.create(
            organization_id=organization_id,
            endpoint=endpoint,
            event=event,
            payload={"type": event, "organization": endpoint.organization.slug, "data": data},
        )
        for endpoint in WebhookEndpoint.objects.filter(organization_id=organization_id, is_active=True).select_related(
            "organization"
        )
        if event in endpoint.events
    ]
    if deliveries:
        ids = [str(d.pk) for d in deliveries]

        def send() -> None:
            for delivery_id in ids:
                current_app.send_task(DELIVER_TASK, kwargs={"delivery_id": delivery_id}, queue="quality")

        transaction.on_commit(send)
    return deliveries


def webhook_deliver(*, delivery_id: str) -> WebhookDelivery:
    """One attempt. Raises foundation.webhook_delivery.DeliveryFailed (after recording why) when the receiver did
    not take it."""
    return webhook_delivery.webhook_deliver(
        WebhookDelivery,
        delivery_id=delivery_id,
        secret_for=webhook_secret,
        timeout=getattr(settings, "QUALITY_WEBHOOK_TIMEOUT_S", 10),
        allow_private=_allow_private(),
        max_attempts=MAX_ATTEMPTS,
        failure_kind="quality_delivery",
    )
