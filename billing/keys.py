"""Names of billing's Redis keys, all under one prefix (BILLING_REDIS_PREFIX) so a benchmark can use its own.

Per organisation and period one hash, `counters`, holds three fields per meter:
  observed:<meter>  every event usage_record accepted (what the gateway saw; reconciliation compares it)
  used:<meter>      usage counted against the quota; present only once seeded from the ledger
  held:<meter>      quantity reserved by quota_reserve and not yet committed or released
Scripts touch keys of several organisations in one call, and the ingest script builds `seen` and `counters`
names itself (billing.usage), so billing needs one Redis, not a Redis Cluster.
"""

from django.conf import settings


def _prefix() -> str:
    return settings.BILLING_REDIS_PREFIX


def usage_stream() -> str:
    return f"{_prefix()}:usage"


def rejected_list() -> str:
    return f"{_prefix()}:usage:rejected"


def seen(organization_id: str, idempotency_key: str) -> str:
    """The dedupe marker of one event (the ingest script spells it the same way)."""
    return f"{_prefix()}:seen:{organization_id}:{idempotency_key}"


def counters(organization_id: str, period_key: str) -> str:
    return f"{_prefix()}:counters:{organization_id}:{period_key}"


def counters_pattern(period_key: str) -> str:
    return f"{_prefix()}:counters:*:{period_key}"


def organization_of_counters(key: str) -> str:
    return key.rsplit(":", 2)[-2]


def holds(organization_id: str, period_key: str) -> str:
    return f"{_prefix()}:holds:{organization_id}:{period_key}"


def hold_expiries(organization_id: str, period_key: str) -> str:
    return f"{_prefix()}:holdexp:{organization_id}:{period_key}"


def entitlement(organization_id: str) -> str:
    return f"{_prefix()}:entitlement:{organization_id}"
