"""One MQTT subscriber for signed device messages (paho, QoS 1, a persistent session so messages published while
it restarts are delivered when it is back). The app gives the topic filter and a handler that verifies and stores
one message and says how it went ("accepted" or a rejection reason); counts per reason go to a Redis hash.

Maintenance's telemetry and captures (two topic filters) and quality's step records use it; `message_open` is the
verification their handlers share.
"""

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from django.db import close_old_connections, connections, models

from .redis import get_redis
from .signing import message_signature, message_signature_valid
from .webhook_models import AbstractIngestionKey, SecretFor

logger = logging.getLogger(__name__)

Handler = Callable[[str, bytes], str]  # (topic, payload) -> "accepted" or the rejection reason


def count(stats_key: str, outcome: str) -> None:
    try:
        get_redis().hincrby(stats_key, outcome, 1)
    except Exception:
        logger.exception("Counting an MQTT %s failed", outcome)


def stats(stats_key: str) -> dict[str, int]:
    raw = cast(dict[str, str], get_redis().hgetall(stats_key))  # decode_responses=True: str names and values
    return {k: int(v) for k, v in raw.items()}


def envelope_parse(payload: bytes) -> tuple[str, str, str] | None:
    """The signed envelope `{"key_id", "data", "signature"}` (all strings) of a device message; None if malformed."""
    try:
        envelope = json.loads(payload)
        key_id, data, signature = envelope["key_id"], envelope["data"], envelope["signature"]
    except (ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(v, str) for v in (key_id, data, signature)):
        return None
    return key_id, data, signature


def message_signed(*, key_id: str, secret: str, topic: str, data: str) -> bytes:
    """The envelope a device publishes, `data` signed for `topic` (the reference for integrators, and the tests')."""
    signature = message_signature(secret=secret, topic=topic, data=data)
    return json.dumps({"key_id": key_id, "data": data, "signature": signature}).encode()


class MessageRefused(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def message_open(
    *,
    topic: str,
    payload: bytes,
    max_bytes: int,
    keys: type[AbstractIngestionKey],
    secret_for: SecretFor,
    org_slug: str,
    targets: type[models.Model],
    code: str,
) -> tuple[Any, Any, str]:
    """(key, target, data) of a device message on a topic that names the organisation `org_slug` and the target
    (an asset, a machine) `code`, once verified: the key exists, is not revoked, signed the topic and data, belongs
    to that organisation (which is active) and, when bound to one target, to that one. Otherwise MessageRefused, its
    reason too_large, malformed, unknown_key, bad_signature, wrong_organization, organization_suspended,
    unknown_<target> or wrong_<target>."""
    if len(payload) > max_bytes:
        raise MessageRefused("too_large", f"{len(payload)} bytes")
    envelope = envelope_parse(payload)
    if envelope is None:
        raise MessageRefused("malformed", 'expected {"key_id", "data", "signature"} (strings)')
    key_id, data, signature = envelope
    key: Any = keys._default_manager.select_related("organization").filter(key_id=key_id).first()
    if key is None or key.revoked_at is not None:
        raise MessageRefused("unknown_key", f"no usable ingestion key {key_id[:40]!r}")
    if not message_signature_valid(secret=secret_for(salt=key.salt), topic=topic, data=data, signature=signature):
        raise MessageRefused("bad_signature", f"signature does not match key {key_id}")
    if key.organization.slug != org_slug:
        raise MessageRefused("wrong_organization", f"key {key_id} belongs to another organisation than {org_slug}")
    if not key.organization.is_active:
        raise MessageRefused("organization_suspended", org_slug)
    kind = targets._meta.model_name
    target = targets._default_manager.filter(organization=key.organization, code=code).first()
    if target is None:
        raise MessageRefused(f"unknown_{kind}", f"{org_slug} has no {kind} {code!r}")
    if getattr(key, f"{kind}_id") not in (None, target.pk):
        raise MessageRefused(f"wrong_{kind}", f"key {key_id} may publish for another {kind} only")
    return key, target, data


class Subscriber:
    def __init__(self, *, url: str, client_id: str, topic: str | Sequence[str], handler: Handler, stats_key: str):
        import paho.mqtt.client as mqtt

        self.url = urlsplit(url)
        if self.url.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError(f"MQTT_URL must be mqtt://host:port or mqtts://host:port, not {self.url.geturl()!r}")
        self.topics = [topic] if isinstance(topic, str) else list(topic)
        self.topic = ", ".join(self.topics)
        self.handler, self.stats_key = handler, stats_key
        self.subscribed = threading.Event()
        self.processed = 0
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
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
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None) -> None:
        logger.info("Subscribed to %s on %s", self.topic, self.url.netloc)
        self.subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        close_old_connections()
        try:
            outcome = self.handler(message.topic, message.payload)
        except Exception:
            logger.exception("MQTT message on %s could not be processed", message.topic)
            outcome = "error"
        self.processed += 1
        count(self.stats_key, "accepted" if outcome == "accepted" else f"rejected:{outcome}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self.subscribed.clear()
        connections.close_all()  # this thread's connections

    def _address(self) -> tuple[str, int]:
        return self.url.hostname or "127.0.0.1", self.url.port or (8883 if self.url.scheme == "mqtts" else 1883)

    def start(self, *, timeout: float = 30) -> "Subscriber":
        """Run in a background thread; returns once the subscription is confirmed."""
        self.client.connect(*self._address(), keepalive=60)
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(f"No subscription to {self.topic} on {self.url.netloc} within {timeout} s.")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def run_forever(self) -> None:
        """A management command: connect (retrying), then process messages until disconnected."""
        self.client.connect_async(*self._address(), keepalive=60)
        self.client.loop_forever(retry_first_connection=True)
