"""Billing's Celery tasks. They run on the `billing` queue: the beat entries (settings) send them there. Each only
calls a service."""

from dataclasses import asdict
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from jobs.queues import Queue
from jobs.runner import JobContext, job_task

from .closing import PERIOD_CLOSE_KIND, period_close_due
from .invoicing import period_close
from .ledger import ledger_flush
from .periods import period_containing
from .reconciliation import reconciliation_run
from .services import subscriptions_suspend_overdue


@shared_task(name="billing.ledger_flush", ignore_result=True, soft_time_limit=50, time_limit=60)
def ledger_flush_task(*, max_seconds: float = 10.0, batch_size: int | None = None) -> dict:
    return asdict(ledger_flush(max_seconds=max_seconds, batch_size=batch_size))


@job_task(kind=PERIOD_CLOSE_KIND, queue=Queue.BILLING, time_limit_s=900)
def period_close_job(ctx: JobContext) -> dict:
    invoices = period_close(organization_id=ctx.organization_id)
    return {
        "invoices": [
            {"id": str(i.pk), "period_start": i.period_start.isoformat(), "total": str(i.total), "status": i.status}
            for i in invoices
        ]
    }


@shared_task(name="billing.close_ended_periods", ignore_result=True, soft_time_limit=300, time_limit=330)
def close_ended_periods() -> dict:
    return period_close_due()


@shared_task(name="billing.suspend_overdue", ignore_result=True, soft_time_limit=300, time_limit=330)
def suspend_overdue() -> int:
    return subscriptions_suspend_overdue()


@shared_task(name="billing.reconcile", ignore_result=True, soft_time_limit=1800, time_limit=1860)
def reconcile() -> list[int]:
    """The month that ended (its invoices) and the running month (usage so far)."""
    current = period_containing(timezone.now())
    previous = period_containing(current.start - timedelta(seconds=1))
    return [reconciliation_run(period=period).pk for period in (previous, current)]
