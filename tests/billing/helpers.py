"""Billing test data, built through the real services and the real Stripe SDK (against localstripe)."""

import itertools
from datetime import datetime, timedelta

from billing import stripe_api
from billing.invoicing import period_close
from billing.ledger import ledger_flush
from billing.models import Invoice, Plan
from billing.services import subscription_change_plan, subscription_for
from billing.usage import usage_record
from tenants.actor import Actor

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches to the customer, then every charge is declined
_keys = itertools.count(1)


def on_plan(organization, code: str):
    subscription = subscription_for(organization=organization)
    return subscription_change_plan(
        subscription=subscription, plan=Plan.objects.get(code=code), actor=Actor.system(organization=organization)
    )


def give_card(organization, number: str) -> str:
    """What Stripe Elements does in the customer's browser, then what the portal does with the result."""
    payment_method = stripe_api.stripe_client().v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    stripe_api.payment_method_set(
        subscription=subscription_for(organization=organization), payment_method_id=payment_method.id
    )
    return payment_method.id


def use(organization, meter: str, quantity: int, **kwargs) -> str:
    key = kwargs.pop("idempotency_key", f"test-{next(_keys)}")
    usage_record(organization_id=organization.pk, meter=meter, quantity=quantity, idempotency_key=key, **kwargs)
    return key


def after_period(organization) -> datetime:
    """A moment when the organisation's current period has ended and may be closed."""
    return subscription_for(organization=organization).current_period_end + timedelta(hours=2)


def close_period(organization) -> Invoice:
    ledger_flush()
    [invoice] = period_close(organization_id=organization.pk, now=after_period(organization))
    invoice.refresh_from_db()
    return invoice
