"""The copilot's answer as server-sent events, for the API and the portal alike."""

import json
from collections.abc import Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder


def sse_event(event: str, data) -> str:
    return f"event: {event}\ndata: {json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False)}\n\n"


def sse_stream(request, events: Iterator[tuple[str, dict]]):
    """The events as server-sent events. Under ASGI an asynchronous iterator that takes each event from the
    (synchronous, database-using) answer in Django's sync thread as it comes: given a synchronous iterator, Django
    would read it whole before sending the first byte."""
    lines = (sse_event(event, data) for event, data in events)
    if not isinstance(getattr(request, "_request", request), ASGIRequest):
        return lines
    done = object()
    step = sync_to_async(lambda: next(lines, done), thread_sensitive=True)

    async def relay():
        while (line := await step()) is not done:
            yield line

    return relay()
