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
The attempt and its record are foundation.webhooks and foundation.webhook_delivery (shared with quality).
"""

from django.conf import settings

from foundation import webhook_delivery
from foundation.outbound import outbound_url_problem, private_allowed

from .models import WebhookDelivery
from .signing import webhook_secret

MAX_ATTEMPTS = 8


def _allow_private() -> bool:
    return private_allowed("MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS")


def webhook_url_problem(url: str) -> str | None:
    return outbound_url_problem(url, allow_private=_allow_private())


def webhook_deliver(*, delivery_id: str) -> WebhookDelivery:
    """One attempt. Raises foundation.webhook_delivery.DeliveryFailed (after recording why) when the receiver did
    not take it."""
    return webhook_delivery.webhook_deliver(
        WebhookDelivery,
        delivery_id=delivery_id,
        secret_for=webhook_secret,
        timeout=getattr(settings, "MAINTENANCE_WEBHOOK_TIMEOUT_S", 10),
        allow_private=_allow_private(),
        max_attempts=MAX_ATTEMPTS,
        failure_kind="maintenance_delivery",
    )
