"""Billing's data for export and erasure (see `tenants.data_protection`).

Invoices, their lines, the subscription they were issued under, credits and the usage ledger are kept after an
organisation is erased: tax and commercial law require invoices and the records they were computed from to be
kept for years (e.g. 10 years under §147 AO in Germany). They hold no personal data once detached: the operator
who issued a credit is unlinked; the ledger's attributes name models and API-key ids whose rows are erased. Quota
overrides are the operator's settings, not records, and go.
"""

from tenants.data_protection import register_section

from .models import Credit, Invoice, InvoiceLine, QuotaOverride, Subscription, UsageEvent


def _detach(organization) -> int:
    return Credit.objects.filter(organization=organization, issued_by__isnull=False).update(issued_by=None)


def register() -> None:
    register_section(
        "invoices",
        app_label="billing",
        models=[Subscription, Invoice, InvoiceLine, Credit, UsageEvent],
        retained=True,
        detach=_detach,
    )
    register_section("quota_overrides", app_label="billing", models=[QuotaOverride])
