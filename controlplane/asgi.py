"""The ASGI entry point: the OpenAI-compatible data plane beside the Django control plane.

The three hot paths (/v1/chat/completions, /v1/completions, /v1/models) go to the lean gateway application;
everything else, /v1/files and /v1/fine_tuning included, goes to Django.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings.local")
django_application = get_asgi_application()

from controlplane.observability import init_error_reporting_and_tracing  # noqa: E402

init_error_reporting_and_tracing()

from foundation.api.limits import body_size_limited  # noqa: E402  (needs Django set up)
from inference.gateway.app import COMPLETION_PATHS, GatewayApp  # noqa: E402

# Bodies past their limit are cut off as they arrive, chunked ones too (foundation.api.limits).
limited_django_application = body_size_limited(django_application)  # type: ignore[arg-type]  # Mapping vs dict

GATEWAY_PATHS = frozenset({*COMPLETION_PATHS, "/v1/models"})
gateway = GatewayApp()


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] in GATEWAY_PATHS:
        return await gateway(scope, receive, send)
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    return await limited_django_application(scope, receive, send)


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await gateway.startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await gateway.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
