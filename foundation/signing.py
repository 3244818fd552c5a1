"""Signatures of devices (MQTT messages) and of our webhooks, shared by every app that takes signed device messages
or sends webhooks (maintenance, quality).

Secrets are derived, not stored: secret = HMAC-SHA256(SECRET_KEY, "lightsout.<namespace>.<purpose>:<salt>"), so the
database alone cannot forge a device's message or a webhook. Each app has its own namespace (a key of one app signs
nothing for another); each secret is shown once when created.

Device messages: the payload is a JSON envelope
    {"key_id": "lo_ing_…", "signature": "<hex>", "data": "<the readings as a JSON string>"}
with signature = HMAC-SHA256(secret, topic + "\\n" + data). The topic is signed too, so a message signed for one
topic cannot be replayed onto another's.

Webhooks: header `Lightsout-Signature: t=<unix seconds>,v1=<hex>` with v1 = HMAC-SHA256(secret, f"{t}.{raw body}").
See `webhook_signature_verify` for how a receiver checks it.
"""

import base64
import hashlib
import hmac
import secrets
import time

from django.conf import settings

SIGNATURE_HEADER = "Lightsout-Signature"
DEFAULT_TOLERANCE_S = 300


def new_salt() -> str:
    return secrets.token_urlsafe(24)


def derived_secret(*, namespace: str, purpose: str, salt: str, prefix: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"lightsout.{namespace}.{purpose}:{salt}".encode(), hashlib.sha256
    ).digest()
    return prefix + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def message_signature(*, secret: str, topic: str, data: str) -> str:
    return _hmac_hex(secret, topic.encode() + b"\n" + data.encode())


def message_signature_valid(*, secret: str, topic: str, data: str, signature: str) -> bool:
    return hmac.compare_digest(message_signature(secret=secret, topic=topic, data=data), signature)


def webhook_signature(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Lightsout-Signature` header value for `body`."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_hmac_hex(secret, f'{t}.'.encode() + body)}"


def webhook_signature_verify(
    *, secret: str, header: str, body: bytes, tolerance_s: int = DEFAULT_TOLERANCE_S, now: float | None = None
) -> bool:
    """What a receiver does: parse `t` and every `v1`, recompute the HMAC over `t.body` (the raw bytes as
    received), compare in constant time, and refuse timestamps older than the tolerance (replays)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        t = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = _hmac_hex(secret, f"{t}.".encode() + body)
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))
