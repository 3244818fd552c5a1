"""Which organisations have a period to close, and starting the close job for each (beat runs this daily)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_create
from tenants.models import Organization

from .invoicing import period_close
from .models import Invoice, Subscription, UsageEvent
from .services import subscription_for

PERIOD_CLOSE_KIND = "billing.period_close"


def _subscribe_organizations_with_usage() -> None:
    """An organisation that used something before anything asked for its subscription still gets invoiced,
    from the month of its first event."""
    for organization in Organization.objects.filter(subscription__isnull=True):
        first = (
            UsageEvent.objects.filter(organization=organization)
            .order_by("occurred_at")
            .values_list("occurred_at", flat=True)
            .first()
        )
        if first is not None:
            subscription_for(organization=organization, now=first)


def period_close_due(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    _subscribe_organizations_with_usage()
    cutoff = now - timedelta(seconds=settings.BILLING_CLOSE_DELAY_SECONDS)
    due = set(
        Subscription.objects.filter(current_period_end__lte=cutoff)
        .exclude(status=Subscription.Status.CANCELED)
        .values_list("organization_id", flat=True)
    )
    due |= set(Invoice.objects.filter(status=Invoice.Status.DRAFT).values_list("organization_id", flat=True))
    busy = set(
        Job.objects.filter(kind=PERIOD_CLOSE_KIND, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).values_list(
            "organization_id", flat=True
        )
    )
    started = closed_directly = 0
    for organization in Organization.objects.filter(pk__in=due - busy):
        if organization.is_active:
            job_create(organization=organization, kind=PERIOD_CLOSE_KIND, params={})
            started += 1
        else:
            # The job machine refuses work for suspended organisations, but their period is still owed.
            period_close(organization_id=organization.pk, now=now)
            closed_directly += 1
    return {"jobs_started": started, "closed_directly": closed_directly}
