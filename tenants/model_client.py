"""Ask the organisation's own model something, through its gateway, with the organisation's system key.

Automation apps that write text with the tenant's model (maintenance explanations, quality 8D reports) call the
OpenAI-compatible gateway over HTTP like any client of the organisation, so the call is routed, rate-limited,
quota-checked and metered exactly like the tenant's own traffic. The key is the organisation's system key for the
caller's purpose (`tenants.system_keys`); a key the gateway refuses (401) is forgotten and replaced once. When no
model answers (no server, no capacity, the gateway down, an empty answer) `ModelUnavailable` says why, in words the
caller keeps for the tenant and retries later; no text is made up.
"""

import httpx

from .models import Organization
from .system_keys import SystemKeyUnavailable, system_key_forget, system_key_get


class ModelUnavailable(Exception):
    """No answer this time; the message says why."""


def model_ask(
    *,
    organization: Organization,
    base_url: str,
    purpose: str,
    key_name: str,
    model: str,
    messages: list[dict],
    max_tokens: int,
    temperature: float = 0.2,
    timeout: float = 60,
) -> str:
    """The text the model answered to the chat `messages`; raises ModelUnavailable."""
    url = f"{base_url.rstrip('/')}/v1/chat/completions"
    payload = {"model": model, "max_tokens": max_tokens, "temperature": temperature, "messages": messages}
    for _ in range(2):  # a second try only after replacing a key that was revoked
        try:
            key = system_key_get(organization=organization, purpose=purpose, name=key_name)
        except SystemKeyUnavailable as exc:
            raise ModelUnavailable(str(exc)) from exc
        try:
            response = httpx.post(url, json=payload, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"The gateway at {url} did not answer ({type(exc).__name__}: {exc}).") from exc
        if response.status_code == 401:
            system_key_forget(organization=organization, purpose=purpose)
            continue
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise ModelUnavailable(f"The gateway answered HTTP {response.status_code} for model {model}: {message}")
        try:
            text = response.json()["choices"][0]["message"]["content"].strip()
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ModelUnavailable("The gateway's answer had no message.") from exc
        if not text:
            raise ModelUnavailable(f"Model {model} answered with empty text.")
        return text
    raise ModelUnavailable(f"The gateway refused the organisation's {purpose} key twice.")
