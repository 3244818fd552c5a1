"""Periodic data-protection work: finishing erasures after their grace period, and enforcing retention."""

from celery import shared_task

from .erasure import organizations_erase_due
from .retention import retention_enforce


@shared_task(name="tenants.finish_erasures", ignore_result=True)
def finish_erasures() -> int:
    return organizations_erase_due()


@shared_task(name="tenants.enforce_retention", ignore_result=True)
def enforce_retention() -> dict[str, int]:
    return retention_enforce()
