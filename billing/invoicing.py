"""Closing periods into invoices, sending them to Stripe, and following what Stripe says about them.

Closing is idempotent: under a lock on the subscription, a period is rated from the ledger into an invoice
(unique per organisation and period start) and the subscription moves to the next period, in one transaction;
closing the same period again finds nothing to do. Sending is resumable: a draft invoice is sent again by the
next close run, which finds what Stripe already has.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import stripe_api
from .catalogue import plan_snapshot
from .ledger import ledger_flush
from .models import Invoice, InvoiceLine, Subscription
from .periods import Period, period_containing
from .rating import InvoiceDraft, LineDraft, rate
from .selectors import ledger_totals
from .services import subscription_refresh_status

logger = logging.getLogger(__name__)
InvoiceStatus = Invoice.Status


def _close_one(*, organization_id, now: datetime) -> Invoice | None:
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update().select_related("plan").get(organization_id=organization_id)
        )
        if subscription.current_period_end > now - timedelta(seconds=settings.BILLING_CLOSE_DELAY_SECONDS):
            return None
        period = Period(subscription.current_period_start, subscription.current_period_end)
        snapshot = plan_snapshot(subscription.plan)
        usage = ledger_totals(organization_id=organization_id, period=period)
        draft = rate(plan_snapshot=snapshot, usage_by_meter=usage, period=period)
        nothing_owed = draft.total == 0
        invoice = Invoice.objects.create(
            organization_id=organization_id,
            subscription=subscription,
            period_start=period.start,
            period_end=period.end,
            currency=draft.currency,
            total=draft.total,
            plan_snapshot=snapshot,
            usage=usage,
            status=InvoiceStatus.PAID if nothing_owed else InvoiceStatus.DRAFT,
            paid_at=now if nothing_owed else None,
        )
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                organization_id=organization_id,
                invoice=invoice,
                position=position,
                kind=line.kind,
                meter=line.meter,
                description=line.description[:250],
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
            )
            for position, line in enumerate(draft.lines, start=1)
        )
        following = period_containing(period.end)
        subscription.current_period_start, subscription.current_period_end = following.start, following.end
        subscription.save(update_fields=["current_period_start", "current_period_end", "updated_at"])
    if nothing_owed:
        subscription_refresh_status(subscription=subscription)
    return invoice


def period_close(*, organization_id, now: datetime | None = None) -> list[Invoice]:
    """Close every period of the organisation that ended, then send its unsent invoices to Stripe."""
    now = now or timezone.now()
    ledger_flush(max_seconds=settings.BILLING_CLOSE_FLUSH_SECONDS)  # events recorded before the close count
    closed = []
    while (invoice := _close_one(organization_id=organization_id, now=now)) is not None:
        logger.info("Closed %s", invoice)
        closed.append(invoice)
    for invoice in Invoice.objects.filter(organization_id=organization_id, status=InvoiceStatus.DRAFT):
        invoice_send(invoice=invoice, now=now)
    return closed


def invoice_send(*, invoice: Invoice, now: datetime | None = None) -> Invoice:
    """Put a draft invoice on Stripe, line by line, and ask Stripe to collect it.

    The customer and the carrier subscription are stored as soon as Stripe made them. The rest happens with the
    invoice row locked, so two close runs cannot send it twice (the second skips it); if it fails half-way, the
    next run finds the items and the invoice Stripe already has (`stripe_api`) instead of making them again.
    """
    subscription = Subscription.objects.select_related("organization").get(pk=invoice.subscription_id)
    customer_id = stripe_api.customer_ensure(subscription=subscription)
    carrier_id = stripe_api.carrier_subscription_ensure(subscription=subscription, currency=invoice.currency)
    with transaction.atomic():
        locked = (
            Invoice.objects.select_for_update(skip_locked=True)
            .filter(pk=invoice.pk, status=InvoiceStatus.DRAFT)
            .first()
        )
        if locked is None:
            return invoice
        for line in locked.lines.filter(stripe_invoice_item_id="").exclude(amount=0):
            line.stripe_invoice_item_id = stripe_api.invoice_item_ensure(
                line=line, customer_id=customer_id, subscription_id=carrier_id, currency=locked.currency
            )
            line.save(update_fields=["stripe_invoice_item_id"])
        if not locked.stripe_invoice_id:
            created = stripe_api.invoice_create(invoice=locked, customer_id=customer_id, subscription_id=carrier_id)
            locked.stripe_invoice_id = created["id"]
            locked.save(update_fields=["stripe_invoice_id"])
        return invoice_collect(invoice=locked, now=now)


def invoice_collect(*, invoice: Invoice, now: datetime | None = None) -> Invoice:
    """Ask Stripe to take the payment (again), then record what came of it."""
    stripe_api.invoice_pay(stripe_invoice_id=invoice.stripe_invoice_id)
    stripe_invoice = stripe_api.invoice_fetch(stripe_invoice_id=invoice.stripe_invoice_id)
    synced = invoice_sync_from_stripe(stripe_invoice=stripe_invoice, now=now)
    if synced is None:  # the row it was fetched for has gone meanwhile
        raise Invoice.DoesNotExist(f"Invoice {invoice.pk} no longer exists.")
    return synced


def _status_from_stripe(stripe_invoice: dict) -> str:
    status = stripe_invoice.get("status")
    if status == "paid":
        return InvoiceStatus.PAID
    if status == "void":
        return InvoiceStatus.VOID
    if status == "uncollectible" or (status == "open" and stripe_invoice.get("attempted")):
        return InvoiceStatus.PAYMENT_FAILED
    return InvoiceStatus.OPEN


def invoice_sync_from_stripe(*, stripe_invoice: dict, now: datetime | None = None) -> Invoice | None:
    """Take Stripe's current state of an invoice. Paid and void are final; None if it is not ours."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(stripe_invoice_id=stripe_invoice["id"]).first()
        if invoice is None:
            return None
        status = _status_from_stripe(stripe_invoice)
        if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.VOID):
            status = invoice.status
        invoice.stripe_total = stripe_invoice.get("total")
        if status == InvoiceStatus.PAID and invoice.paid_at is None:
            invoice.paid_at = now
        if status == InvoiceStatus.PAYMENT_FAILED and invoice.payment_failed_at is None:
            invoice.payment_failed_at = now
        changed = status != invoice.status
        invoice.status = status
        invoice.save(update_fields=["status", "stripe_total", "paid_at", "payment_failed_at"])
    if changed:
        logger.info("Invoice %s is now %s", invoice.pk, status)
    subscription_refresh_status(subscription=invoice.subscription)
    return invoice


def carrier_subscription_forget(*, stripe_subscription: dict) -> str:
    """Stripe canceled our carrier subscription (its own dunning, or someone in the dashboard): the next invoice
    sent creates a new one instead of failing on the canceled one."""
    if stripe_subscription.get("status") != "canceled":
        return f"{stripe_subscription['id']} is {stripe_subscription.get('status')}; kept"
    forgotten = Subscription.objects.filter(stripe_subscription_id=stripe_subscription["id"]).update(
        stripe_subscription_id=""
    )
    return f"{stripe_subscription['id']} canceled; " + (
        "a new one is made at the next invoice" if forgotten else "not a Lightsout subscription; ignored"
    )


@dataclass(frozen=True)
class InvoiceComparison:
    stored: InvoiceDraft
    from_snapshot: InvoiceDraft
    from_ledger_now: InvoiceDraft

    @property
    def reproducible(self) -> bool:
        """Rating the stored plan snapshot and usage again gives the stored lines."""
        return self.from_snapshot.lines == self.stored.lines

    @property
    def late_usage_difference(self) -> Decimal:
        """What usage that reached the ledger after the close would have added (or removed)."""
        return self.from_ledger_now.total - self.stored.total


def invoice_recompute(*, invoice: Invoice) -> InvoiceComparison:
    """Rate the invoice again from its own snapshot, and from the ledger as it is now, to compare with it."""
    period = Period(invoice.period_start, invoice.period_end)
    stored_lines = tuple(
        LineDraft(line.kind, line.meter, line.description, line.quantity, line.unit_price, line.amount)
        for line in invoice.lines.order_by("position")
    )
    return InvoiceComparison(
        stored=InvoiceDraft(invoice.currency, period, stored_lines),
        from_snapshot=rate(plan_snapshot=invoice.plan_snapshot, usage_by_meter=invoice.usage, period=period),
        from_ledger_now=rate(
            plan_snapshot=invoice.plan_snapshot,
            period=period,
            usage_by_meter=ledger_totals(organization_id=invoice.organization_id, period=period),
        ),
    )
