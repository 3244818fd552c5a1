"""One webhook delivery attempt, the same for every app that sends webhooks (maintenance, quality).

Each event is one POST of JSON with the headers
    Lightsout-Event: <event>
    Lightsout-Delivery: <delivery id>       (the same on every retry: de-duplicate on it)
    Lightsout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the endpoint's secret>
(see foundation.signing). Any 2xx answer is success; anything else, or no answer within the timeout, is a failure the
app retries with backoff. The request goes through foundation.outbound (no private addresses unless allowed, no
redirects, the checked address is the one connected to).
"""

import json
from dataclasses import dataclass

import httpx

from .outbound import OutboundRefused, outbound_post
from .signing import SIGNATURE_HEADER, webhook_signature


@dataclass(frozen=True)
class Attempt:
    status: int | None  # the receiver's HTTP status, None when there was no answer
    error: str  # empty on success


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def webhook_post(
    *,
    url: str,
    secret: str,
    event: str,
    delivery_id: str,
    payload: dict,
    timeout: float,
    allow_private: bool,
) -> Attempt:
    """POST the signed payload once; says what the receiver answered or why it failed."""
    body = webhook_body(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Lightsout-Webhooks/1",
        "Lightsout-Event": event,
        "Lightsout-Delivery": delivery_id,
        SIGNATURE_HEADER: webhook_signature(secret=secret, body=body),
    }
    try:
        response = outbound_post(url, content=body, headers=headers, timeout=timeout, allow_private=allow_private)
    except OutboundRefused as exc:
        return Attempt(None, str(exc))
    except httpx.HTTPError as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return Attempt(response.status_code, "")
    return Attempt(response.status_code, f"The receiver answered HTTP {response.status_code}.")
