"""Secrets and signatures of devices (MQTT telemetry) and integrators (webhooks); the generic part is
foundation.signing, this module keeps maintenance's namespace and prefixes.

Both secrets are derived, not stored: secret = HMAC-SHA256(SECRET_KEY, purpose + salt), so the database alone
cannot forge a device's message or a webhook. Each is shown once when created.

Device messages (MQTT): the payload is a JSON envelope
    {"key_id": "lo_ing_…", "signature": "<hex>", "data": "<the readings as a JSON string>"}
with signature = HMAC-SHA256(secret, topic + "\\n" + data). The topic is signed too, so a message signed for one
asset cannot be replayed onto another asset's (or another organisation's) topic; a replay onto its own topic
stores nothing new (readings are unique per asset, channel and timestamp).

Webhooks: header `Lightsout-Signature: t=<unix seconds>,v1=<hex>` with
v1 = HMAC-SHA256(secret, f"{t}.{raw body}"). See `webhook_signature_verify` for how a receiver checks it.
"""

import secrets

from foundation.signing import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    message_signature,
    message_signature_valid,
    new_salt,
    webhook_signature,
    webhook_signature_verify,
)
from foundation.signing import derived_secret as _derived_secret

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "message_signature",
    "message_signature_valid",
    "new_salt",
    "webhook_signature",
    "webhook_signature_verify",
]

INGESTION_KEY_PREFIX = "lo_ing_"
INGESTION_SECRET_PREFIX = "lo_ingsec_"  # noqa: S105  (a prefix, not a secret)
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105


def new_key_id() -> str:
    return INGESTION_KEY_PREFIX + secrets.token_urlsafe(12)


def derived_secret(*, purpose: str, salt: str, prefix: str) -> str:
    return _derived_secret(namespace="maintenance", purpose=purpose, salt=salt, prefix=prefix)


def ingestion_secret(*, salt: str) -> str:
    return derived_secret(purpose="ingest", salt=salt, prefix=INGESTION_SECRET_PREFIX)


def webhook_secret(*, salt: str) -> str:
    return derived_secret(purpose="webhook", salt=salt, prefix=WEBHOOK_SECRET_PREFIX)
