"""The one way to record usage: `usage_record` (or `usage_record_many` for the gateway's batches).

Recording writes nothing to the database. One Lua script per chunk of events, atomically:
  1. SET NX each event's idempotency key with a short expiry, so a retry inside that window is dropped here
     already (the ledger's unique key catches anything later);
  2. XADD the accepted events as one stream entry, from which `billing.ledger.ledger_flush` moves them to
     PostgreSQL;
  3. HINCRBY, per organisation, period and meter, what was observed (`usage_observed`, for reconciliation)
     and, when the quota counter for that meter is seeded, what is used against the quota.
So the quota, the observed totals and the stream never disagree.

An entry carries its events as rows of PostgreSQL's COPY text format (tab-separated, backslash-escaped), which
the flusher streams into COPY as they are: it does no per-event work in Python. Keys and reasons are checked
here to be printable (and keys free of backslashes), so no event can break that format. The script is
given the rows as one string and finds the keys in them, so billing needs one Redis, not a Redis Cluster.
"""

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import cast
from uuid import UUID

from django.conf import settings
from redis.commands.core import Script

from foundation.redis import get_redis

from . import keys
from .meters import METERS, meter_get
from .periods import Period, period_containing

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_KEY_LENGTH = 200
MAX_REASON_LENGTH = 200
# Events per script call and stream entry: amortises the round trip and the flusher's per-entry cost, and
# keeps one script from holding Redis for long.
CHUNK = 200

# KEYS[1] the stream. ARGV: dedupe seconds, counter seconds, key prefix, the chunk's rows (each ending in a
# newline, its first four fields organisation, meter, quantity, idempotency key), and the rows' period keys
# (six characters each). One string per chunk instead of five arguments per event: encoding arguments was most
# of the client's cost.
_INGEST = """
local prefix, rows, periods = ARGV[3], ARGV[4], ARGV[5]
local kept, totals, accepted, every = {}, {}, 0, true
local first, index = 1, 0
while first <= #rows do
  local last = string.find(rows, '\\n', first, true)
  local t1 = string.find(rows, '\\t', first, true)
  local t2 = string.find(rows, '\\t', t1 + 1, true)
  local t3 = string.find(rows, '\\t', t2 + 1, true)
  local t4 = string.find(rows, '\\t', t3 + 1, true)
  local organization = string.sub(rows, first, t1 - 1)
  local seen = prefix .. ':seen:' .. organization .. ':' .. string.sub(rows, t3 + 1, t4 - 1)
  if redis.call('SET', seen, '1', 'NX', 'EX', ARGV[1]) then
    accepted = accepted + 1
    kept[accepted] = string.sub(rows, first, last)
    local period = string.sub(periods, 6 * index + 1, 6 * index + 6)
    local counters = prefix .. ':counters:' .. organization .. ':' .. period
    local meter = string.sub(rows, t1 + 1, t2 - 1)
    totals[counters] = totals[counters] or {}
    totals[counters][meter] = (totals[counters][meter] or 0) + tonumber(string.sub(rows, t2 + 1, t3 - 1))
  else
    every = false
  end
  first, index = last + 1, index + 1
end
if accepted > 0 then
  redis.call('XADD', KEYS[1], '*', 'rows', every and rows or table.concat(kept))
  for counters, meters in pairs(totals) do
    for meter, quantity in pairs(meters) do
      quantity = string.format('%d', quantity)
      redis.call('HINCRBY', counters, 'observed:' .. meter, quantity)
      if redis.call('HEXISTS', counters, 'used:' .. meter) == 1 then
        redis.call('HINCRBY', counters, 'used:' .. meter, quantity)
      end
    end
    if redis.call('TTL', counters) == -1 then redis.call('EXPIRE', counters, ARGV[2]) end
  end
end
return accepted
"""


@dataclass(frozen=True, slots=True)
class Usage:
    """One billable event. Negative quantities are corrections and need a reason."""

    organization_id: str | UUID
    meter: str
    quantity: int
    idempotency_key: str
    attributes: dict | None = None
    occurred_at: datetime | None = None
    reason: str = ""


@cache
def _ingest_script() -> Script:
    # redis-py loads the script on first use, and again after a Redis restart (NOSCRIPT).
    return get_redis().register_script(_INGEST)


def script_into(pipeline, script: Script, *, keys: list, args: list) -> None:
    """Queue `script` on a pipeline of the sync or the asyncio client. The pipeline loads its scripts before it runs
    (after a Redis restart, say); redis-py registers them itself on sync pipelines only, so this does it for both."""
    pipeline.scripts.add(script)
    script(keys=keys, args=args, client=pipeline)


def _checked(event: Usage) -> None:
    if event.meter not in METERS:
        meter_get(event.meter)  # raises, naming the known meters
    quantity = event.quantity
    if type(quantity) is not int or quantity == 0:
        raise ValueError(f"Usage quantity must be a non-zero whole number, not {quantity!r}.")
    if quantity < 0 and not event.reason:
        raise ValueError("A negative usage event is a correction and needs a reason.")
    key = event.idempotency_key
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or "\\" in key:
        raise ValueError(
            f"An idempotency key of 1 to {MAX_KEY_LENGTH} printable characters (no backslash) is required."
        )
    if event.reason and (len(event.reason) > MAX_REASON_LENGTH or not event.reason.isprintable()):
        raise ValueError(f"A reason is at most {MAX_REASON_LENGTH} printable characters.")
    if event.occurred_at is not None and event.occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware.")


def _microseconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\")


class _PeriodKeys:
    """Period keys of event timestamps; nearly every event falls in the month of the one before it."""

    def __init__(self):
        self._start = self._end = 0
        self._key = ""

    def __call__(self, micros: int) -> str:
        if not self._start <= micros < self._end:
            period = period_containing(EPOCH + timedelta(microseconds=micros))
            self._start, self._end = _microseconds(period.start), _microseconds(period.end)
            self._key = period.key
        return self._key


class _OrganizationIds(dict):
    """Canonical organisation ids (a malformed one would break a whole COPY), checked once per batch."""

    def __missing__(self, organization_id) -> str:
        canonical = self[organization_id] = str(UUID(str(organization_id)))
        return canonical


def usage_record_into(pipeline, events: Iterable[Usage]) -> None:
    """Queue the recording of `events` on a Redis pipeline; each queued script answers how many were new.

    For callers that must record usage together with something else (a quota reservation's commit). The pipeline
    may be the asyncio client's (the gateway awaits its execution).
    """
    script = _ingest_script()
    head = [settings.BILLING_USAGE_DEDUPE_SECONDS, settings.BILLING_COUNTER_TTL_SECONDS, settings.BILLING_REDIS_PREFIX]
    stream = [keys.usage_stream()]
    period_key, organization_ids = _PeriodKeys(), _OrganizationIds()
    now = time.time_ns() // 1000
    rows, periods = [], []
    for event in events:
        _checked(event)
        micros = _microseconds(event.occurred_at) if event.occurred_at is not None else now
        attributes = _copy_text(json.dumps(event.attributes)) if event.attributes else "\\N"
        rows.append(
            f"{organization_ids[event.organization_id]}\t{event.meter}\t{event.quantity}\t"
            f"{event.idempotency_key}\t{micros}\t{attributes}\t{_copy_text(event.reason)}\n"
        )
        periods.append(period_key(micros))
        if len(rows) == CHUNK:
            script_into(pipeline, script, keys=stream, args=[*head, "".join(rows), "".join(periods)])
            rows, periods = [], []
    if rows:
        script_into(pipeline, script, keys=stream, args=[*head, "".join(rows), "".join(periods)])


def usage_record_many(events: Iterable[Usage]) -> int:
    """Record a batch of events; returns how many were new (not seen within the dedupe window)."""
    pipeline = get_redis().pipeline(transaction=False)
    usage_record_into(pipeline, events)
    return sum(pipeline.execute())


def usage_record(
    *,
    organization_id: str | UUID,
    meter: str,
    quantity: int,
    idempotency_key: str,
    attributes: dict | None = None,
    occurred_at: datetime | None = None,
    reason: str = "",
) -> bool:
    """Record one billable event. Returns False if the same key was recorded moments ago (a retry)."""
    return (
        usage_record_many([Usage(organization_id, meter, quantity, idempotency_key, attributes, occurred_at, reason)])
        == 1
    )


def usage_observed(*, organization_id: str | UUID, period: Period) -> dict[str, int]:
    """What usage_record accepted for the organisation in the period, per meter."""
    # decode_responses=True: str names and values
    fields = cast(dict[str, str], get_redis().hgetall(keys.counters(str(organization_id), period.key)))
    return {
        name.removeprefix("observed:"): int(value) for name, value in fields.items() if name.startswith("observed:")
    }
