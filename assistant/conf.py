"""The assistant's settings, read once from Django settings with their defaults."""

from django.conf import settings

EMBED_JOB_KIND = "assistant.embed_document"
EMBED_TIME_LIMIT_S = 1800
EMBED_BATCH = 32


def max_upload_bytes() -> int:
    return int(getattr(settings, "ASSISTANT_MAX_UPLOAD_BYTES", 20 * 1024 * 1024))


def max_search_k() -> int:
    return int(getattr(settings, "ASSISTANT_SEARCH_MAX_K", 50))
