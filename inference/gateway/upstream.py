"""A bare keep-alive HTTP/1.1 client for the gateway's non-streaming upstream calls: one POST, the whole answer.

aiohttp's request and response objects, connector and timeouts cost a good part of the gateway's added latency on
a fast upstream; an asyncio protocol per pooled connection with httptools' C parser (uvicorn's) does the same work
for much less. Streams keep aiohttp, which relays the body line by line.

Failures that leave no answer (refused, reset, timed out, a malformed answer) raise OSError, so the gateway tries
another server. A kept-alive connection the server closed just as it was reused is retried once on a fresh one.
"""

import asyncio
import contextlib
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import cast

import httptools

IDLE_S = 60  # a pooled connection unused this long is closed (vLLM's uvicorn closes its side after 5 s anyway)


@dataclass(frozen=True, slots=True)
class _Target:
    key: tuple[str, str, int]  # scheme, host, port
    prefix: bytes  # the URL's own path, before the request's
    host_header: bytes


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; httptools calls the on_* methods while parsing."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport  # set by connection_made, before create_connection returns the protocol
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.received = False  # any byte of the current answer
        self.framed = False  # the answer says where it ends (Content-Length or chunked), rather than at EOF
        self.keep_alive = False
        self.lost = False
        self.idle_since = 0.0
        self.pool: list[_Connection] | None = None  # the idle list it sits in, if any

    # --- asyncio.Protocol --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP connection's transport is a full Transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing asked: a server that talks out of turn is not reused
            self.transport.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed HTTP answer: {exc}"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.pool is not None:
            with contextlib.suppress(ValueError):
                self.pool.remove(self)
            self.pool = None
        if self.received and not self.framed and exc is None and self.parser.get_status_code():
            self.on_message_complete()  # an answer that ends where the connection does (HTTP/1.0 style)
        self._fail(ConnectionError(f"the upstream closed the connection ({exc or 'EOF'})"))

    # --- httptools callbacks -----------------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()  # only here: the parser forgets once feed_data returns
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.chunks)))

    # --- one exchange ------------------------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def _time_out(self) -> None:
        self._fail(TimeoutError("the upstream did not answer in time"))
        self.transport.close()

    async def exchange(self, request: bytes, timeout_s: float) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.chunks, self.received, self.framed, self.keep_alive = [], False, False, False
        self.transport.write(request)
        timer = loop.call_later(timeout_s, self._time_out)
        try:
            return await self.waiter
        finally:
            timer.cancel()
            self.waiter = None


class UpstreamPool:
    def __init__(self, *, connect_timeout_s: float, read_timeout_s: float):
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._ssl: ssl.SSLContext | None = None

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConnectionError(f"Not an http(s) URL: {url!r}")  # like a server that is down: try another
            port = parts.port or (443 if parts.scheme == "https" else 80)
            target = _Target(
                (parts.scheme, parts.hostname, port),
                parts.path.rstrip("/").encode(),
                parts.netloc.rpartition("@")[2].encode(),
            )
            self._targets[url] = target
        return target

    def _take_idle(self, target: _Target) -> _Connection | None:
        idle = self._idle.get(target.key)
        while idle:
            conn = idle.pop()  # the most recently used: the one least likely to have been closed by the server
            conn.pool = None
            if not conn.lost and not conn.transport.is_closing() and time.monotonic() - conn.idle_since < IDLE_S:
                return conn
            conn.transport.close()
        return None

    def _give_back(self, target: _Target, conn: _Connection) -> None:
        idle = self._idle.setdefault(target.key, [])
        conn.idle_since = time.monotonic()
        conn.pool = idle
        idle.append(conn)
        if idle[0].idle_since < conn.idle_since - IDLE_S:  # the oldest is never reused once load drops: close it
            idle[0].transport.close()

    async def _connect(self, target: _Target) -> _Connection:
        scheme, host, port = target.key
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or ssl.create_default_context()
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(_Connection, host, port, ssl=context), self.connect_timeout_s
        )
        return conn

    async def post(self, url: str, path: str, body: bytes, request_id: str | None = None) -> tuple[int, bytes]:
        """POST a JSON body to `url` + `path`; returns the status and the whole answer's body. `request_id` goes
        upstream as X-Request-Id (vLLM logs it and uses it as its own request id)."""
        target = self._target(url)
        extra = b"X-Request-Id: %s\r\n" % request_id.encode() if request_id else b""
        request = (
            b"POST %s%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
            % (target.prefix, path.encode(), target.host_header, extra, len(body))
        ) + body
        conn = self._take_idle(target)
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._connect(target)
            try:
                status, data = await conn.exchange(request, self.read_timeout_s)
            except ConnectionError:
                conn.transport.close()
                if reused and not conn.received:  # closed by the server while idle: not this request's failure
                    conn, reused = None, False
                    continue
                raise
            except BaseException:  # timed out or cancelled mid-answer: the connection is in an unknown state
                conn.transport.close()
                raise
            if conn.keep_alive and not conn.lost:
                self._give_back(target, conn)
            else:
                conn.transport.close()
            return status, data

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in list(idle):
                conn.transport.close()
        self._idle.clear()
