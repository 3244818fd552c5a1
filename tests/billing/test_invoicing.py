"""Closing periods into invoices on (local)Stripe: rating, payment, failure, grace, suspension and restoration."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from billing import stripe_api
from billing.closing import PERIOD_CLOSE_KIND, period_close_due
from billing.errors import PaymentRequired
from billing.invoicing import invoice_recompute, period_close
from billing.ledger import ledger_flush
from billing.models import Invoice, StripeEvent, Subscription
from billing.periods import period_containing
from billing.quotas import quota_reserve
from billing.services import subscription_extend_grace, subscription_for, subscriptions_suspend_overdue
from billing.tasks import period_close_job
from jobs.models import Job
from jobs.runner import run_job
from tenants.actor import Actor
from tenants.models import AuditEvent, Organization
from tests import builders
from tests.billing.helpers import DECLINED_CARD, GOOD_CARD, after_period, close_period, give_card, on_plan, use
from tests.workers import wait_until

SMALL_IN, MEDIUM_OUT = "inference.input_tokens.small", "inference.output_tokens.medium"


def _pro_with_overage(org, card: str) -> None:
    on_plan(org, "pro")
    give_card(org, card)
    use(org, SMALL_IN, 60_000_000)  # 50M included, 10M at 0.00000015 = 1.50
    use(org, MEDIUM_OUT, 6_000_000)  # 5M included, 1M at 0.0000024 = 2.40


def _stripe_invoice(invoice: Invoice) -> dict:
    return stripe_api.invoice_fetch(stripe_invoice_id=invoice.stripe_invoice_id)


@pytest.mark.django_db(transaction=True)
def test_a_closed_period_is_invoiced_on_stripe_line_by_line_and_paid(stripe_webhooks):
    """Catches lines lost on the way to Stripe, totals that differ from ours, or a paid invoice not recorded."""
    org = builders.make_org()
    _pro_with_overage(org, GOOD_CARD)
    invoice = close_period(org)

    assert [(line.kind, line.meter, line.quantity, line.amount) for line in invoice.lines.all()] == [
        ("fee", "", 1, Decimal("499.00")),
        ("usage", SMALL_IN, 10_000_000, Decimal("1.50")),
        ("usage", MEDIUM_OUT, 1_000_000, Decimal("2.40")),
    ]
    assert invoice.total == Decimal("502.90") and invoice.status == Invoice.Status.PAID
    on_stripe = _stripe_invoice(invoice)
    assert (on_stripe["status"], on_stripe["total"], invoice.stripe_total) == ("paid", 50290, 50290)
    assert sorted(line["amount"] for line in on_stripe["lines"]["data"] if line["amount"]) == [150, 240, 49900]
    assert Subscription.objects.get(organization=org).status == Subscription.Status.ACTIVE
    # localstripe's signed invoice.payment_succeeded reaches the app and is recorded once.
    event = wait_until(
        lambda: StripeEvent.objects.filter(
            type="invoice.payment_succeeded", object_id=invoice.stripe_invoice_id
        ).first(),
        timeout=15,
        what="the payment webhook",
    )
    assert event.outcome == f"invoice {invoice.pk} is paid"


@pytest.mark.django_db
def test_closing_the_same_period_twice_does_nothing(stripe_settings, org):
    """Catches a second invoice, or a second Stripe charge, when the close job runs again."""
    _pro_with_overage(org, GOOD_CARD)
    now = after_period(org)
    ledger_flush()
    [invoice] = period_close(organization_id=org.pk, now=now)
    assert period_close(organization_id=org.pk, now=now) == []
    assert Invoice.objects.filter(organization=org).count() == 1
    customer = subscription_for(organization=org).stripe_customer_id
    on_stripe = stripe_api.stripe_client().v1.invoices.list(params={"customer": customer}).data
    assert [i.description for i in on_stripe].count(f"Lightsout invoice {invoice.pk}") == 1


@pytest.mark.django_db
def test_a_close_interrupted_by_stripe_resumes_without_duplicates(stripe_settings, org):
    """Catches a Stripe outage that loses the invoice, or a retry that bills its lines twice."""
    _pro_with_overage(org, GOOD_CARD)
    now = after_period(org)
    ledger_flush()
    with override_settings(STRIPE_API_BASE="http://127.0.0.1:9"), pytest.raises(Exception, match="connect"):
        period_close(organization_id=org.pk, now=now)
    invoice = Invoice.objects.get(organization=org)
    assert invoice.status == Invoice.Status.DRAFT and not invoice.stripe_invoice_id

    period_close(organization_id=org.pk, now=now)  # the next daily run
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and _stripe_invoice(invoice)["total"] == 50290


@pytest.mark.django_db
def test_a_period_with_nothing_owed_is_settled_without_stripe(stripe_settings, org):
    """Catches zero invoices sent to Stripe (a customer without a card would then look delinquent)."""
    use(org, SMALL_IN, 1_000)  # within Starter's free quantity
    invoice = close_period(org)
    assert (invoice.total, invoice.status, invoice.stripe_invoice_id) == (Decimal("0.00"), Invoice.Status.PAID, "")
    subscription = subscription_for(organization=org)
    assert subscription.status == Subscription.Status.ACTIVE and subscription.stripe_customer_id == ""


@pytest.mark.django_db(transaction=True)
def test_a_declined_card_leads_to_past_due_then_suspension_and_payment_restores_service(stripe_webhooks):
    """Catches each step of dunning: past due with grace, allowed with a warning, 402 after the grace, suspension
    by the beat task, and reactivation when the payment finally succeeds (through Stripe's webhook)."""
    org = builders.make_org()
    _pro_with_overage(org, DECLINED_CARD)
    invoice = close_period(org)
    assert invoice.status == Invoice.Status.PAYMENT_FAILED
    assert _stripe_invoice(invoice)["status"] == "open"
    subscription = subscription_for(organization=org)
    assert subscription.status == Subscription.Status.PAST_DUE
    assert subscription.grace_period_ends_at == invoice.payment_failed_at + timedelta(days=7)

    grace_end = subscription.grace_period_ends_at
    within = quota_reserve(organization=org, meter=SMALL_IN, quantity=1, now=grace_end - timedelta(hours=1))
    assert "unpaid" in within.warning
    with pytest.raises(PaymentRequired) as refused:
        quota_reserve(organization=org, meter=SMALL_IN, quantity=1, now=grace_end + timedelta(minutes=1))
    assert refused.value.status_code == 402
    assert subscriptions_suspend_overdue(now=grace_end - timedelta(minutes=1)) == 0
    assert subscriptions_suspend_overdue(now=grace_end + timedelta(minutes=1)) == 1
    org.refresh_from_db()
    assert org.status == Organization.Status.SUSPENDED and "Unpaid invoice" in org.suspended_reason

    # The customer puts in a working card and Stripe collects the open invoice; its webhook restores service.
    give_card(org, GOOD_CARD)
    stripe_api.stripe_client().v1.invoices.pay(invoice.stripe_invoice_id)
    wait_until(lambda: Organization.objects.get(pk=org.pk).is_active, timeout=15, what="the reactivation")
    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert (subscription.status, subscription.grace_period_ends_at, subscription.suspended_for_billing_at) == (
        Subscription.Status.ACTIVE,
        None,
        None,
    )
    actions = list(
        AuditEvent.objects.filter(organization=org, action__startswith="org.s").values_list("action", "actor_label")
    )
    assert actions == [(AuditEvent.Action.ORG_SUSPENDED, "system")]
    assert AuditEvent.objects.filter(organization=org, action=AuditEvent.Action.ORG_REACTIVATED).count() == 1


@pytest.mark.django_db
def test_an_operator_extending_the_grace_period_lifts_a_billing_suspension(stripe_settings, org):
    """Catches an extension that leaves the organisation locked out until the next beat run."""
    _pro_with_overage(org, DECLINED_CARD)
    close_period(org)
    subscription = subscription_for(organization=org)
    later = subscription.grace_period_ends_at + timedelta(minutes=1)
    subscriptions_suspend_overdue(now=later)
    org.refresh_from_db()
    assert not org.is_active

    operator = builders.make_user()
    subscription = subscription_extend_grace(
        subscription=subscription, days=5, actor=Actor.system(organization=org, user=operator)
    )
    org.refresh_from_db()
    assert org.is_active and subscription.suspended_for_billing_at is None
    assert subscription.grace_period_ends_at > later


@pytest.mark.django_db
def test_an_invoice_recomputes_to_its_lines_and_shows_usage_that_arrived_after_the_close(stripe_settings, org):
    """Catches rating that cannot be reproduced from the invoice's snapshot, or late usage that goes unnoticed."""
    _pro_with_overage(org, GOOD_CARD)
    invoice = close_period(org)
    assert invoice_recompute(invoice=invoice).reproducible
    assert invoice_recompute(invoice=invoice).late_usage_difference == 0

    use(org, MEDIUM_OUT, 1_000_000, occurred_at=invoice.period_end - timedelta(seconds=1))
    ledger_flush()
    assert invoice_recompute(invoice=invoice).late_usage_difference == Decimal("2.40")


@pytest.mark.django_db(transaction=True)
def test_the_daily_run_starts_one_close_job_per_due_organisation_and_the_job_catches_up(org):
    """Catches an organisation never invoiced because nothing created its subscription, a duplicate close job,
    or a job that closes only one of several overdue months."""
    use(org, SMALL_IN, 500, occurred_at=datetime(2025, 1, 15, tzinfo=UTC))
    ledger_flush()
    assert period_close_due() == {"jobs_started": 1, "closed_directly": 0}
    assert period_close_due() == {"jobs_started": 0, "closed_directly": 0}  # the first job is still queued
    job = Job.objects.get(organization=org, kind=PERIOD_CLOSE_KIND)
    run_job(job_id=str(job.pk), organization_id=str(org.pk), handler=period_close_job.handler)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    invoices = Invoice.objects.filter(organization=org).order_by("period_start")
    assert invoices[0].period_start == datetime(2025, 1, 1, tzinfo=UTC) and invoices[0].usage == {SMALL_IN: 500}
    assert invoices.last().period_end == period_containing(timezone.now()).start
    assert len(job.result["invoices"]) == invoices.count()
