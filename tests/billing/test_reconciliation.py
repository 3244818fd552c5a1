"""Reconciliation reports what the ledger missed and what Stripe bills differently, and stays quiet otherwise."""

import logging

import pytest
from django.utils import timezone

from billing import keys, stripe_api
from billing.models import ReconciliationReport
from billing.periods import Period, period_containing
from billing.reconciliation import reconciliation_run
from billing.services import subscription_for
from billing.usage import usage_record
from foundation.redis import get_redis
from tests.billing.helpers import GOOD_CARD, close_period, give_card, on_plan, use

pytestmark = pytest.mark.django_db

METER = "training.tokens"


def test_a_clean_month_gives_a_clean_report(org):
    """Catches false alarms: events still in the stream are flushed before comparing."""
    use(org, METER, 1_000)
    use(org, METER, 2_000)
    report = reconciliation_run(period=period_containing(timezone.now()))
    assert report.is_clean and report.organizations_checked == 1


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record) -> None:
        self.messages.append(record.getMessage())


def test_an_event_lost_between_redis_and_the_ledger_is_reported(org):
    """Catches silent loss: the gateway saw usage that never reached the ledger."""
    use(org, METER, 1_000)
    usage_record(organization_id=org.pk, meter=METER, quantity=250, idempotency_key="lost")
    redis = get_redis()
    last_id = redis.xrevrange(keys.usage_stream(), count=1)[0][0]
    redis.xdel(keys.usage_stream(), last_id)  # what a Redis failover without persistence would do

    warnings, logger = _Warnings(), logging.getLogger("billing.reconciliation")
    logger.addHandler(warnings)
    try:
        report = reconciliation_run(period=period_containing(timezone.now()))
    finally:
        logger.removeHandler(warnings)
    assert report.differences == [
        {
            "kind": "usage",
            "organization_id": str(org.pk),
            "meter": METER,
            "observed": 1_250,
            "ledger": 1_000,
            "difference": -250,
        }
    ]
    assert warnings.messages == [
        f"Billing reconciliation for {report.period_start:%Y%m} found 1 difference(s); see report {report.pk}"
    ]
    assert ReconciliationReport.objects.get() == report


def test_a_stripe_invoice_that_bills_more_than_ours_is_reported(org, stripe_settings):
    """Catches Stripe charging something we did not rate (here a stray item someone added in the dashboard)."""
    on_plan(org, "pro")
    give_card(org, GOOD_CARD)
    subscription = subscription_for(organization=org)
    stripe_api.carrier_subscription_ensure(subscription=subscription, currency="eur")
    customer = subscription.stripe_customer_id
    stripe_api.stripe_client().v1.invoice_items.create(
        params={"customer": customer, "amount": 1234, "currency": "eur", "description": "Manual fee"}
    )
    invoice = close_period(org)
    report = reconciliation_run(period=Period(invoice.period_start, invoice.period_end))
    assert report.invoices_checked == 1
    assert report.differences == [
        {
            "kind": "stripe_total",
            "invoice": str(invoice.pk),
            "stripe_invoice": invoice.stripe_invoice_id,
            "ours": 49900,
            "stripe": 51134,
        }
    ]


def test_usage_that_arrived_after_the_close_is_reported_against_its_invoice(org, stripe_settings):
    """Catches late events billed to no one."""
    invoice = close_period(org)
    use(org, METER, 10, occurred_at=invoice.period_start)
    report = reconciliation_run(period=Period(invoice.period_start, invoice.period_end))
    assert {
        "kind": "late_usage",
        "invoice": str(invoice.pk),
        "meter": METER,
        "invoiced": 0,
        "ledger": 10,
    } in report.differences
