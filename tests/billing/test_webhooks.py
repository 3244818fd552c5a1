"""Stripe webhooks: forged or replayed requests are refused; duplicates and late, out-of-order events are harmless."""

import json
import time

import pytest
import stripe

from billing import stripe_api
from billing.models import Invoice, StripeEvent, Subscription
from billing.services import subscription_for
from tests.billing.conftest import WEBHOOK_PATH, WEBHOOK_SECRET
from tests.billing.helpers import DECLINED_CARD, GOOD_CARD, close_period, give_card, on_plan, use

pytestmark = pytest.mark.django_db


def _event(event_id: str, event_type: str, object_id: str, created: int | None = None) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": created or int(time.time()),
            "data": {"object": {"id": object_id, "object": "invoice"}},
        }
    )


def _deliver(client, payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return client.post(WEBHOOK_PATH, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


@pytest.fixture
def failed_invoice(stripe_settings, org) -> Invoice:
    """An invoice whose payment was declined, then collected on Stripe without telling us (no webhook set up)."""
    on_plan(org, "pro")
    give_card(org, DECLINED_CARD)
    use(org, "inference.input_tokens.small", 1)
    invoice = close_period(org)
    assert invoice.status == Invoice.Status.PAYMENT_FAILED
    give_card(org, GOOD_CARD)
    stripe_api.stripe_client().v1.invoices.pay(invoice.stripe_invoice_id)
    return invoice


def test_a_request_signed_with_another_secret_is_refused(client, stripe_settings):
    """Catches a webhook endpoint anyone could post 'invoice.paid' to."""
    response = _deliver(client, _event("evt_forged", "invoice.paid", "in_x"), secret="whsec_attacker")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    unsigned = client.post(
        WEBHOOK_PATH, data=_event("evt_unsigned", "invoice.paid", "in_x"), content_type="application/json"
    )
    assert unsigned.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_genuine_but_old_request_is_refused(client, stripe_settings):
    """Catches a captured webhook replayed later (the signed timestamp is outside the tolerance)."""
    response = _deliver(client, _event("evt_old", "invoice.paid", "in_x"), timestamp=int(time.time()) - 3600)
    assert response.status_code == 400
    assert "timestamp" in response.json()["error"]["message"].lower()
    assert not StripeEvent.objects.exists()


def test_the_same_event_delivered_twice_is_processed_once(client, failed_invoice):
    """Catches a redelivered event applied a second time."""
    payload = _event("evt_paid_1", "invoice.paid", failed_invoice.stripe_invoice_id)
    first, second = _deliver(client, payload), _deliver(client, payload)
    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert first.json()["outcome"] == f"invoice {failed_invoice.pk} is paid"
    assert (second.status_code, second.json()["duplicate"]) == (200, True)
    assert StripeEvent.objects.filter(pk="evt_paid_1").count() == 1
    failed_invoice.refresh_from_db()
    assert failed_invoice.status == Invoice.Status.PAID
    assert subscription_for(organization=failed_invoice.organization).status == Subscription.Status.ACTIVE


def test_an_old_failure_event_arriving_after_the_payment_does_not_undo_it(client, failed_invoice):
    """Catches processing in delivery order: Stripe does not guarantee it, so the handler reads current state."""
    before = int(time.time()) - 60
    assert _deliver(client, _event("evt_paid_2", "invoice.paid", failed_invoice.stripe_invoice_id)).status_code == 200
    late = _deliver(
        client, _event("evt_failed_1", "invoice.payment_failed", failed_invoice.stripe_invoice_id, created=before)
    )
    assert late.status_code == 200 and late.json()["outcome"].endswith("is paid")
    failed_invoice.refresh_from_db()
    assert failed_invoice.status == Invoice.Status.PAID


def test_events_that_are_not_about_our_invoices_are_recorded_and_ignored(client, failed_invoice):
    """Catches a handler that fails (and makes Stripe retry for days) on events it has no business with."""
    customer = subscription_for(organization=failed_invoice.organization).stripe_customer_id
    # Creating the carrier subscription made Stripe issue its own zero invoice: not one of ours.
    [foreign] = [
        i.id
        for i in stripe_api.stripe_client().v1.invoices.list(params={"customer": customer}).data
        if i.id != failed_invoice.stripe_invoice_id
    ]
    other_type = _deliver(client, _event("evt_cus", "customer.created", customer))
    not_ours = _deliver(client, _event("evt_foreign", "invoice.paid", foreign))
    assert (other_type.status_code, other_type.json()["outcome"]) == (200, "ignored")
    assert (not_ours.status_code, not_ours.json()["outcome"]) == (200, f"{foreign} is not a Lightsout invoice; ignored")
    assert set(StripeEvent.objects.values_list("pk", flat=True)) == {"evt_cus", "evt_foreign"}


def test_a_carrier_subscription_canceled_on_stripe_is_replaced_at_the_next_invoice(client, failed_invoice):
    """Catches every later close failing because Stripe's dunning canceled the subscription invoices hang on."""
    subscription = subscription_for(organization=failed_invoice.organization)
    carrier = subscription.stripe_subscription_id
    stripe_api.stripe_client().v1.subscriptions.cancel(carrier)
    response = _deliver(client, _event("evt_sub_gone", "customer.subscription.deleted", carrier))
    assert response.json()["outcome"] == f"{carrier} canceled; a new one is made at the next invoice"
    subscription.refresh_from_db()
    assert subscription.stripe_subscription_id == ""
    following = close_period(failed_invoice.organization)  # the next month: Pro's fee, on a new carrier
    subscription.refresh_from_db()
    assert following.status == Invoice.Status.PAID and subscription.stripe_subscription_id not in ("", carrier)
