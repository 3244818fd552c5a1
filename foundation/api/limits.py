"""Request bodies are bounded everywhere: an answer of 413 in the error shape, before the body is stored.

Two limits, both settings: `MAX_REQUEST_BODY_BYTES` for ordinary bodies (JSON, forms) and `MAX_UPLOAD_BYTES` for
multipart uploads (training files, adapter archives, imports; each app then applies its own, smaller per-file limit
with a clear message). They are enforced twice over, at the two places a body can arrive:

- `BodySizeLimitMiddleware` (Django): a declared `Content-Length` over the limit is refused before anything reads
  the body, whatever server runs Django.
- `body_size_limited` (ASGI, wrapped around Django in controlplane.asgi): counts the bytes as they arrive, so a
  chunked body with no length (or a lying one) is cut off at the limit instead of being spooled to disk.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from foundation.asgi_types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body

MACHINE_PREFIXES = ("/api/", "/v1/")


def body_limit(*, content_type: str) -> int:
    if content_type.lower().startswith("multipart/"):
        return int(settings.MAX_UPLOAD_BYTES)
    return int(settings.MAX_REQUEST_BODY_BYTES)


def _message(limit: int) -> str:
    return f"The request body is larger than the accepted {limit} bytes ({limit / 2**20:.1f} MiB)."


def too_large_response(path: str, limit: int) -> HttpResponse:
    if path.startswith(MACHINE_PREFIXES):
        return JsonResponse(error_body(code="request_too_large", message=_message(limit)), status=413)
    return HttpResponse(_message(limit), status=413, content_type="text/plain; charset=utf-8")


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        limit = body_limit(content_type=request.META.get("CONTENT_TYPE", ""))
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return too_large_response(request.path, limit)
        return self.get_response(request)


def body_size_limited(app: ASGIApp) -> ASGIApp:
    """An ASGI wrapper that answers 413 once a request's body passes its limit."""

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        limit = body_limit(content_type=headers.get(b"content-type", b"").decode("latin-1"))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _send_413(scope, send, limit)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_413(scope, send, limit)

    return limited


class _TooLarge(Exception):
    pass


async def _send_413(scope: Scope, send: Send, limit: int) -> None:
    response = too_large_response(scope.get("path", ""), limit)
    headers = [(k.lower().encode(), v.encode()) for k, v in response.items()]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
