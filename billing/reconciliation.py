"""Reconciliation: does the ledger hold what the gateway recorded, and does Stripe bill what we invoiced?

For one period it compares, per organisation and meter, what `usage_record` accepted (`usage_observed`, Redis)
with the ledger's totals, and, per invoice of the period, our total with Stripe's and the usage we rated with
the ledger as it is now (usage that arrived after the close was not billed). Differences are kept in a
`ReconciliationReport` for operators and logged as a warning.
"""

import logging
from collections import defaultdict

import stripe
from django.conf import settings
from django.db.models import Sum

from foundation.redis import get_redis

from . import keys, stripe_api
from .ledger import ledger_backlog, ledger_flush
from .models import Invoice, ReconciliationReport, UsageEvent
from .periods import Period
from .rating import to_minor_units
from .usage import usage_observed

logger = logging.getLogger(__name__)


def _ledger_by_organization(period: Period) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = defaultdict(dict)
    rows = (
        UsageEvent.objects.filter(occurred_at__gte=period.start, occurred_at__lt=period.end)
        .values("organization_id", "meter")
        .annotate(total=Sum("quantity"))
    )
    for row in rows:
        totals[str(row["organization_id"])][row["meter"]] = row["total"]
    return totals


def _usage_differences(period: Period, ledger: dict[str, dict[str, int]]) -> tuple[int, list[dict]]:
    observed_orgs = {
        keys.organization_of_counters(key)
        for key in get_redis().scan_iter(match=keys.counters_pattern(period.key), count=1000)
    }
    differences = []
    for organization_id in sorted(observed_orgs | set(ledger)):
        observed = usage_observed(organization_id=organization_id, period=period)
        in_ledger = ledger.get(organization_id, {})
        for meter in sorted(set(observed) | set(in_ledger)):
            seen, booked = observed.get(meter, 0), in_ledger.get(meter, 0)
            if seen != booked:
                differences.append(
                    {
                        "kind": "usage",
                        "organization_id": organization_id,
                        "meter": meter,
                        "observed": seen,
                        "ledger": booked,
                        "difference": booked - seen,
                    }
                )
    return len(observed_orgs | set(ledger)), differences


def _invoice_differences(invoice: Invoice, ledger: dict[str, int]) -> list[dict]:
    differences = []
    for meter in sorted(set(invoice.usage) | set(ledger)):
        if invoice.usage.get(meter, 0) != ledger.get(meter, 0):
            differences.append(
                {
                    "kind": "late_usage",
                    "invoice": str(invoice.pk),
                    "meter": meter,
                    "invoiced": invoice.usage.get(meter, 0),
                    "ledger": ledger.get(meter, 0),
                }
            )
    if invoice.stripe_invoice_id:
        try:
            stripe_total = stripe_api.invoice_fetch(stripe_invoice_id=invoice.stripe_invoice_id).get("total")
        except stripe.StripeError as exc:
            return [*differences, {"kind": "stripe_unreachable", "invoice": str(invoice.pk), "error": str(exc)}]
        ours = to_minor_units(invoice.total, invoice.currency)
        if stripe_total != ours:
            differences.append(
                {
                    "kind": "stripe_total",
                    "invoice": str(invoice.pk),
                    "stripe_invoice": invoice.stripe_invoice_id,
                    "ours": ours,
                    "stripe": stripe_total,
                }
            )
    return differences


def reconciliation_run(*, period: Period) -> ReconciliationReport:
    # Compare after the backlog is in the ledger, so events in flight are not reported as missing.
    ledger_flush(max_seconds=settings.BILLING_CLOSE_FLUSH_SECONDS)
    ledger = _ledger_by_organization(period)
    organizations, differences = _usage_differences(period, ledger)
    backlog = ledger_backlog()
    if backlog:
        differences.append({"kind": "backlog", "unflushed_events": backlog})
    invoices = list(Invoice.objects.filter(period_start__gte=period.start, period_start__lt=period.end))
    for invoice in invoices:
        differences += _invoice_differences(invoice, ledger.get(str(invoice.organization_id), {}))
    report = ReconciliationReport.objects.create(
        period_start=period.start,
        period_end=period.end,
        organizations_checked=organizations,
        invoices_checked=len(invoices),
        differences=differences,
    )
    if differences:
        logger.warning(
            "Billing reconciliation for %s found %d difference(s); see report %s",
            period.key,
            len(differences),
            report.pk,
        )
    return report
