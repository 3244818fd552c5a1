"""A real Celery worker flushing the ledger is SIGKILLed mid-batch; a second one finishes: every event exactly once."""

import signal

import pytest
from django.db.models import Count, Sum

from billing import keys
from billing.ledger import GROUP
from billing.models import UsageEvent
from billing.tasks import ledger_flush_task
from billing.usage import Usage, usage_record_many
from foundation.redis import get_redis
from jobs.queues import Queue
from tests import builders
from tests.workers import start_worker, stop_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

EVENTS_PER_ORG = 15_000


def _pending() -> int:
    return get_redis().xpending(keys.usage_stream(), GROUP)["pending"]


def test_a_flusher_killed_mid_batch_loses_nothing_and_counts_nothing_twice(tmp_path, monkeypatch):
    orgs = [builders.make_org(), builders.make_org()]
    for n, org in enumerate(orgs, start=1):
        usage_record_many(Usage(org.pk, "training.tokens", n * 1000 + i % 7, f"evt-{i}") for i in range(EVENTS_PER_ORG))
    expected = {org.pk: sum(n * 1000 + i % 7 for i in range(EVENTS_PER_ORG)) for n, org in enumerate(orgs, start=1)}

    doomed = start_worker(queues=Queue.BILLING, name="doomed", log_path=tmp_path / "doomed.log")
    try:
        # Batches of one stream entry (200 events), so the worker is caught between reading a batch and
        # acknowledging it.
        ledger_flush_task.apply_async(kwargs={"max_seconds": 120, "batch_size": 1}, queue=Queue.BILLING)
        wait_until(
            lambda: UsageEvent.objects.count() > 3000 and _pending() > 0,
            interval=0.005,
            what="the worker to be half-way, holding an unacknowledged batch",
        )
    finally:
        stop_worker(doomed, sig=signal.SIGKILL)
    pending_at_kill = _pending()
    in_ledger_at_kill = UsageEvent.objects.count()
    assert pending_at_kill > 0, "the kill did not land mid-batch"
    assert in_ledger_at_kill < 2 * EVENTS_PER_ORG

    # The rescuer re-claims entries that a consumer left unacknowledged for a second.
    monkeypatch.setenv("BILLING_FLUSH_CLAIM_IDLE_SECONDS", "1")
    rescuer = start_worker(queues=Queue.BILLING, name="rescuer", log_path=tmp_path / "rescuer.log")

    def flushed_by_beat() -> bool:
        ledger_flush_task.apply_async(queue=Queue.BILLING)  # what beat sends every 2 s
        return get_redis().xlen(keys.usage_stream()) == 0 and _pending() == 0

    try:
        wait_until(flushed_by_beat, timeout=60, interval=2, what="the rescuer to drain the stream")
    finally:
        stop_worker(rescuer)

    per_org = dict(UsageEvent.objects.values_list("organization_id").annotate(Sum("quantity")))
    assert per_org == expected
    assert UsageEvent.objects.count() == 2 * EVENTS_PER_ORG
    assert not UsageEvent.objects.values("organization_id", "idempotency_key").annotate(n=Count("id")).filter(n__gt=1)
