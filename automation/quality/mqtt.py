"""MQTT step records: a machine's controller publishes to `<prefix>/<org_slug>/quality/machines/<machine>/steps`
(prefix MAINTENANCE_MQTT_TOPIC_PREFIX, default `lightsout`: the same broker as maintenance telemetry), and
`manage.py quality_mqtt_ingest` stores what it can verify.

The broker's ACLs are not ours, so every message proves itself, as maintenance telemetry does: its payload is the
envelope of foundation.signing (`{"key_id", "data", "signature"}`, signature = HMAC-SHA256 with the ingestion key's
secret over the topic and the data). A message is stored only if the key exists and is not revoked, the signature
is right, the key belongs to the organisation the topic names (and, for a key bound to one machine, to that
machine), the machine exists there, and every step passes the batch API's checks; then its steps go in through
the same ingestion as the batch API (one transaction: all or nothing per message, SPC alarms evaluated, a re-sent
message stores nothing twice: see the step-record rule in ingest.py). Rejections are logged and counted by reason
(Redis hash `quality:mqtt:stats`).

`data` is `{"steps": [{"unit", "variable", "ts", "value"}, ...]}` (the machine is the topic's).
"""

import json
import logging
import re
import secrets
from dataclasses import dataclass

from django.conf import settings

from foundation import mqtt as foundation_mqtt
from foundation.signing import derived_secret

from .ingest import IngestRejected, IngestResult, ingest
from .models import IngestionKey, Machine

logger = logging.getLogger(__name__)

STATS_KEY = "quality:mqtt:stats"
MAX_PAYLOAD_BYTES = 4 * 2**20
MAX_STEPS_PER_MESSAGE = 100_000
KEY_PREFIX = "lo_qing_"
SECRET_PREFIX = "lo_qingsec_"  # noqa: S105  (a prefix, not a secret)


def new_key_id() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(12)


def ingestion_secret(*, salt: str) -> str:
    return derived_secret(namespace="quality", purpose="ingest", salt=salt, prefix=SECRET_PREFIX)


def topic_prefix() -> str:
    return getattr(settings, "MAINTENANCE_MQTT_TOPIC_PREFIX", "lightsout")


def topic_filter() -> str:
    return f"{topic_prefix()}/+/quality/machines/+/steps"


def machine_topic(*, org_slug: str, machine_code: str) -> str:
    return f"{topic_prefix()}/{org_slug}/quality/machines/{machine_code}/steps"


def device_message(*, key_id: str, secret: str, topic: str, steps: list[dict]) -> bytes:
    """What a controller publishes (a reference implementation for integrators, and the tests' publisher)."""
    data = json.dumps({"steps": steps}, separators=(",", ":"))
    return foundation_mqtt.message_signed(key_id=key_id, secret=secret, topic=topic, data=data)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # "accepted" or why not
    detail: str = ""
    result: IngestResult | None = None


def _rejected(reason: str, detail: str, topic: str) -> Verdict:
    logger.warning("MQTT step message on %s rejected (%s): %s", topic, reason, detail)
    return Verdict(False, reason, detail)


def message_ingest(*, topic: str, payload: bytes) -> Verdict:
    """Verify one message and store its steps, all or nothing."""
    match = re.fullmatch(rf"{re.escape(topic_prefix())}/([^/]+)/quality/machines/([^/]+)/steps", topic)
    if match is None:
        return _rejected("bad_topic", "not a quality steps topic", topic)
    org_slug, machine_code = match.groups()
    try:
        key, machine, data = foundation_mqtt.message_open(
            topic=topic,
            payload=payload,
            max_bytes=MAX_PAYLOAD_BYTES,
            keys=IngestionKey,
            secret_for=ingestion_secret,
            org_slug=org_slug,
            targets=Machine,
            code=machine_code,
        )
    except foundation_mqtt.MessageRefused as refused:
        return _rejected(refused.reason, refused.detail, topic)
    try:
        document = json.loads(data)
        steps = document["steps"]
        if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS_PER_MESSAGE:
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _rejected("malformed", f'data is not {{"steps": [...]}} with 1..{MAX_STEPS_PER_MESSAGE} steps', topic)
    rows = []
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        if not isinstance(step, dict) or set(step) - {"unit", "variable", "ts", "value"}:
            rows.append((where, {"__problem__": "expected an object with unit, variable, ts, value"}))
            continue
        fields = {k: "" if v is None else str(v) for k, v in step.items()}
        rows.append((where, {**fields, "machine": machine.code}))
    try:
        result = ingest(organization=key.organization, kind="steps", rows=rows)
    except IngestRejected as rejected:
        return _rejected("invalid_steps", str(rejected), topic)
    return Verdict(True, "accepted", result=result)


def ingest_stats() -> dict[str, int]:
    return foundation_mqtt.stats(STATS_KEY)


def subscriber(*, url: str | None = None, client_id: str | None = None) -> foundation_mqtt.Subscriber:
    group = getattr(settings, "QUALITY_MQTT_SHARED_GROUP", "")
    return foundation_mqtt.Subscriber(
        url=str(url or getattr(settings, "MQTT_URL", "mqtt://127.0.0.1:1883")),
        client_id=str(client_id or getattr(settings, "QUALITY_MQTT_CLIENT_ID", "lightsout-quality-ingest")),
        topic=f"$share/{group}/{topic_filter()}" if group else topic_filter(),
        handler=lambda topic, payload: message_ingest(topic=topic, payload=payload).reason,
        stats_key=STATS_KEY,
    )
