"""Moving usage from the Redis stream into the ledger table, in batches, losing nothing and counting nothing twice.

Each flusher is a consumer of one consumer group. A batch is read (XREADGROUP), copied into a staging table
(COPY) and inserted with `ON CONFLICT (organization_id, idempotency_key) DO NOTHING`; only after the commit are
its entries acknowledged and deleted. So:
- a flusher killed before its commit leaves the batch pending in the group; another flusher re-claims it once
  it has been idle for BILLING_FLUSH_CLAIM_IDLE_SECONDS (XAUTOCLAIM) and inserts it;
- a flusher killed between commit and acknowledgement leaves a batch that is re-claimed and inserted again,
  and the unique key turns every row of it away;
- events of an organisation that does not exist, or that cannot be parsed, go to a dead-letter list for
  operators instead of blocking every batch behind them.
Call it outside a transaction: acknowledging must follow the commit.
"""

import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from redis.exceptions import ResponseError

from foundation.redis import get_redis

from . import keys

logger = logging.getLogger(__name__)

GROUP = "ledger"

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS billing_ledger_stage (
    organization_id uuid, meter text, quantity bigint, idempotency_key text, occurred_us bigint,
    attributes jsonb, reason text
)
"""
_INSERT = """
INSERT INTO billing_usageevent
    (organization_id, meter, quantity, idempotency_key, occurred_at, attributes, reason, recorded_at)
SELECT s.organization_id, s.meter, s.quantity, s.idempotency_key,
       timestamptz 'epoch' + s.occurred_us * interval '1 microsecond', coalesce(s.attributes, '{}'), s.reason, now()
FROM billing_ledger_stage s
WHERE EXISTS (SELECT 1 FROM tenants_organization o WHERE o.id = s.organization_id)
ON CONFLICT (organization_id, idempotency_key) DO NOTHING
"""
_UNKNOWN_ORGANIZATIONS = """
SELECT s.organization_id, s.idempotency_key FROM billing_ledger_stage s
WHERE NOT EXISTS (SELECT 1 FROM tenants_organization o WHERE o.id = s.organization_id)
"""


@dataclass
class FlushResult:
    """Events read, inserted, turned away as duplicates, set aside; stream entries re-claimed; batches."""

    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reclaimed_entries: int = 0
    batches: int = 0


def _ensure_group(redis, stream: str) -> None:
    try:
        redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _copy_into_stage(cursor, rows: Iterable[str]) -> tuple[int, list[str]]:
    """Insert rows (COPY text lines) through the staging table; returns the count inserted and the rows whose
    organisation does not exist."""
    cursor.execute(_STAGE)
    cursor.execute("TRUNCATE billing_ledger_stage")
    with cursor.copy(
        "COPY billing_ledger_stage (organization_id, meter, quantity, idempotency_key, occurred_us, "
        "attributes, reason) FROM STDIN"
    ) as copy:
        for chunk in rows:
            copy.write(chunk)
    cursor.execute(_INSERT)
    inserted = cursor.rowcount
    cursor.execute(_UNKNOWN_ORGANIZATIONS)
    return inserted, [f"unknown organisation {org} (key {key})" for org, key in cursor.fetchall()]


def _insert(payloads: list[str]) -> tuple[int, list[str]]:
    """One transaction for the whole batch. If PostgreSQL refuses the data (a row written by a buggy or older
    producer), insert row by row instead, and set aside the rows it refuses rather than retrying them forever."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            return _copy_into_stage(cursor, payloads)
    except (DataError, IntegrityError, psycopg.DataError):
        logger.exception("A usage batch was refused as a whole; inserting it row by row")
    inserted, rejected = 0, []
    with transaction.atomic(), connection.cursor() as cursor:
        for row in (line + "\n" for payload in payloads for line in payload.splitlines()):
            try:
                with transaction.atomic():
                    added, unknown = _copy_into_stage(cursor, [row])
            except (DataError, IntegrityError, psycopg.DataError) as exc:
                rejected.append(f"unreadable row {row!r}: {exc}")
            else:
                inserted += added
                rejected += unknown
    return inserted, rejected


def _write(redis, stream: str, entries, result: FlushResult) -> None:
    # An entry deleted from the stream while pending has no fields: nothing to insert, only to acknowledge.
    payloads = [fields["rows"] for _, fields in entries if fields]
    inserted, rejected = _insert(payloads) if payloads else (0, [])
    events = sum(payload.count("\n") for payload in payloads)
    ids = [entry_id for entry_id, _ in entries]
    pipe = redis.pipeline(transaction=True)
    if rejected:
        pipe.rpush(keys.rejected_list(), *rejected)
    pipe.xack(stream, GROUP, *ids)
    pipe.xdel(stream, *ids)
    pipe.execute()
    for why in rejected:
        logger.warning("Usage event rejected from the ledger: %s", why)
    result.read += events
    result.inserted += inserted
    result.rejected += len(rejected)
    result.duplicates += events - inserted - len(rejected)
    result.batches += 1


def ledger_flush(*, max_seconds: float = 10.0, batch_size: int | None = None) -> FlushResult:
    """Flush the usage stream into the ledger until it is empty or `max_seconds` have passed."""
    redis = get_redis()
    stream = keys.usage_stream()
    batch_size = batch_size or settings.BILLING_FLUSH_BATCH_SIZE
    consumer = f"{socket.gethostname()}:{os.getpid()}"
    claim_idle_ms = settings.BILLING_FLUSH_CLAIM_IDLE_SECONDS * 1000
    _ensure_group(redis, stream)
    result = FlushResult()
    deadline = time.monotonic() + max_seconds
    # Order: this consumer's own unacknowledged entries (a commit that failed earlier in this process), then
    # entries of consumers that went silent, then new entries.
    claim_from: str | None
    own_pending, claim_from = True, "0-0"
    while time.monotonic() < deadline:
        if own_pending:
            # RESP2 (the default protocol): [[stream, entries]], where the stubs also allow RESP3's dict
            reply = cast(list[Any], redis.xreadgroup(GROUP, consumer, {stream: "0"}, count=batch_size))
            entries = reply[0][1] if reply else []
            own_pending = bool(entries)
        elif claim_from is not None:
            claimed = redis.xautoclaim(stream, GROUP, consumer, claim_idle_ms, start_id=claim_from, count=batch_size)
            claim_from = None if claimed[0] == "0-0" else claimed[0]
            entries = claimed[1]
            result.reclaimed_entries += len(entries)
        else:
            reply = cast(list[Any], redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=batch_size))  # as above
            entries = reply[0][1] if reply else []
            if not entries:
                break
        if entries:
            _write(redis, stream, entries, result)
    return result


def ledger_backlog() -> int:
    """Stream entries (batches of events) recorded and not yet in the ledger; acknowledged ones are deleted."""
    return get_redis().xlen(keys.usage_stream())
