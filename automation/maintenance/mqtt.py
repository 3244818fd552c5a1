"""MQTT telemetry: devices publish to `<prefix>/<org_slug>/assets/<asset_code>/telemetry`, `manage.py mqtt_ingest`
subscribes to every organisation's topics and stores what it can verify.

We do not control the broker's ACLs (any client may publish to any topic, or read them), so every message proves
itself: its payload is the envelope of `signing` (an ingestion key id, the readings as a JSON string, and an
HMAC-SHA256 over the topic and those readings made with the key's secret). A message is stored only if the key
exists and is not revoked, the signature is right, the key belongs to the organisation the topic names (and,
for a key bound to one asset, to that asset), the asset exists there, and every reading passes the same checks
as the batch API; otherwise nothing of it is stored, and the rejection is logged and counted by reason (Redis
hash `maintenance:mqtt:stats`). A bearer secret never travels through the broker, so reading the topics reveals
nothing that could sign a message.

The readings are `{"readings": [{"channel", "ts", "value"}, ...]}` or items `{"ts", "values": {channel: value}}`.

Vibration captures come in signed chunks on `<prefix>/<org_slug>/assets/<asset_code>/captures` (an MQTT message
is small and a capture is not): each chunk is a message of the same envelope, its `data` the JSON
`{"capture_id", "index", "count", "sha256", "meta", "chunk"}` (`chunk`: base64 of the bytes, `sha256`: of the
whole capture, `meta`: sensor, sample_rate, shaft_rpm, format, unit, captured_at, label as the upload API takes
them), so every chunk is verified on its own. Verified chunks wait in Redis (one hash per capture, expiring
CAPTURE_TTL_S after its last chunk: an incomplete capture expires, nothing of it stored); chunks of one capture
must agree on count, checksum and meta. When the last one arrives the bytes are joined, checked against the
checksum, and handed to `vibration.capture_create` whole: stored and queued for analysis, or refused with every
reason, never half-stored. Duplicates (QoS 1 re-deliveries) are harmless. `capture_messages` is the reference
publisher.
"""

import base64
import binascii
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass

from django.utils.dateparse import parse_datetime

from foundation import mqtt as foundation_mqtt
from foundation.redis import get_redis

from . import signing
from .conf import mqtt_url, setting, topic_prefix
from .models import Asset, IngestionKey
from .telemetry import IngestResult, TelemetryRejected, readings_from_json, telemetry_ingest
from .vibration import CaptureRejected, capture_create

logger = logging.getLogger(__name__)

STATS_KEY = "maintenance:mqtt:stats"
MAX_PAYLOAD_BYTES = 4 * 2**20
CAPTURE_KEY = "maintenance:mqtt:capture:{asset}:{capture}"
CAPTURE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_CHUNKS = 4096
CHUNK_BYTES = 64 * 2**10  # what capture_messages puts in one message
META_FIELDS = ("sensor", "sample_rate", "shaft_rpm", "format", "unit", "captured_at", "label", "scale")


def capture_ttl_s() -> int:
    return int(setting("MAINTENANCE_MQTT_CAPTURE_TTL_S", 300))


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # "accepted" or why not: bad_topic, malformed, unknown_key, bad_signature, wrong_organization, ...
    detail: str = ""
    result: IngestResult | None = None
    capture_id: str = ""  # of a stored capture (the last chunk of a chunked capture)


def topic_filter(prefix: str | None = None) -> str:
    return f"{prefix or topic_prefix()}/+/assets/+/telemetry"


def capture_topic_filter(prefix: str | None = None) -> str:
    return f"{prefix or topic_prefix()}/+/assets/+/captures"


def capture_topic(*, org_slug: str, asset_code: str, prefix: str | None = None) -> str:
    return f"{prefix or topic_prefix()}/{org_slug}/assets/{asset_code}/captures"


def capture_messages(
    *, key_id: str, secret: str, topic: str, capture_id: str, content: bytes, chunk_bytes: int = CHUNK_BYTES, **meta
) -> list[bytes]:
    """A capture's signed chunks, as a device publishes them (reference implementation, and the tests')."""
    digest = hashlib.sha256(content).hexdigest()
    count = max(1, math.ceil(len(content) / chunk_bytes))
    out = []
    for index in range(count):
        data = json.dumps(
            {
                "capture_id": capture_id,
                "index": index,
                "count": count,
                "sha256": digest,
                "meta": meta,
                "chunk": base64.b64encode(content[index * chunk_bytes : (index + 1) * chunk_bytes]).decode(),
            },
            separators=(",", ":"),
        )
        out.append(foundation_mqtt.message_signed(key_id=key_id, secret=secret, topic=topic, data=data))
    return out


def asset_topic(*, org_slug: str, asset_code: str, prefix: str | None = None) -> str:
    return f"{prefix or topic_prefix()}/{org_slug}/assets/{asset_code}/telemetry"


def device_message(*, key_id: str, secret: str, topic: str, readings: list[dict]) -> bytes:
    """What a device publishes (a reference implementation for integrators, and the tests' publisher)."""
    data = json.dumps({"readings": readings}, separators=(",", ":"))
    return foundation_mqtt.message_signed(key_id=key_id, secret=secret, topic=topic, data=data)


def _rejected(reason: str, detail: str, topic: str) -> Verdict:
    logger.warning("MQTT message on %s rejected (%s): %s", topic, reason, detail)
    return Verdict(False, reason, detail)


def message_ingest(*, topic: str, payload: bytes) -> Verdict:
    """Verify one message and store its readings, all or nothing."""
    match = re.fullmatch(rf"{re.escape(topic_prefix())}/([^/]+)/assets/([^/]+)/(telemetry|captures)", topic)
    if match is None:
        return _rejected("bad_topic", "not a telemetry or captures topic", topic)
    org_slug, asset_code, kind = match.groups()
    try:
        key, asset, data = foundation_mqtt.message_open(
            topic=topic,
            payload=payload,
            max_bytes=MAX_PAYLOAD_BYTES,
            keys=IngestionKey,
            secret_for=signing.ingestion_secret,
            org_slug=org_slug,
            targets=Asset,
            code=asset_code,
        )
    except foundation_mqtt.MessageRefused as refused:
        return _rejected(refused.reason, refused.detail, topic)
    if kind == "captures":
        return _chunk_ingest(asset=asset, data=data, topic=topic)
    try:
        readings = readings_from_json(json.loads(data), asset_code=asset_code)
        result = telemetry_ingest(organization=key.organization, readings=readings)
    except ValueError:
        return _rejected("malformed", "data is not JSON", topic)
    except TelemetryRejected as rejected:
        return _rejected("invalid_readings", str(rejected), topic)
    return Verdict(True, "accepted", result=result)


def _chunk_ingest(*, asset: Asset, data: str, topic: str) -> Verdict:
    """One verified chunk of a capture: kept until the capture is complete, then the capture stored whole."""
    try:
        chunk = json.loads(data)
        capture_id, index, count = chunk["capture_id"], chunk["index"], chunk["count"]
        digest, meta = chunk["sha256"], chunk["meta"]
        part = base64.b64decode(chunk["chunk"], validate=True)
        if not (
            isinstance(capture_id, str)
            and CAPTURE_ID.fullmatch(capture_id)
            and isinstance(count, int)
            and 1 <= count <= MAX_CHUNKS
            and isinstance(index, int)
            and 0 <= index < count
            and isinstance(digest, str)
            and re.fullmatch(r"[0-9a-f]{64}", digest)
            and isinstance(meta, dict)
            and set(meta) <= set(META_FIELDS)
        ):
            raise TypeError
    except (ValueError, KeyError, TypeError, binascii.Error):
        return _rejected(
            "malformed",
            'a chunk is {"capture_id" (1-64 of A-Z a-z 0-9 _ . -), "index", "count" (1-4096), "sha256", "meta", '
            '"chunk" (base64)}',
            topic,
        )
    redis = get_redis()
    key = CAPTURE_KEY.format(asset=asset.pk, capture=capture_id)
    head = json.dumps({"count": count, "sha256": digest, "meta": meta}, sort_keys=True)
    pipe = redis.pipeline()
    pipe.hsetnx(key, "head", head)
    pipe.hset(key, str(index), base64.b64encode(part).decode())
    pipe.expire(key, capture_ttl_s())
    pipe.hget(key, "head")
    pipe.hlen(key)
    *_, stored_head, fields = pipe.execute()
    if stored_head != head:
        redis.delete(key)
        return _rejected(
            "inconsistent_chunks", f"chunks of capture {capture_id} disagree on count, sha256 or meta", topic
        )
    if fields < count + 1:
        return Verdict(True, "chunk_stored")
    if not redis.set(f"{key}:done", "1", nx=True, ex=capture_ttl_s()):
        return Verdict(True, "chunk_duplicate")  # another message completed it
    parts = redis.hgetall(key)
    redis.delete(key)
    content = b"".join(base64.b64decode(parts[str(i)]) for i in range(count))
    if hashlib.sha256(content).hexdigest() != digest:
        return _rejected("bad_checksum", f"capture {capture_id}: the joined chunks do not match its sha256", topic)
    captured_at = parse_datetime(str(meta["captured_at"])) if meta.get("captured_at") else None
    if meta.get("captured_at") and captured_at is None:
        return _rejected("invalid_capture", f"capture {capture_id}: captured_at is not an ISO 8601 time", topic)
    try:
        capture = capture_create(
            organization=asset.organization,
            asset=asset,
            sensor=str(meta.get("sensor", "")),
            content=content,
            fmt=str(meta.get("format", "float32")),
            sample_rate=float(meta["sample_rate"]) if meta.get("sample_rate") is not None else None,
            shaft_rpm=float(meta["shaft_rpm"]) if meta.get("shaft_rpm") is not None else None,
            unit=str(meta.get("unit", "g")),
            captured_at=captured_at,
            label=str(meta.get("label", "")),
            scale=float(meta["scale"]) if meta.get("scale") is not None else None,
        )
    except (CaptureRejected, ValueError, TypeError) as exc:
        detail = json.dumps(getattr(exc, "message_dict", None) or str(exc))[:1000]
        return _rejected("invalid_capture", f"capture {capture_id}: {detail}", topic)
    return Verdict(True, "capture_stored", capture_id=str(capture.pk))


def ingest_stats() -> dict[str, int]:
    return foundation_mqtt.stats(STATS_KEY)


def _handle(topic: str, payload: bytes) -> str:
    verdict = message_ingest(topic=topic, payload=payload)
    return "accepted" if verdict.accepted else verdict.reason


def TelemetrySubscriber(
    *, url: str | None = None, client_id: str | None = None, shared_group: str | None = None
) -> foundation_mqtt.Subscriber:
    """One MQTT client subscribed to every organisation's telemetry and captures topics (see foundation.mqtt)."""
    group = setting("MAINTENANCE_MQTT_SHARED_GROUP", "") if shared_group is None else shared_group
    return foundation_mqtt.Subscriber(
        url=url or mqtt_url(),
        client_id=client_id or setting("MAINTENANCE_MQTT_CLIENT_ID", "lightsout-ingest"),
        topic=[f"$share/{group}/{f}" if group else f for f in (topic_filter(), capture_topic_filter())],
        handler=_handle,
        stats_key=STATS_KEY,
    )
