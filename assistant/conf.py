"""The assistant's settings, read once from Django settings with their defaults."""

from django.conf import settings

EMBED_JOB_KIND = "assistant.embed_document"
EMBED_TIME_LIMIT_S = 1800
EMBED_BATCH = 32


def max_upload_bytes() -> int:
    return int(getattr(settings, "ASSISTANT_MAX_UPLOAD_BYTES", 20 * 1024 * 1024))


def max_search_k() -> int:
    return int(getattr(settings, "ASSISTANT_SEARCH_MAX_K", 50))


TOOL_CALLS_METER = "assistant.tool_calls"
SYSTEM_KEY_PURPOSE = "assistant.copilot"
SYSTEM_KEY_NAME = "copilot (system)"
PROSE_MAX_TOKENS = 160
CHOOSE_MAX_TOKENS = 120  # one tool call with its arguments


def copilot_model() -> str:
    """The model that writes the copilot's prose: the tenant's model name on the gateway."""
    return str(getattr(settings, "ASSISTANT_MODEL", "smollm2-135m-instruct"))


def gateway_base_url() -> str:
    return str(getattr(settings, "ASSISTANT_GATEWAY_BASE_URL", "") or getattr(settings, "PUBLIC_BASE_URL", "")).rstrip(
        "/"
    )


def model_timeout_s() -> float:
    return float(getattr(settings, "ASSISTANT_MODEL_TIMEOUT_S", 30))
