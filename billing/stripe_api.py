"""Lightsout's side of Stripe, through the official SDK pointed at STRIPE_API_BASE (real Stripe, or localstripe).

Every amount comes from `billing.rating`: each invoice line becomes a Stripe invoice item, the monthly fee
included. The Stripe subscription is a carrier on a zero-priced monthly plan, because invoices can only be
created for a customer with a subscription (on localstripe) and because plan changes then never create Stripe
prorations behind the ledger's back. So the Stripe invoice total equals our invoice total to the minor unit,
which reconciliation checks.

Each step can be repeated: creates carry Stripe idempotency keys (honoured by Stripe), and before creating an
invoice item or an invoice we look for the one a crashed earlier attempt made (localstripe ignores the keys).
"""

import logging
from functools import cache
from typing import cast

import stripe
from django.conf import settings

from tenants.roles import Role

from .models import Invoice, InvoiceLine, Subscription
from .rating import to_minor_units

logger = logging.getLogger(__name__)

PRODUCT_ID = "lightsout"


@cache
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(api_key, base_addresses={"api": api_base}, max_network_retries=2)


def stripe_client() -> stripe.StripeClient:
    return _client(settings.STRIPE_API_KEY, settings.STRIPE_API_BASE)


def _carrier_plan(currency: str) -> str:
    client = stripe_client()
    plan_id = f"lightsout-usage-billed-{currency}"
    try:
        client.v1.plans.retrieve(plan_id)
        return plan_id
    except stripe.InvalidRequestError:
        pass
    try:
        client.v1.products.retrieve(PRODUCT_ID)
    except stripe.InvalidRequestError:
        client.v1.products.create(
            params={"id": PRODUCT_ID, "name": "Lightsout"}, options={"idempotency_key": "lightsout-product"}
        )
    client.v1.plans.create(
        params={
            "id": plan_id,
            "product": PRODUCT_ID,
            "amount": 0,
            "currency": currency,
            "interval": "month",
            "nickname": "Usage-billed: amounts are on the invoice items",
        },
        options={"idempotency_key": f"lightsout-plan-{plan_id}"},
    )
    return plan_id


def customer_ensure(*, subscription: Subscription) -> str:
    if subscription.stripe_customer_id:
        return subscription.stripe_customer_id
    organization = subscription.organization
    owner = organization.memberships.filter(role=Role.OWNER).select_related("user").order_by("created_at").first()
    params: stripe.params.CustomerCreateParams = {
        "name": organization.name,
        "metadata": {"organization_id": str(organization.pk), "organization_slug": organization.slug},
    }
    if owner is not None:
        params["email"] = owner.user.email
    customer = stripe_client().v1.customers.create(
        params=params,
        options={"idempotency_key": f"lightsout-customer-{organization.pk}"},
    )
    # A concurrent close may have stored its customer first; keep that one.
    Subscription.objects.filter(pk=subscription.pk, stripe_customer_id="").update(stripe_customer_id=customer.id)
    subscription.refresh_from_db(fields=["stripe_customer_id"])
    return subscription.stripe_customer_id


def carrier_subscription_ensure(*, subscription: Subscription, currency: str) -> str:
    if subscription.stripe_subscription_id:
        return subscription.stripe_subscription_id
    customer_id = customer_ensure(subscription=subscription)
    carrier = stripe_client().v1.subscriptions.create(
        params={
            "customer": customer_id,
            "items": [{"plan": _carrier_plan(currency)}],
            "metadata": {"organization_id": str(subscription.organization_id)},
        },
        options={"idempotency_key": f"lightsout-subscription-{subscription.pk}"},
    )
    Subscription.objects.filter(pk=subscription.pk, stripe_subscription_id="").update(stripe_subscription_id=carrier.id)
    subscription.refresh_from_db(fields=["stripe_subscription_id"])
    return subscription.stripe_subscription_id


def invoice_item_ensure(*, line: InvoiceLine, customer_id: str, subscription_id: str, currency: str) -> str:
    client = stripe_client()
    for item in client.v1.invoice_items.list(params={"customer": customer_id, "limit": 100}).data:
        if item.to_dict().get("metadata", {}).get("lightsout_line_id") == str(line.pk):
            return item.id
    item = client.v1.invoice_items.create(
        params={
            "customer": customer_id,
            "subscription": subscription_id,
            "currency": currency,
            "amount": to_minor_units(line.amount, currency),
            "description": line.description,
            "metadata": {"lightsout_line_id": str(line.pk), "lightsout_invoice_id": str(line.invoice_id)},
        },
        options={"idempotency_key": f"lightsout-line-{line.pk}"},
    )
    return item.id


def invoice_create(*, invoice: Invoice, customer_id: str, subscription_id: str) -> dict:
    """The Stripe invoice for our invoice, sweeping in its pending items: found if a previous try made it."""
    client = stripe_client()
    description = f"Lightsout invoice {invoice.pk}"
    for existing in client.v1.invoices.list(params={"customer": customer_id, "limit": 100}).data:
        if existing.to_dict().get("description") == description:
            return existing.to_dict()
    created = client.v1.invoices.create(
        params={
            "customer": customer_id,
            "subscription": subscription_id,
            "description": description,
            "metadata": {"lightsout_invoice_id": str(invoice.pk)},
            "pending_invoice_items_behavior": "include",
        },
        options={"idempotency_key": f"lightsout-invoice-{invoice.pk}"},
    )
    return created.to_dict()


def invoice_pay(*, stripe_invoice_id: str) -> None:
    """Ask Stripe to collect. A decline is not an error here: the invoice's state says what happened."""
    try:
        stripe_client().v1.invoices.pay(stripe_invoice_id)
    except (stripe.CardError, stripe.InvalidRequestError) as exc:
        logger.info("Stripe did not collect invoice %s: %s", stripe_invoice_id, exc.user_message or exc)


def invoice_fetch(*, stripe_invoice_id: str) -> dict:
    return stripe_client().v1.invoices.retrieve(stripe_invoice_id).to_dict()


def subscription_fetch(*, stripe_subscription_id: str) -> dict:
    return stripe_client().v1.subscriptions.retrieve(stripe_subscription_id).to_dict()


def payment_method_set(*, subscription: Subscription, payment_method_id: str) -> None:
    """Make a payment method (collected by Stripe Elements or Checkout) the customer's default."""
    customer_id = customer_ensure(subscription=subscription)
    client = stripe_client()
    client.v1.payment_methods.attach(payment_method_id, params={"customer": customer_id})
    client.v1.customers.update(customer_id, params={"invoice_settings": {"default_payment_method": payment_method_id}})


def setup_intent_create(*, subscription: Subscription) -> dict:
    """A SetupIntent for the portal's card form: Stripe.js confirms it in the browser with the card, so the card
    number never reaches our servers; `payment_method_from_setup_intent` then makes the card the default."""
    customer_id = customer_ensure(subscription=subscription)
    intent = stripe_client().v1.setup_intents.create(
        # the SDK's params (API 2026-10-28) no longer list payment_method_types: see allowed_payment_method_types
        params={"customer": customer_id, "payment_method_types": ["card"], "usage": "off_session"}  # type: ignore[arg-type]
    )
    return {"id": intent.id, "client_secret": intent.client_secret}


def payment_method_from_setup_intent(*, subscription: Subscription, setup_intent_id: str) -> dict:
    """The card a confirmed SetupIntent of this customer collected, made the default. Refuses an intent of
    another customer (a forged id) or one not confirmed."""
    customer_id = customer_ensure(subscription=subscription)
    client = stripe_client()
    try:
        intent = client.v1.setup_intents.retrieve(setup_intent_id)
    except stripe.InvalidRequestError as exc:
        raise ValueError("Stripe knows no such card setup.") from exc
    if intent.customer != customer_id or intent.status != "succeeded" or not intent.payment_method:
        raise ValueError("This card setup was not completed for this organisation.")
    # not expanded: the id
    payment_method_set(subscription=subscription, payment_method_id=cast(str, intent.payment_method))
    return payment_method_summary(subscription=subscription) or {}


def payment_method_summary(*, subscription: Subscription) -> dict | None:
    """The customer's default card as {brand, last4, exp_month, exp_year}, or None."""
    if not subscription.stripe_customer_id:
        return None
    client = stripe_client()
    customer = client.v1.customers.retrieve(subscription.stripe_customer_id).to_dict()
    payment_method_id = (customer.get("invoice_settings") or {}).get("default_payment_method")
    if not payment_method_id:
        return None
    card = client.v1.payment_methods.retrieve(payment_method_id).to_dict().get("card") or {}
    return {key: card.get(key) for key in ("brand", "last4", "exp_month", "exp_year")}
