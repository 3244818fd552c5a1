"""Recording usage into Redis and flushing it into the ledger: exactly once, immutable, nothing poisoning a batch."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import ProtectedError

from billing import keys
from billing.ledger import ledger_backlog, ledger_flush
from billing.models import UsageEvent
from billing.periods import period_containing
from billing.usage import Usage, usage_observed, usage_record, usage_record_many
from foundation.redis import get_redis

pytestmark = pytest.mark.django_db

METER = "inference.output_tokens.small"


def test_recording_writes_no_row_until_the_flusher_moves_the_batch(org):
    """Catches a usage_record that writes to PostgreSQL on the request path, or a flusher that drops events."""
    occurred = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
    usage_record_many([Usage(org.pk, METER, 10 + n, f"req-{n}", {"model": "smol"}, occurred) for n in range(50)])
    assert UsageEvent.objects.count() == 0 and ledger_backlog() == 1  # one stream entry holds the batch

    result = ledger_flush()
    assert (result.read, result.inserted, result.duplicates) == (50, 50, 0)
    assert ledger_backlog() == 0
    row = UsageEvent.objects.get(idempotency_key="req-7")
    assert (row.organization_id, row.meter, row.quantity, row.occurred_at, row.attributes) == (
        org.pk,
        METER,
        17,
        occurred,
        {"model": "smol"},
    )
    assert sum(UsageEvent.objects.values_list("quantity", flat=True)) == sum(10 + n for n in range(50))


def test_a_duplicate_idempotency_key_is_counted_once_in_redis_and_in_the_ledger(org):
    """Catches double billing of a retried event, whether the retry comes at once or after the dedupe window."""
    assert usage_record(organization_id=org.pk, meter=METER, quantity=5, idempotency_key="chatcmpl-1") is True
    assert usage_record(organization_id=org.pk, meter=METER, quantity=5, idempotency_key="chatcmpl-1") is False
    # After the Redis window (simulated by dropping its key) only the ledger's unique key stands in the way.
    get_redis().delete(keys.seen(str(org.pk), "chatcmpl-1"))
    assert usage_record(organization_id=org.pk, meter=METER, quantity=5, idempotency_key="chatcmpl-1") is True
    result = ledger_flush()
    assert (result.inserted, result.duplicates) == (1, 1)
    assert UsageEvent.objects.get().quantity == 5


def test_the_same_key_in_two_organisations_is_two_events(org, other_org):
    """Catches a global idempotency key that would let one tenant's event swallow another's."""
    for organization in (org, other_org):
        usage_record(organization_id=organization.pk, meter=METER, quantity=3, idempotency_key="job-1")
    ledger_flush()
    assert UsageEvent.objects.filter(idempotency_key="job-1").count() == 2


def test_observed_counts_what_was_accepted_per_meter_and_period(org):
    """Catches an observed counter that drifts from what recording accepted (reconciliation depends on it)."""
    usage_record(organization_id=org.pk, meter=METER, quantity=7, idempotency_key="a")
    usage_record(organization_id=org.pk, meter=METER, quantity=7, idempotency_key="a")
    usage_record(organization_id=org.pk, meter="training.tokens", quantity=100, idempotency_key="b")
    observed = usage_observed(organization_id=org.pk, period=period_containing(datetime.now(UTC)))
    assert observed == {METER: 7, "training.tokens": 100}


def test_invalid_usage_is_refused_before_it_reaches_redis(org):
    """Catches unknown meters, zero or fractional quantities and unexplained negative usage entering the ledger."""
    bad = [
        {"meter": "gpu.hours", "quantity": 1},
        {"meter": METER, "quantity": 0},
        {"meter": METER, "quantity": 1.5},
        {"meter": METER, "quantity": -5},
    ]
    for fields in bad:
        with pytest.raises(ValueError):
            usage_record(organization_id=org.pk, idempotency_key="x", **fields)
    assert ledger_backlog() == 0
    usage_record(organization_id=org.pk, meter=METER, quantity=-5, idempotency_key="fix-1", reason="Double-billed")
    ledger_flush()
    assert UsageEvent.objects.get().reason == "Double-billed"


def test_ledger_rows_cannot_be_updated_or_deleted(org):
    """Catches any path (ORM, admin, raw SQL) that could rewrite billing history."""
    usage_record(organization_id=org.pk, meter=METER, quantity=9, idempotency_key="k")
    ledger_flush()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        UsageEvent.objects.update(quantity=1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        UsageEvent.objects.all().delete()
    assert UsageEvent.objects.get().quantity == 9


def test_ledger_refuses_a_negative_event_without_reason_even_from_sql(org):
    """Catches a correction slipping into the ledger without an explanation."""
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageEvent.objects.create(
            organization=org, meter=METER, quantity=-1, idempotency_key="raw", occurred_at=datetime.now(UTC)
        )


def test_events_of_an_unknown_organisation_go_to_the_dead_letter_list_not_block_the_batch(org):
    """Catches one bad event (a deleted organisation) stalling the flusher forever."""
    ghost = uuid.uuid4()
    usage_record(organization_id=org.pk, meter=METER, quantity=1, idempotency_key="good-1")
    usage_record(organization_id=ghost, meter=METER, quantity=1, idempotency_key="ghost-1")
    usage_record(organization_id=org.pk, meter=METER, quantity=1, idempotency_key="good-2")
    result = ledger_flush()
    assert (result.inserted, result.rejected) == (2, 1)
    assert ledger_backlog() == 0
    [dead] = get_redis().lrange(keys.rejected_list(), 0, -1)
    assert str(ghost) in dead and "ghost-1" in dead


def test_a_malformed_row_in_the_stream_is_set_aside_and_the_rest_of_its_batch_still_lands(org):
    """Catches a poison batch: one row PostgreSQL refuses (here from a buggy producer) must not block the others."""
    usage_record(organization_id=org.pk, meter=METER, quantity=1, idempotency_key="before")
    get_redis().xadd(
        keys.usage_stream(),
        {"rows": f"{org.pk}\t{METER}\tnot-a-number\tbroken\t0\t\\N\t\n{org.pk}\t{METER}\t4\tsame-entry\t0\t\\N\t\n"},
    )
    usage_record(organization_id=org.pk, meter=METER, quantity=2, idempotency_key="after")
    result = ledger_flush()
    assert (result.inserted, result.rejected, ledger_backlog()) == (3, 1, 0)
    assert set(UsageEvent.objects.values_list("idempotency_key", flat=True)) == {"before", "same-entry", "after"}
    [dead] = get_redis().lrange(keys.rejected_list(), 0, -1)
    assert "broken" in dead


def test_an_organisation_with_usage_cannot_be_deleted(org):
    """Catches ledger rows orphaned by deleting their organisation (the ledger has no database foreign key)."""
    usage_record(organization_id=org.pk, meter=METER, quantity=1, idempotency_key="k")
    ledger_flush()
    with pytest.raises(ProtectedError):
        org.delete()
