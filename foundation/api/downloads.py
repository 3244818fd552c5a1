"""Files the caller saves, for the API and the portal alike: made in memory, or sent from a file in chunks."""

import asyncio
from collections.abc import AsyncIterator
from typing import BinaryIO

from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse


def attachment(content: str | bytes, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def file_download(request: HttpRequest, handle: BinaryIO, *, filename: str, content_type: str) -> StreamingHttpResponse:
    """Under ASGI (uvicorn) an async iterator of 1 MiB reads, because Django reads a synchronous iterator whole into
    memory before sending it there; under WSGI and the test client, Django's FileResponse. Closes the handle."""
    if not isinstance(request, ASGIRequest):
        return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
    size = handle.seek(0, 2)
    handle.seek(0)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while data := await asyncio.to_thread(handle.read, 1 << 20):
                yield data
        finally:
            handle.close()

    response = StreamingHttpResponse(chunks(), content_type=content_type)
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
