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
"""

import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from django.db import close_old_connections, connections

from foundation.redis import get_redis

from . import signing
from .conf import mqtt_url, setting, topic_prefix
from .models import Asset, IngestionKey
from .telemetry import IngestResult, TelemetryRejected, readings_from_json, telemetry_ingest

logger = logging.getLogger(__name__)

STATS_KEY = "maintenance:mqtt:stats"
MAX_PAYLOAD_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # "accepted" or why not: bad_topic, malformed, unknown_key, bad_signature, wrong_organization, ...
    detail: str = ""
    result: IngestResult | None = None


def topic_filter(prefix: str | None = None) -> str:
    return f"{prefix or topic_prefix()}/+/assets/+/telemetry"


def asset_topic(*, org_slug: str, asset_code: str, prefix: str | None = None) -> str:
    return f"{prefix or topic_prefix()}/{org_slug}/assets/{asset_code}/telemetry"


def device_message(*, key_id: str, secret: str, topic: str, readings: list[dict]) -> bytes:
    """What a device publishes (a reference implementation for integrators, and the tests' publisher)."""
    data = json.dumps({"readings": readings}, separators=(",", ":"))
    return json.dumps(
        {"key_id": key_id, "data": data, "signature": signing.message_signature(secret=secret, topic=topic, data=data)}
    ).encode()


def _rejected(reason: str, detail: str, topic: str) -> Verdict:
    logger.warning("MQTT message on %s rejected (%s): %s", topic, reason, detail)
    return Verdict(False, reason, detail)


def message_ingest(*, topic: str, payload: bytes) -> Verdict:
    """Verify one message and store its readings, all or nothing."""
    match = re.fullmatch(rf"{re.escape(topic_prefix())}/([^/]+)/assets/([^/]+)/telemetry", topic)
    if match is None:
        return _rejected("bad_topic", "not a telemetry topic", topic)
    org_slug, asset_code = match.groups()
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _rejected("too_large", f"{len(payload)} bytes", topic)
    try:
        envelope = json.loads(payload)
        key_id, data, signature = envelope["key_id"], envelope["data"], envelope["signature"]
        if not all(isinstance(v, str) for v in (key_id, data, signature)):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _rejected("malformed", 'expected {"key_id", "data", "signature"} (strings)', topic)
    key = IngestionKey.objects.select_related("organization").filter(key_id=key_id).first()
    if key is None or key.revoked_at is not None:
        return _rejected("unknown_key", f"no usable ingestion key {key_id[:40]!r}", topic)
    if not signing.message_signature_valid(
        secret=signing.ingestion_secret(salt=key.salt), topic=topic, data=data, signature=signature
    ):
        return _rejected("bad_signature", f"signature does not match key {key_id}", topic)
    if key.organization.slug != org_slug:
        return _rejected("wrong_organization", f"key {key_id} belongs to another organisation than {org_slug}", topic)
    if not key.organization.is_active:
        return _rejected("organization_suspended", org_slug, topic)
    asset = Asset.objects.filter(organization=key.organization, code=asset_code).first()
    if asset is None:
        return _rejected("unknown_asset", f"{org_slug} has no asset {asset_code!r}", topic)
    if key.asset_id is not None and key.asset_id != asset.pk:
        return _rejected("wrong_asset", f"key {key_id} may publish for another asset only", topic)
    try:
        readings = readings_from_json(json.loads(data), asset_code=asset_code)
        result = telemetry_ingest(organization=key.organization, readings=readings)
    except ValueError:
        return _rejected("malformed", "data is not JSON", topic)
    except TelemetryRejected as rejected:
        return _rejected("invalid_readings", str(rejected), topic)
    return Verdict(True, "accepted", result=result)


def _count(reason: str) -> None:
    try:
        get_redis().hincrby(STATS_KEY, reason, 1)
    except Exception:
        logger.exception("Counting an MQTT %s failed", reason)


def ingest_stats() -> dict[str, int]:
    stats = cast(dict[str, str], get_redis().hgetall(STATS_KEY))  # decode_responses=True: str names and values
    return {k: int(v) for k, v in stats.items()}


class TelemetrySubscriber:
    """One MQTT client subscribed to every organisation's telemetry topics, QoS 1, a persistent session (messages
    published while it restarts are delivered when it is back)."""

    def __init__(self, *, url: str | None = None, client_id: str | None = None, shared_group: str | None = None):
        import paho.mqtt.client as mqtt

        self.url = urlsplit(url or mqtt_url())
        if self.url.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError(f"MQTT_URL must be mqtt://host:port or mqtts://host:port, not {self.url.geturl()!r}")
        group = setting("MAINTENANCE_MQTT_SHARED_GROUP", "") if shared_group is None else shared_group
        self.topic = f"$share/{group}/{topic_filter()}" if group else topic_filter()
        self.subscribed = threading.Event()
        self.processed = 0
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or setting("MAINTENANCE_MQTT_CLIENT_ID", "lightsout-ingest"),
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if self.url.username:
            self.client.username_pw_set(self.url.username, self.url.password)
        if self.url.scheme == "mqtts":
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            logger.error("MQTT connection refused: %s", reason_code)
            return
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None) -> None:
        logger.info("Subscribed to %s on %s", self.topic, self.url.netloc)
        self.subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        close_old_connections()
        try:
            verdict = message_ingest(topic=message.topic, payload=message.payload)
        except Exception:
            logger.exception("MQTT message on %s could not be processed", message.topic)
            verdict = Verdict(False, "error")
        self.processed += 1
        _count("accepted" if verdict.accepted else f"rejected:{verdict.reason}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self.subscribed.clear()
        connections.close_all()  # this thread's connections

    def _connect(self) -> None:
        port = self.url.port or (8883 if self.url.scheme == "mqtts" else 1883)
        self.client.connect(self.url.hostname or "127.0.0.1", port, keepalive=60)

    def start(self, *, timeout: float = 30) -> "TelemetrySubscriber":
        """Run in a background thread; returns once the subscription is confirmed."""
        self._connect()
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(f"No subscription to {self.topic} on {self.url.netloc} within {timeout} s.")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def run_forever(self) -> None:
        """The management command: connect (retrying), then process messages until disconnected."""
        self.client.connect_async(
            self.url.hostname or "127.0.0.1",
            self.url.port or (8883 if self.url.scheme == "mqtts" else 1883),
            keepalive=60,
        )
        self.client.loop_forever(retry_first_connection=True)
