"""Stripe webhooks: verified, recorded once, processed once, in any order.

The signature (`Stripe-Signature: t=...,v1=HMAC-SHA256(secret, "t.payload")`) is checked with the SDK, with a
timestamp tolerance so a captured request cannot be replayed later. The event id is the primary key of
`StripeEvent`: the row and the processing commit together, so a duplicate delivery finds the row and does
nothing, and a processing failure leaves no row, so Stripe's retry processes it again.

Processing never trusts the event's copy of the object: it fetches the invoice's current state from Stripe.
An old `invoice.payment_failed` arriving after `invoice.paid` therefore still reads "paid".
"""

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.db import transaction

from foundation.metrics import WEBHOOK_FAILURES

from . import stripe_api
from .invoicing import carrier_subscription_forget, invoice_sync_from_stripe
from .models import StripeEvent

logger = logging.getLogger(__name__)


class WebhookRejected(Exception):
    """The request is not a genuine, recent Stripe event (answered 400)."""


@dataclass(frozen=True)
class WebhookOutcome:
    event: StripeEvent
    duplicate: bool


def _verified_event(*, payload: bytes, signature: str) -> dict:
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
        event = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected(str(exc).split(";")[0]) from exc
    except ValueError as exc:
        raise WebhookRejected("The body is not JSON.") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or "type" not in event:
        raise WebhookRejected("The body is not a Stripe event.")
    return event


def _process(event: dict) -> str:
    object_id = event["data"]["object"]["id"]
    if event["type"] == "customer.subscription.deleted":
        return carrier_subscription_forget(
            stripe_subscription=stripe_api.subscription_fetch(stripe_subscription_id=object_id)
        )
    if not event["type"].startswith("invoice."):
        return "ignored"
    invoice_id = object_id
    current = stripe_api.invoice_fetch(stripe_invoice_id=invoice_id)
    invoice = invoice_sync_from_stripe(stripe_invoice=current)
    if invoice is None:
        return f"{invoice_id} is not a Lightsout invoice; ignored"
    return f"invoice {invoice.pk} is {invoice.status}"


def stripe_event_receive(*, payload: bytes, signature: str) -> WebhookOutcome:
    try:
        event = _verified_event(payload=payload, signature=signature)
    except WebhookRejected:
        WEBHOOK_FAILURES.labels(kind="stripe_rejected").inc()
        raise
    data_object = event.get("data", {}).get("object", {})
    with transaction.atomic():
        record, created = StripeEvent.objects.get_or_create(
            id=event["id"],
            defaults={
                "type": event["type"],
                "object_id": str(data_object.get("id", ""))[:255],
                "created": datetime.fromtimestamp(int(event.get("created", 0)), UTC),
            },
        )
        if not created:
            return WebhookOutcome(record, duplicate=True)
        record.outcome = _process(event)[:250]
        record.save(update_fields=["outcome"])
    logger.info("Stripe event %s (%s): %s", record.id, record.type, record.outcome)
    return WebhookOutcome(record, duplicate=False)
