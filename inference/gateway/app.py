"""The OpenAI-compatible data plane: /v1/chat/completions, /v1/completions, /v1/models.

A plain ASGI application, mounted beside Django by controlplane.asgi, because this is the hot path: it keeps API
keys, routes and entitlements in memory (see caches.py), makes one Redis round trip to admit a request (rate limit
and quota, admission.py), forwards it to a vLLM server over a pooled connection (upstream.py; aiohttp for streams),
relays the answer (server-sent events for streams) with the tenant's model name, and has the usage in Redis before
it sends the end of the answer (usage.py), so a killed process loses no usage it answered. No database write
happens per request. vLLM's own admin endpoints (adapter loading, metrics) are
not routed: only the three paths above reach an upstream.
"""

import asyncio
import functools
import hashlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings

from foundation.asgi_types import Message, Receive, Scope, Send
from foundation.client_address import client_address_asgi
from foundation.logs import REQUEST_ID_HEADER, accept_request_id, get_request_id, reset_request_id, set_request_id
from foundation.metrics import (
    GATEWAY_ADDED_LATENCY,
    GATEWAY_TOKENS,
    GATEWAY_UPSTREAM_LATENCY,
    HTTP_LATENCY,
    HTTP_REQUESTS,
)
from inference.models import VllmServer
from inference.placement import NoCapacity, server_check_health
from inference.selectors import KeyInfo, Route, gateway_key_lookup, gateway_model_list, gateway_route_resolve
from tenants.secrets import API_KEY_PREFIX

from . import errors
from .admission import Admission, rate_headers
from .caches import TtlCache, listen_for_invalidations
from .tools import tool_choice_refusal, tool_request_check
from .upstream import UpstreamPool
from .usage import UsageBatcher, touch_adapter

logger = logging.getLogger(__name__)

COMPLETION_PATHS = {"/v1/chat/completions": "messages", "/v1/completions": "prompt"}
JSON_HEADERS = [(b"content-type", b"application/json")]
UPSTREAM_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
MAX_BODY_BYTES = 4 * 1024 * 1024
REDIS_TIMEOUT_S = 3


# Awaited by the relays with (status, usage) before they send the end of an answer: the usage is settled then.
BeforeEnd = Callable[[int, dict[str, Any] | None], Awaitable[None]]


class _UpstreamLost(Exception):
    """Every target failed before answering; the route may need re-placing."""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise errors.GatewayError(413, "Request body too large.")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] = JSON_HEADERS,
    extra: dict[str, str] | None = None,
) -> None:
    # With a length the server need not frame the answer as chunked (cheaper for it and for the client).
    all_headers = [*headers, (b"content-length", b"%d" % len(body))]
    all_headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class GatewayApp:
    def __init__(self) -> None:
        # Bounded: a request can add an entry to either (a random key, a random model name).
        self.keys: TtlCache[str, KeyInfo | None] = TtlCache(ttl_s=30, max_entries=settings.GATEWAY_CACHE_MAX_ENTRIES)
        self.routes: TtlCache[tuple[str, str], Route | None] = TtlCache(
            ttl_s=30, max_entries=settings.GATEWAY_CACHE_MAX_ENTRIES
        )
        self.key_lookups = 0  # database lookups of keys, for the operator's metrics and the flood test
        self.admission = Admission()
        self.session: aiohttp.ClientSession | None = None  # streams
        self.upstream: UpstreamPool | None = None  # everything else
        self.redis: aioredis.Redis | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.usage = UsageBatcher()
        self._round_robin = itertools.count()
        self._started = asyncio.Lock()

    # --- life cycle ----------------------------------------------------------------------------------------------

    async def startup(self) -> None:
        async with self._started:
            if self.session is not None:
                return
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=settings.GATEWAY_UPSTREAM_TIMEOUT_S)
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60), timeout=timeout, auto_decompress=False
            )
            self.upstream = UpstreamPool(connect_timeout_s=5, read_timeout_s=settings.GATEWAY_UPSTREAM_TIMEOUT_S)
            # Admission's client: a Redis that is away (restarting) fails a request within seconds, as a 503.
            self.redis = aioredis.Redis.from_url(
                settings.REDIS_URL,
                decode_responses=True,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                socket_timeout=REDIS_TIMEOUT_S,
            )
            self.admission.connect(self.redis)
            self.usage.connect(self.redis)
            self._spawn(listen_for_invalidations(self._invalidate))
            self._spawn(self.usage.run())

    async def shutdown(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)  # the usage batcher flushes once more
        if self.session is not None:
            await self.session.close()
        if self.upstream is not None:
            self.upstream.close()
        if self.redis is not None:
            await self.redis.aclose()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _invalidate(self, message: dict[str, Any]) -> None:
        org, kind = message.get("organization_id"), message.get("kind")
        self.admission.entitlements.drop(None if org == "*" else (lambda key: key == org))
        if kind == "entitlement":
            return
        if kind in ("api_key", "organization") or org == "*":
            self.keys.drop()
        self.routes.drop(None if org == "*" else (lambda key: key[0] == org))

    # --- request handling ----------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.session is None:
            await self.startup()
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = accept_request_id(incoming)
        token = set_request_id(request_id)
        started, answered = time.perf_counter(), []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())],
                }
            await send(message)

        try:
            await self._dispatch(scope, receive, send_with_id)
        finally:
            status = str(answered[0]) if answered else "none"
            labels = {"route": scope["path"], "method": scope["method"], "status": status}
            HTTP_REQUESTS.labels(**labels).inc()
            HTTP_LATENCY.labels(**labels).observe(time.perf_counter() - started)
            reset_request_id(token)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            path, method = scope["path"], scope["method"]
            if path == "/v1/models":
                if method != "GET":
                    raise errors.GatewayError(405, "Use GET.")
                await self._models(scope, send)
            elif path in COMPLETION_PATHS:
                if method != "POST":
                    raise errors.GatewayError(405, "Use POST.")
                await self._completion(scope, receive, send, path)
            else:
                raise errors.GatewayError(404, f"Unknown path {path}.", code="unknown_url")
        except errors.GatewayError as exc:
            await _send(send, exc.status, exc.body(), extra=exc.headers)
        except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
            # Redis (rate limits, quotas) is away, e.g. restarting: nothing was admitted or forwarded yet (admission
            # comes first), so the client may simply retry. Never a 500, never a hang (the client's timeouts).
            logger.warning("Redis unavailable for %s: %s", scope.get("path"), exc)
            refused = errors.service_unavailable()
            await _send(send, refused.status, refused.body(), extra=refused.headers)

    async def _authenticate(self, scope: Scope) -> KeyInfo:
        secret = _bearer(scope)
        if not secret or not secret.startswith(API_KEY_PREFIX):
            raise errors.invalid_key("Missing or malformed API key: send `Authorization: Bearer lo_live_...`.")
        key_hash = hashlib.sha256(secret.encode()).hexdigest()
        if not self.keys.holds(key_hash):
            await self.admission.count_key_lookup(client_address_asgi(scope))

        async def lookup() -> KeyInfo | None:
            self.key_lookups += 1
            return await sync_to_async(gateway_key_lookup)(key_hash=key_hash)

        info = await self.keys.get(key_hash, lookup)
        if info is None:
            raise errors.invalid_key()
        if info.revoked:
            raise errors.invalid_key("This API key has been revoked.")
        if info.expires_at is not None and info.expires_at <= time.time():
            raise errors.invalid_key("This API key has expired.")
        if not info.organization_active:
            reason = f" ({info.suspended_reason})" if info.suspended_reason else ""
            raise errors.GatewayError(
                403,
                f"The organisation {info.organization_slug} is suspended{reason}.",
                type="permission_error",
                code="organization_suspended",
            )
        if "inference" not in info.scopes:
            raise errors.GatewayError(
                403, "This API key lacks the `inference` scope.", type="permission_error", code="insufficient_scope"
            )
        return info

    async def _models(self, scope: Scope, send: Send) -> None:
        info = await self._authenticate(scope)
        rows = await sync_to_async(gateway_model_list)(organization_id=info.organization_id, region=info.region)
        extra = rate_headers(await self.admission.current(info))  # listing models is not counted
        await _send(send, 200, json.dumps({"object": "list", "data": rows}).encode(), extra=extra)

    async def _route(self, info: KeyInfo, model: str, *, fresh: bool = False) -> Route:
        cache_key = (info.organization_id, model)
        if fresh:
            self.routes.drop(lambda key: key == cache_key)

        async def load() -> Route | None:
            try:
                return await sync_to_async(gateway_route_resolve)(
                    organization_id=info.organization_id, region=info.region, model=model
                )
            except NoCapacity as exc:
                raise errors.no_capacity(str(exc)) from exc

        route = await self.routes.get(cache_key, load)
        if route is None:
            raise errors.model_not_found(model)
        if not route.targets:
            raise errors.no_capacity(f"No healthy server serves {model} in region {info.region} right now.")
        return route

    async def _completion(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        started = time.perf_counter()
        info = await self._authenticate(scope)
        counted = False  # against the key's rate limit; admission counts it in the same script as the quota
        rate_count: int | None = None
        try:
            payload = _completion_payload(await _read_body(receive), path)
            model = payload["model"]
            tool_request = tool_request_check(payload) if path == "/v1/chat/completions" else None
            if tool_request is None:
                # Without tools the choice is "none" (vLLM's default too); an explicit null would have vLLM's
                # parser read a plain answer as tool calls.
                payload.pop("tool_choice", None)
            if not self.routes.holds((info.organization_id, model)):
                counted = True  # before the await: a refusal must not be counted twice below
                rate_count = await self.admission.count(info)  # a database read comes next; over its limit stops here
            route = await self._route(info, model)
            if tool_request is not None:
                refusal = tool_choice_refusal(tool_request, model=model, can_choose_tools=route.can_choose_tools)
                if refusal is not None:
                    raise refusal
            budget = _budget(payload)
        except errors.GatewayError as exc:
            if not counted:
                rate_count = await self.admission.count(info)  # refused all the same, but counted, and 429 comes first
            if rate_count is not None:
                exc.headers = {**rate_headers(rate_count), **exc.headers}
            raise
        stream = payload.get("stream") is True
        client_wants_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        if stream:
            payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        try:
            reservation, admitted_count = await self.admission.admit_counted(info, route, budget, counted=counted)
        except errors.GatewayError as exc:
            if rate_count is not None:
                exc.headers = {**rate_headers(rate_count), **exc.headers}
            raise
        extra = rate_headers(admitted_count if admitted_count is not None else rate_count or 0)
        usage_id = uuid.uuid4().hex

        async def settle(answered_by: Route, status: int, usage: dict[str, Any] | None) -> None:
            await self.usage.settle(
                info=info,
                route=answered_by,
                reservation=reservation,
                usage=usage,
                status=status,
                latency_ms=(time.perf_counter() - started) * 1000,
                request_id=usage_id,
            )

        upstream_started = time.perf_counter()
        try:
            try:
                outcome = await self._forward(route, path, payload, stream, client_wants_usage, send, extra, settle)
            except _UpstreamLost:
                # Every server we knew failed before answering: let the control plane re-place, then try once.
                await sync_to_async(_mark_targets_down)(route)
                route = await self._route(info, model, fresh=True)
                try:
                    outcome = await self._forward(route, path, payload, stream, client_wants_usage, send, extra, settle)
                except _UpstreamLost:
                    raise errors.no_capacity(f"The servers for {model} are not answering.") from None
        except errors.GatewayError as exc:
            self._spawn(asyncio.to_thread(reservation.release))
            exc.headers = {**extra, **exc.headers}
            raise
        except BaseException:
            self._spawn(asyncio.to_thread(reservation.release))
            raise
        status, usage, server_id = outcome
        finished = time.perf_counter()
        GATEWAY_UPSTREAM_LATENCY.labels(model=route.base_model).observe(finished - upstream_started)
        GATEWAY_ADDED_LATENCY.labels(model=route.base_model).observe(upstream_started - started)
        if status == 200 and usage:
            tenant = str(info.organization_id)
            GATEWAY_TOKENS.labels(tenant=tenant, kind="input").inc(int(usage.get("prompt_tokens") or 0))
            GATEWAY_TOKENS.labels(tenant=tenant, kind="output").inc(int(usage.get("completion_tokens") or 0))
        if route.adapter_id and self.redis is not None:  # set by startup(), with the session
            self._spawn(touch_adapter(redis=self.redis, route=route, server_id=server_id))

    def _ordered_targets(self, route: Route) -> tuple[tuple[int, str], ...]:
        targets = route.targets
        first = next(self._round_robin) % len(targets)
        return targets[first:] + targets[:first]

    async def _forward(
        self,
        route: Route,
        path: str,
        payload: dict[str, Any],
        stream: bool,
        client_wants_usage: bool,
        send: Send,
        extra: dict[str, str],
        settle: Callable[[Route, int, dict[str, Any] | None], Awaitable[None]],
    ) -> tuple[int, dict[str, Any] | None, int]:
        """Send to one target, and to a second if the first fails before its first byte. Returns
        (status, usage, server_id); the usage is settled before the end of the answer is sent."""
        before_end: BeforeEnd = functools.partial(settle, route)
        body = json.dumps({**payload, "model": route.upstream_model}).encode()
        if self.upstream is None or self.session is None:
            raise RuntimeError("The gateway forwards only after startup().")
        for server_id, url in self._ordered_targets(route)[:2]:
            if not stream:
                try:
                    status, raw = await self.upstream.post(url, path, body, request_id=get_request_id())
                except OSError as exc:
                    logger.warning("Upstream %s failed before answering: %s", url, exc)
                    continue
                if status >= 500:
                    logger.warning("Upstream %s answered %s; trying another", url, status)
                    continue
                return status, await _relay_json(status, raw, route, send, extra, before_end), server_id
            try:
                response = await self.session.post(
                    url + path, data=body, headers={**UPSTREAM_HEADERS, "X-Request-Id": get_request_id() or ""}
                )
            except (aiohttp.ClientError, OSError) as exc:
                logger.warning("Upstream %s failed before answering: %s", url, exc)
                continue
            if response.status >= 500:
                await response.read()
                response.release()
                logger.warning("Upstream %s answered %s; trying another", url, response.status)
                continue
            try:
                if response.status == 200:
                    usage = await self._relay_stream(response, route, client_wants_usage, send, extra, before_end)
                else:
                    raw = await response.read()
                    usage = await _relay_json(response.status, raw, route, send, extra, before_end)
            finally:
                response.release()
            return response.status, usage, server_id
        raise _UpstreamLost()

    async def _relay_stream(
        self,
        response: aiohttp.ClientResponse,
        route: Route,
        client_wants_usage: bool,
        send: Send,
        extra: dict[str, str],
        before_end: BeforeEnd,
    ) -> dict[str, Any] | None:
        """Relay the events; the usage chunk (vLLM sends it last, before `[DONE]`) is settled before anything of it
        or after it is sent. A stream that breaks off without one is settled as having used nothing."""
        headers = [*SSE_HEADERS, *((k.encode(), v.encode()) for k, v in extra.items())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        usage: dict[str, Any] | None = None
        async for line in response.content:
            if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]"):
                chunk = json.loads(line[6:])
                if chunk.get("usage") and usage is None:
                    usage = chunk["usage"]
                    await before_end(200, usage)
                    if not client_wants_usage and not chunk.get("choices"):
                        continue  # we asked for it, they did not: keep the stream as they requested it
                chunk["model"] = route.public_name
                line = b"data: " + json.dumps(chunk).encode() + b"\n"
            await send({"type": "http.response.body", "body": line, "more_body": True})
        if usage is None:
            await before_end(200, None)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return usage


def _completion_payload(body: bytes, path: str) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise errors.bad_request("The body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise errors.bad_request("The body must be a JSON object.")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise errors.bad_request("`model` is required.", param="model")
    required = COMPLETION_PATHS[path]
    if required not in payload:
        raise errors.bad_request(f"`{required}` is required.", param=required)
    return payload


def _budget(payload: dict[str, Any]) -> int:
    """The output tokens to hold against the plan's hard limit before forwarding."""
    budget = payload.get("max_completion_tokens") or payload.get("max_tokens") or settings.GATEWAY_DEFAULT_MAX_TOKENS
    if not isinstance(budget, int) or budget < 1:
        raise errors.bad_request("`max_tokens` must be a positive integer.", param="max_tokens")
    return budget


async def _relay_json(
    status: int, raw: bytes, route: Route, send: Send, extra: dict[str, str], before_end: BeforeEnd
) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        await before_end(status, None)
        await _send(send, status, raw, extra=extra)
        return None
    if status == 200 and isinstance(data, dict):
        data["model"] = route.public_name
    elif isinstance(data, dict) and "error" in data and not isinstance(data["error"], dict):
        data = errors.openai_error(str(data.get("message") or data["error"]))
    usage = data.get("usage") if isinstance(data, dict) else None
    await before_end(status, usage)
    await _send(send, status, json.dumps(data).encode(), extra=extra)
    return usage


def _mark_targets_down(route: Route) -> None:
    for server in VllmServer.objects.filter(pk__in=[server_id for server_id, _ in route.targets]):
        server_check_health(server=server)
