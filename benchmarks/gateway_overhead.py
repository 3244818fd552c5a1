"""Gateway overhead: our OpenAI-compatible gateway against calling the upstream directly and against LiteLLM's proxy.

One run starts, each in its own process group:

* a fast OpenAI-shaped upstream on loopback (this file, ``--serve-upstream``: a raw asyncio protocol on uvloop that
  answers ``POST /v1/chat/completions`` and ``/v1/completions`` with a fixed small completion including ``usage``,
  ``GET /health`` and ``GET /v1/models``), so that what is measured is the proxy in front of it;
* our gateway, ``uvicorn controlplane.asgi:application`` (1 worker, uvloop/httptools as uvicorn picks them, no access
  log), after preparing the product's database through the real services: migrate, an organisation and an API key
  with scope ``inference``, a base model registered from a tiny fake weights directory and a vLLM server whose url
  is the fake upstream;
* LiteLLM's proxy (``litellm --config``, 1 worker, access log off, its documented production settings) in its own
  virtualenv ``.cache/litellm-venv`` built from ``benchmarks/requirements-litellm.txt`` (exact pins, installed with
  ``--no-deps``, so none of LiteLLM's pins touch the product's environment). It is started with virtual keys (its
  PostgreSQL schema in a separate database of the same embedded PostgreSQL); when that cannot work the run says
  exactly why and falls back to the proxy authenticated by its master key.

Then it measures, with every target alternated so that noise on the shared machine hits all sides alike:

1. latency at concurrency 1: N requests to each target, interleaved request by request (direct, ours, LiteLLM in a
   rotating order), one keep-alive connection per target; added latency = target minus direct at the same
   percentile (p50, p99), plus the median of the paired per-round differences;
2. sustained throughput: for each concurrency (default 8, 32, 64) and each round, each target in turn is loaded for
   ``--seconds`` with a closed loop; the best concurrency's requests per second is the target's figure, with the
   error count (non-200 answers, socket errors, timeouts) and the proxy process's CPU time per request.

Load generator: ``wrk`` (C, epoll, one thread) for throughput when it is on the machine or can be installed with
``apt-get install wrk`` (as root; ``--no-install-wrk`` forbids that), because on 2 shared cores every microsecond
the generator burns is taken from the server it loads; a raw-protocol asyncio client on
uvloop (no HTTP library) otherwise. Latency always uses that client, because it records every request, bounds the
count exactly and interleaves targets request by request; at concurrency 1 its own cost is the same for every
target and cancels in the differences.

Run it under the embedded services (``make bench`` does; run directly, it re-executes itself under them, in
``.cache/embedded-bench-gateway``, when DATABASE_URL or REDIS_URL is unset). It exits 0 when the run completed,
also when a floor is missed (``--strict``: 1 then):

    make bench BENCH_ARGS=gateway_overhead
    .venv/bin/python -m benchmarks gateway_overhead -- --requests 3000 --seconds 10 --out gateway.json
    .venv/bin/python benchmarks/gateway_overhead.py --quick

Floors (from the issue): our p50 added latency at most 1 ms, and at least 4 times LiteLLM's sustained rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache"
WORK_DIR = CACHE_DIR / "bench-gateway"
LITELLM_VENV = CACHE_DIR / "litellm-venv"
LITELLM_REQUIREMENTS = Path(__file__).resolve().with_name("requirements-litellm.txt")
# Its own directory when it starts the embedded services itself: two runs that share one directory share one Redis,
# and the first to finish shuts it down under the other (`make bench` uses .cache/embedded-bench for all benchmarks).
EMBEDDED_DIR = ".cache/embedded-bench-gateway"

MODEL = "bench-tiny"
ORG_SLUG = "gateway-bench"
OWNER_EMAIL = "gateway-bench@example.com"
LITELLM_MASTER_KEY = "sk-bench-master-" + "0" * 16
LITELLM_DATABASE = "litellm_bench"
CHAT_PATH = "/v1/chat/completions"
REQUEST_BODY = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "Reply with OK."}], "max_tokens": 4, "temperature": 0},
    separators=(",", ":"),
).encode()
P50_FLOOR_MS = 1.0
RPS_FLOOR_RATIO = 4.0


# ====================================================================================================================
# The upstream: a fixed OpenAI-shaped answer, as cheap as Python can make it.
# ====================================================================================================================


def _upstream_answers() -> dict[tuple[bytes, bytes], tuple[int, bytes]]:
    usage = {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
    chat = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "OK"}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": usage,
    }
    text = {
        "id": "cmpl-bench",
        "object": "text_completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "text": "OK", "logprobs": None, "finish_reason": "stop"}],
        "usage": usage,
    }
    models = {
        "object": "list",
        "data": [
            {"id": MODEL, "object": "model", "created": 1_700_000_000, "owned_by": "bench", "max_model_len": 2048}
        ],
    }

    def dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    return {
        (b"POST", b"/v1/chat/completions"): (200, dumps(chat)),
        (b"POST", b"/v1/completions"): (200, dumps(text)),
        (b"GET", b"/v1/models"): (200, dumps(models)),
        (b"GET", b"/health"): (200, b""),
    }


def _upstream_response(status: int, body: bytes, close: bool) -> bytes:
    reason = {200: b"OK", 404: b"Not Found"}[status]
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
        % (status, reason, len(body), b"connection: close\r\n" if close else b"")
    ) + body


class _UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, content-length or chunked request bodies, canned answers."""

    answers: dict = {}
    not_found = _upstream_response(404, b'{"error":{"message":"not found"}}', False)

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        buffer = self.buffer + data if self.buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            body_start = end + 4
            marker = head.find(b"\r\ncontent-length:")
            if marker >= 0:
                stop = head.find(b"\r\n", marker + 17)
                total = body_start + int(head[marker + 17 : stop if stop >= 0 else len(head)])
            elif b"\r\ntransfer-encoding: chunked" in head:
                last = buffer.find(b"\r\n0\r\n\r\n", body_start - 2)
                if last < 0:
                    break
                total = last + 7
            else:
                total = body_start
            if len(buffer) < total:
                break
            line_end = head.find(b"\r\n")
            method, _, rest = buffer[: line_end if line_end >= 0 else end].partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0]
            answer = self.answers.get((method, path))
            close = b"\r\nconnection: close" in head
            if answer is None:
                self.transport.write(self.not_found)
            else:
                self.transport.write(answer[close])
            buffer = buffer[total:]
            if close:
                self.transport.close()
                break
        self.buffer = buffer


def serve_upstream(host: str, port: int) -> None:
    _UpstreamProtocol.answers = {
        key: (_upstream_response(status, body, False), _upstream_response(status, body, True))
        for key, (status, body) in _upstream_answers().items()
    }
    loop = _new_loop()
    server = loop.run_until_complete(loop.create_server(_UpstreamProtocol, host, port, backlog=4096))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()


def serve_tcp_to_unix(port: int, socket_path: str) -> None:
    """127.0.0.1:port -> a unix socket: LiteLLM's migration code ignores libpq's `?host=/socket/dir`."""

    async def pipe(reader, writer) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    loop = _new_loop()
    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", port))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


# ====================================================================================================================
# Processes: each in its own process group, all stopped on exit, Ctrl-C or error.
# ====================================================================================================================


def _die_with_parent() -> None:
    """Child side of Popen: a new session, and SIGTERM when the benchmark dies even by SIGKILL (Linux)."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.running.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen) -> None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        # Whatever the group leader left behind (node, prisma engines) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.running = [(n, p) for n, p in self.running if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.running)):
            self.stop(proc)


def _group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in a process group (children that exited are not counted)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[0] is the state: pgrp is the 5th field overall
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _http(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_ready(procs: Processes, name: str, proc: subprocess.Popen, port: int, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last, wrong_answers = "no answer yet", 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready:\n{procs.log_tail(name)}")
        try:
            ok, last = check(port)
            if ok:
                return
            wrong_answers += 1
            if wrong_answers >= 40:  # it is up and keeps answering wrongly: no point waiting for the timeout
                break
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise RuntimeError(f"{name} is not ready ({last}):\n{procs.log_tail(name)}")


def _completion_check(key: str):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

    def check(port: int) -> tuple[bool, str]:
        status, body = _http(port, "POST", CHAT_PATH, REQUEST_BODY, headers)
        return status == 200 and b'"choices"' in body, f"{status} {body[:300]!r}"

    return check


# ====================================================================================================================
# The product: database, organisation, key, model, server; then the gateway.
# ====================================================================================================================


def _product_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.local",
            "DJANGO_DEBUG": "false",  # as deployed; the hot path does not depend on it
            "GATEWAY_RATE_LIMIT_PER_MINUTE": str(10**9),  # the limiter still runs (one Redis round trip), never refuses
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def prepare_product(upstream_url: str) -> dict[str, str]:
    """Migrate, then an organisation, an `inference` key, a base model and a server, through the real services."""
    env = _product_env()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env, check=True)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DJANGO_DEBUG", "GATEWAY_RATE_LIMIT_PER_MINUTE")})
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from django.db import connections

    from inference import services as inference_services
    from inference.models import VllmServer
    from tenants import services as tenant_services
    from tenants.actor import Actor
    from tenants.models import Organization, Region, User
    from tenants.roles import Role

    owner = User.objects.filter(email=OWNER_EMAIL).first() or tenant_services.user_sign_up(
        email=OWNER_EMAIL, password=hashlib.sha256(os.urandom(16)).hexdigest()
    )
    organization = Organization.objects.filter(slug=ORG_SLUG).first() or tenant_services.organization_create(
        name="Gateway benchmark", slug=ORG_SLUG, country="DE", region=Region.EU_CENTRAL, created_by=owner
    )
    actor = Actor.for_member(organization=organization, user=owner, role=Role.OWNER)
    _, plaintext = tenant_services.api_key_create(
        organization=organization, name=f"gateway bench {time.time():.0f}", scopes=["inference"], actor=actor
    )

    weights = WORK_DIR / "weights" / MODEL
    weights.mkdir(parents=True, exist_ok=True)
    (weights / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "max_position_embeddings": 2048,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "num_hidden_layers": 2,
                "intermediate_size": 128,
                "vocab_size": 256,
                "torch_dtype": "bfloat16",
            }
        )
    )
    (weights / "model.safetensors").touch()
    base_model = inference_services.base_model_register(name=MODEL, weights_path=weights, license="apache-2.0")
    # Earlier runs registered upstreams on other ports; leave only this run's server healthy. (No service marks a
    # server down by hand: the health checker does that, and it does not run here.)
    VllmServer.objects.filter(base_model=base_model).exclude(url=upstream_url).update(
        state=VllmServer.State.DOWN, last_error="stale gateway benchmark upstream"
    )
    inference_services.server_register(
        url=upstream_url, base_model=base_model, cluster_name="gateway-bench", region=organization.region
    )
    connections.close_all()
    return {"api_key": plaintext, "organization": organization.slug, "region": organization.region}


def start_gateway(procs: Processes, api_key: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "controlplane.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = procs.start("gateway", argv, _product_env())
    _wait_ready(procs, "gateway", proc, port, _completion_check(api_key), timeout=120)
    return proc, port


# ====================================================================================================================
# LiteLLM's proxy, in its own virtualenv.
# ====================================================================================================================


def ensure_litellm_venv() -> Path:
    """Create .cache/litellm-venv from the exact pins once (and again whenever the pins change)."""
    digest = hashlib.sha256(LITELLM_REQUIREMENTS.read_bytes()).hexdigest()[:16]
    stamp = LITELLM_VENV / f".installed-{digest}"
    python = LITELLM_VENV / "bin" / "python"
    if stamp.exists() and (LITELLM_VENV / "bin" / "litellm").exists():
        return LITELLM_VENV
    print(f"Installing LiteLLM into {LITELLM_VENV.relative_to(REPO_ROOT)} (once) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "-r",
            str(LITELLM_REQUIREMENTS),
        ],
        check=True,
    )
    for old in LITELLM_VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return LITELLM_VENV


def _litellm_database(procs: Processes, database_url: str) -> str:
    """A separate database for LiteLLM in the product's PostgreSQL, and a URL for it that Prisma and LiteLLM's own
    psycopg code both understand (TCP: an embedded PostgreSQL that listens on a unix socket gets a forwarder)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (LITELLM_DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{LITELLM_DATABASE}"')
    parts = urllib.parse.urlsplit(database_url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    socket_dir = query.pop("host", None) if not parts.hostname else None
    user = urllib.parse.unquote(parts.username or "postgres")
    password = urllib.parse.unquote(parts.password or "")
    auth = urllib.parse.quote(user) + (":" + urllib.parse.quote(password) if password else "")
    if socket_dir:
        port = _free_port()
        socket_path = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}"
        forwarder = procs.start(
            "postgres-forwarder",
            [sys.executable, str(Path(__file__).resolve()), "--serve-tcp-to-unix", socket_path, "--port", str(port)],
            dict(os.environ),
        )
        _wait_ready(procs, "postgres-forwarder", forwarder, port, lambda p: (_tcp_open(p), "connect"), timeout=15)
        netloc = f"{auth}@127.0.0.1:{port}"
    else:
        netloc = f"{auth}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(("postgresql", netloc, "/" + LITELLM_DATABASE, urllib.parse.urlencode(query), ""))


def _tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


@dataclass
class LiteLLM:
    proc: subprocess.Popen
    port: int
    key: str
    mode: str  # "virtual keys" or "master key"
    virtual_keys_error: str | None = None
    setup_s: dict[str, float] = field(default_factory=dict)


def _litellm_files(upstream_port: int, with_database: bool) -> tuple[Path, Path]:
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                    "api_key": "unused",
                },
            }
        ],
        # LiteLLM's documented production settings, less the ones that need more than one machine.
        "litellm_settings": {"set_verbose": False, "json_logs": False, "request_timeout": 60},
        "general_settings": {
            "master_key": LITELLM_MASTER_KEY,
            **({"proxy_batch_write_at": 60, "database_connection_pool_limit": 10} if with_database else {}),
        },
    }
    config_path = WORK_DIR / "litellm-config.yaml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    # uvicorn skips access logging entirely when uvicorn.access is above INFO: the same as --no-access-log.
    log_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }
    log_config_path = WORK_DIR / "litellm-log-config.json"
    log_config_path.write_text(json.dumps(log_config, indent=2))
    return config_path, log_config_path


def _start_litellm_process(
    procs: Processes, venv: Path, upstream_port: int, database_url: str | None, name: str = "litellm"
):
    config_path, log_config_path = _litellm_files(upstream_port, database_url is not None)
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")
    }
    env.update(
        {
            "LITELLM_LOG": "ERROR",
            "LITELLM_MODE": "PRODUCTION",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "DISABLE_ADMIN_UI": "True",
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
        }
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    argv = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
        "--log_config",
        str(log_config_path),
    ]
    return procs.start(name, argv, env), port


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_error_lines(text: str) -> str:
    """The lines of a failure that say what went wrong, without colour codes or repeats."""
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    picked = [line for line in lines if re.search(r"error|failed|cannot|exception|ENOTFOUND", line, re.IGNORECASE)]
    return "\n".join(list(dict.fromkeys(picked))[:6]) or "\n".join(lines[-8:])


def start_litellm(procs: Processes, upstream_port: int, *, virtual_keys: bool) -> LiteLLM:
    started = time.monotonic()
    venv = ensure_litellm_venv()
    timings = {"venv_s": time.monotonic() - started}
    error = None
    if virtual_keys:
        started = time.monotonic()
        proc = None
        name = "litellm-virtual-keys"
        try:
            database_url = _litellm_database(procs, os.environ["DATABASE_URL"])
            proc, port = _start_litellm_process(procs, venv, upstream_port, database_url, name)
            _wait_ready(
                procs,
                name,
                proc,
                port,
                lambda p: (_http(p, "GET", "/health/liveliness")[0] == 200, "liveliness"),
                timeout=300,
            )
            status, body = _http(
                port,
                "POST",
                "/key/generate",
                json.dumps({"models": [MODEL], "key_alias": f"bench-{time.time():.0f}"}).encode(),
                {"Content-Type": "application/json", "Authorization": f"Bearer {LITELLM_MASTER_KEY}"},
            )
            if status != 200:
                raise RuntimeError(f"/key/generate answered {status}: {body[:500]!r}")
            key = json.loads(body)["key"]
            _wait_ready(procs, name, proc, port, _completion_check(key), timeout=60)
            timings["start_s"] = time.monotonic() - started
            return LiteLLM(proc, port, key, "virtual keys", None, timings)
        except Exception as exc:  # the fallback below says why
            error = _first_error_lines(str(exc) + "\n" + procs.log_tail(name, 200))
            timings["virtual_keys_attempt_s"] = time.monotonic() - started
            if proc is not None:
                procs.stop(proc)
            for other_name, other in list(procs.running):
                if other_name == "postgres-forwarder":
                    procs.stop(other)
            print(
                "LiteLLM with virtual keys failed, falling back to its master key:\n  " + error.replace("\n", "\n  "),
                flush=True,
            )
    started = time.monotonic()
    proc, port = _start_litellm_process(procs, venv, upstream_port, None)
    _wait_ready(procs, "litellm", proc, port, _completion_check(LITELLM_MASTER_KEY), timeout=300)
    timings["start_s"] = time.monotonic() - started
    return LiteLLM(proc, port, LITELLM_MASTER_KEY, "master key", error, timings)


# ====================================================================================================================
# Load: a raw HTTP/1.1 client on uvloop, and wrk.
# ====================================================================================================================


@dataclass
class Target:
    name: str
    port: int
    key: str
    pgid: int  # the process group whose CPU is charged to this target

    def request_bytes(self) -> bytes:
        return (
            f"POST {CHAT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {self.key}\r\nContent-Length: {len(REQUEST_BODY)}\r\n\r\n"
        ).encode() + REQUEST_BODY


class _ClientProtocol(asyncio.Protocol):
    """One keep-alive connection, one request in flight; content-length or chunked answers."""

    def __init__(self):
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))
        self.transport = None

    def data_received(self, data):
        self.buffer += data
        if self.waiter is not None:
            self._parse()

    def _parse(self) -> None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        body_start = end + 4
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            stop = head.find(b"\r\n", marker + 17)
            total = body_start + int(head[marker + 17 : stop if stop >= 0 else len(head)])
            if len(buffer) < total:
                return
            body = bytes(buffer[body_start:total])
        elif b"\r\ntransfer-encoding: chunked" in head:
            position, parts = body_start, []
            while True:
                line_end = buffer.find(b"\r\n", position)
                if line_end < 0:
                    return
                size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
                if size == 0:
                    total = line_end + 4
                    if len(buffer) < total:
                        return
                    break
                if len(buffer) < line_end + 4 + size:
                    return
                parts.append(bytes(buffer[line_end + 2 : line_end + 2 + size]))
                position = line_end + 4 + size
            body = b"".join(parts)
        else:
            total, body = body_start, b""
        status = int(head[9:12])
        del buffer[:total]
        waiter, self.waiter = self.waiter, None
        assert waiter is not None  # _parse runs only while a request waits
        waiter.set_result((status, body))

    async def request(self, data: bytes, timeout: float) -> tuple[int, bytes]:
        if self.transport is None:
            raise ConnectionError("not connected")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await asyncio.wait_for(self.waiter, timeout)


async def _connect(port: int) -> _ClientProtocol:
    _, protocol = await asyncio.get_running_loop().create_connection(_ClientProtocol, "127.0.0.1", port)
    return protocol


def _ok(status: int, body: bytes) -> bool:
    return status == 200 and b'"choices"' in body


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


async def _latency(targets: list[Target], requests: int, warmup: int, timeout: float) -> dict[str, Any]:
    conns = {t.name: await _connect(t.port) for t in targets}
    payloads = {t.name: t.request_bytes() for t in targets}
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    errors = {t.name: 0 for t in targets}
    paired: dict[str, list[float]] = {t.name: [] for t in targets[1:]}
    clock = time.perf_counter_ns

    async def one(target: Target) -> float | None:
        try:
            started = clock()
            status, body = await conns[target.name].request(payloads[target.name], timeout)
            elapsed = (clock() - started) / 1e6
        except (OSError, TimeoutError):
            with contextlib.suppress(OSError):
                conns[target.name] = await _connect(target.port)
            return None
        return elapsed if _ok(status, body) else None

    for i in range(warmup):
        for target in targets[i % len(targets) :] + targets[: i % len(targets)]:
            await one(target)
    cpu_before = {t.name: _group_cpu_seconds(t.pgid) for t in targets}
    client_cpu = time.process_time()
    gc.collect()
    gc.disable()
    try:
        for i in range(requests):
            this_round = {}
            for target in targets[i % len(targets) :] + targets[: i % len(targets)]:
                elapsed = await one(target)
                if elapsed is None:
                    errors[target.name] += 1
                else:
                    samples[target.name].append(elapsed)
                    this_round[target.name] = elapsed
            direct = this_round.get(targets[0].name)
            for target in targets[1:]:
                if direct is not None and target.name in this_round:
                    paired[target.name].append(this_round[target.name] - direct)
    finally:
        gc.enable()
    client_cpu = time.process_time() - client_cpu
    for conn in conns.values():
        if conn.transport is not None:
            conn.transport.close()

    result: dict[str, Any] = {
        "requests": requests,
        "warmup": warmup,
        "client_cpu_us_per_request": round(client_cpu / (requests * len(targets)) * 1e6, 1),
        "targets": {},
    }
    for target in targets:
        values = sorted(samples[target.name])
        cpu = _group_cpu_seconds(target.pgid) - cpu_before[target.name]
        result["targets"][target.name] = {
            "ok": len(values),
            "errors": errors[target.name],
            "p50_ms": _percentile(values, 0.50),
            "p90_ms": _percentile(values, 0.90),
            "p99_ms": _percentile(values, 0.99),
            "mean_ms": sum(values) / len(values) if values else float("nan"),
            "process_cpu_us_per_request": round(cpu / max(1, len(values)) * 1e6, 1),
        }
    direct = result["targets"][targets[0].name]
    for target in targets[1:]:
        row = result["targets"][target.name]
        row["added_p50_ms"] = row["p50_ms"] - direct["p50_ms"]
        row["added_p99_ms"] = row["p99_ms"] - direct["p99_ms"]
        differences = sorted(paired[target.name])
        row["paired_added_median_ms"] = _percentile(differences, 0.5)
    return result


async def _closed_loop(target: Target, concurrency: int, seconds: float, timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    payload = target.request_bytes()
    conns = await asyncio.gather(*(_connect(target.port) for _ in range(concurrency)), return_exceptions=True)
    counts = {"ok": 0, "errors": 0}
    started = loop.time()
    stop = started + seconds

    async def worker(conn) -> None:
        if isinstance(conn, BaseException):
            counts["errors"] += 1
            return
        while loop.time() < stop:
            try:
                status, body = await conn.request(payload, timeout)
            except (OSError, TimeoutError):
                counts["errors"] += 1
                try:
                    conn = await _connect(target.port)
                except OSError:
                    await asyncio.sleep(0.05)
                continue
            counts["ok" if _ok(status, body) else "errors"] += 1
        if conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker(conn) for conn in conns))
    elapsed = loop.time() - started
    return {"ok": counts["ok"], "errors": counts["errors"], "seconds": elapsed}


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK-RESULT {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}}\\n', summary.requests, summary.duration, e.connect, e.read,
    e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(wrk: str, target: Target, concurrency: int, seconds: float, timeout: float) -> dict[str, Any]:
    script = WORK_DIR / f"wrk-{target.name}.lua"
    script.write_text(_WRK_SCRIPT.format(body=REQUEST_BODY.decode(), key=target.key))
    argv = [
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds:g}s",
        f"--timeout={timeout:g}s",
        "-s",
        str(script),
        f"http://127.0.0.1:{target.port}{CHAT_PATH}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout + 30)
    match = re.search(r"WRK-RESULT (\{.*\})", done.stdout)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    data = json.loads(match.group(1))
    errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
    # wrk counts a non-2xx answer both as a request and as a status error.
    return {
        "ok": data["requests"] - data["status"],
        "errors": errors,
        "seconds": data["duration_us"] / 1e6,
        "wrk_p50_ms": data["p50_us"] / 1e3,
        "wrk_p99_ms": data["p99_us"] / 1e3,
    }


def find_wrk(install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    print("Installing Debian's wrk with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "install", "-y", "-qq", "wrk"],
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "wrk"],
    ):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
            if shutil.which("wrk"):
                return shutil.which("wrk")
    return shutil.which("wrk")


def _throughput(
    loop: asyncio.AbstractEventLoop,
    targets: list[Target],
    concurrencies: list[int],
    rounds: int,
    seconds: float,
    timeout: float,
    wrk: str | None,
    pause: float,
) -> dict[str, Any]:
    runs: dict[str, dict[int, list[dict]]] = {t.name: {c: [] for c in concurrencies} for t in targets}
    step = 0
    for round_number in range(rounds):
        for concurrency in concurrencies:
            order = targets[step % len(targets) :] + targets[: step % len(targets)]
            step += 1
            for target in order:
                cpu_before = _group_cpu_seconds(target.pgid)
                if wrk:
                    run = _wrk(wrk, target, concurrency, seconds, timeout)
                else:
                    run = loop.run_until_complete(_closed_loop(target, concurrency, seconds, timeout))
                run["process_cpu_s"] = _group_cpu_seconds(target.pgid) - cpu_before
                run["rps"] = run["ok"] / run["seconds"]
                runs[target.name][concurrency].append(run)
                print(
                    f"  round {round_number + 1}/{rounds} c={concurrency:<3} {target.name:<8} "
                    f"{run['rps']:8.0f} req/s  errors {run['errors']}",
                    flush=True,
                )
                time.sleep(pause)
    result: dict[str, Any] = {
        "seconds_per_run": seconds,
        "rounds": rounds,
        "concurrencies": concurrencies,
        "load_generator": "wrk" if wrk else "python",
        "targets": {},
    }
    for target in targets:
        per_concurrency = {}
        for concurrency, items in runs[target.name].items():
            ok = sum(r["ok"] for r in items)
            elapsed = sum(r["seconds"] for r in items)
            cpu = sum(r["process_cpu_s"] for r in items)
            per_concurrency[concurrency] = {
                "rps": ok / elapsed,
                "ok": ok,
                "errors": sum(r["errors"] for r in items),
                "seconds": elapsed,
                "rps_per_round": [round(r["rps"], 1) for r in items],
                "process_cpu_us_per_request": round(cpu / ok * 1e6, 1) if ok else None,
                "process_cpu_share": round(cpu / elapsed, 3),
            }
        best = max(per_concurrency, key=lambda c: per_concurrency[c]["rps"])
        result["targets"][target.name] = {
            "best_concurrency": best,
            **per_concurrency[best],
            "by_concurrency": per_concurrency,
        }
    return result


# ====================================================================================================================
# The run.
# ====================================================================================================================


def run(
    *,
    requests: int = 2000,
    warmup: int = 200,
    seconds: float = 10.0,
    rounds: int = 2,
    concurrencies: tuple[int, ...] = (8, 32, 64),
    loadgen: str = "auto",
    install_wrk: bool = True,
    litellm: bool = True,
    virtual_keys: bool = True,
    timeout: float = 30.0,
    pause: float = 1.0,
) -> dict:
    """Start everything, measure, stop everything; returns the figures (see the module docstring).

    When our gateway cannot answer a completion, the run goes on with the other targets and the result says why.
    """
    for variable in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(variable):
            raise RuntimeError(f"{variable} is unset: run under `python -m controlplane.embedded` (make bench)")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    log_dir = WORK_DIR / "logs"
    log_dir.mkdir(exist_ok=True)
    for old in log_dir.glob("*.log"):
        old.unlink()
    wrk = None
    if loadgen in ("auto", "wrk"):
        wrk = find_wrk(install_wrk)
        if loadgen == "wrk" and not wrk:
            raise RuntimeError("wrk is not installed and could not be installed")
    procs = Processes(log_dir)
    setup: dict[str, Any] = {}
    try:
        started = time.monotonic()
        upstream_port = _free_port()
        upstream = procs.start(
            "upstream",
            [sys.executable, str(Path(__file__).resolve()), "--serve-upstream", "--port", str(upstream_port)],
            {**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        _wait_ready(
            procs,
            "upstream",
            upstream,
            upstream_port,
            lambda p: (_http(p, "GET", "/health")[0] == 200, "health"),
            timeout=30,
        )
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        product = prepare_product(upstream_url)
        setup["product_s"] = round(time.monotonic() - started, 1)
        targets = [Target("direct", upstream_port, "unused", upstream.pid)]

        started = time.monotonic()
        ours_error = None
        try:
            gateway, gateway_port = start_gateway(procs, product["api_key"])
            targets.append(Target("ours", gateway_port, product["api_key"], gateway.pid))
        except RuntimeError as exc:
            ours_error = str(exc)
            print(f"OUR GATEWAY FAILED; measuring the other targets only:\n{ours_error}", flush=True)
        setup["gateway_start_s"] = round(time.monotonic() - started, 1)
        lite = None
        if litellm:
            lite = start_litellm(procs, upstream_port, virtual_keys=virtual_keys)
            setup["litellm"] = {k: round(v, 1) for k, v in lite.setup_s.items()}
            targets.append(Target("litellm", lite.port, lite.key, lite.proc.pid))
        print(
            "Ready: "
            + ", ".join(f"{t.name} :{t.port}" for t in targets)
            + (f" (LiteLLM with its {lite.mode})" if lite else ""),
            flush=True,
        )

        loop = _new_loop()
        try:
            print(f"Latency at concurrency 1: {requests} requests per target, interleaved ...", flush=True)
            latency = loop.run_until_complete(_latency(targets, requests, warmup, timeout))
            print(
                f"Throughput: {rounds} round(s) x concurrency {list(concurrencies)} x {seconds:g} s per target "
                f"({'wrk' if wrk else 'python client'}) ...",
                flush=True,
            )
            throughput = _throughput(loop, targets, list(concurrencies), rounds, seconds, timeout, wrk, pause)
        finally:
            loop.close()
        redis_alive = _redis_alive()
        if not redis_alive:
            print("REDIS WENT AWAY DURING THE RUN: our gateway's figures are not valid; rerun.", flush=True)
        result = {
            "benchmark": "gateway_overhead",
            "redis_alive_at_end": redis_alive,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {
                "cpus": os.cpu_count(),
                "load_average_at_end": os.getloadavg(),
                "python": sys.version.split()[0],
            },
            "setup": setup,
            "upstream": upstream_url,
            "ours_error": ours_error,
            "litellm": None
            if lite is None
            else {"version": _litellm_version(), "mode": lite.mode, "virtual_keys_error": lite.virtual_keys_error},
            "latency": latency,
            "throughput": throughput,
            "gateway_log": _log_summary(log_dir / "gateway.log"),
        }
        result["verdict"] = _verdict(result)
        return result
    finally:
        procs.stop_all()


def _redis_alive() -> bool:
    """Something on a shared machine may stop the embedded Redis mid-run; then our gateway answers 500s."""
    import redis

    try:
        return bool(redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5).ping())
    except (redis.RedisError, OSError):
        return False


def _log_summary(path: Path) -> dict[str, Any]:
    """How much the gateway logged, and which exceptions: a traceback per request is a cost and a bug."""
    text = path.read_text(errors="replace") if path.exists() else ""
    exceptions: dict[str, int] = {}
    for line in text.splitlines():
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b.*", line):
            exceptions[line[:200]] = exceptions.get(line[:200], 0) + 1
    return {
        "lines": len(text.splitlines()),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "exceptions": dict(sorted(exceptions.items(), key=lambda item: -item[1])[:5]),
    }


def _litellm_version() -> str | None:
    for line in LITELLM_REQUIREMENTS.read_text().splitlines():
        if line.startswith("litellm=="):
            return line.split("==", 1)[1]
    return None


def _verdict(result: dict) -> dict[str, Any]:
    latency, throughput = result["latency"]["targets"], result["throughput"]["targets"]
    if not result.get("redis_alive_at_end", True):
        return {
            "pass": False,
            "p50_ok": False,
            "reason": "Redis went away during the run: measurement invalid",
            "p50_floor_ms": P50_FLOOR_MS,
            "rps_floor_ratio": RPS_FLOOR_RATIO,
        }
    if "ours" not in latency:
        return {
            "pass": False,
            "p50_ok": False,
            "reason": "our gateway did not answer completions",
            "p50_floor_ms": P50_FLOOR_MS,
            "rps_floor_ratio": RPS_FLOOR_RATIO,
        }
    verdict: dict[str, Any] = {
        "p50_added_ms": latency["ours"]["added_p50_ms"],
        "p50_floor_ms": P50_FLOOR_MS,
        "p50_ok": latency["ours"]["added_p50_ms"] <= P50_FLOOR_MS,
    }
    if "litellm" in throughput:
        lite = throughput["litellm"]["rps"]
        ratio = throughput["ours"]["rps"] / lite if lite else float("inf")
        verdict.update({"rps_ratio": ratio, "rps_floor_ratio": RPS_FLOOR_RATIO, "rps_ok": ratio >= RPS_FLOOR_RATIO})
    verdict["pass"] = verdict["p50_ok"] and verdict.get("rps_ok", True)
    return verdict


def markdown(result: dict) -> str:
    latency, throughput = result["latency"], result["throughput"]
    lite = result.get("litellm")
    names = {
        "direct": "upstream, called directly",
        "ours": "Lightsout gateway",
        "litellm": f"LiteLLM {lite['version']} proxy ({lite['mode']})" if lite else "LiteLLM",
    }
    lines = [
        "| target | p50 ms | p99 ms | added p50 ms | added p99 ms | paired added, median ms | sustained req/s "
        "(concurrency) | errors | server CPU us/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("direct", "ours", "litellm"):
        if name == "ours" and result.get("ours_error"):
            lines.append(f"| {names[name]} | failed: {result['ours_error'].splitlines()[0][:150]} |||||||| ")
            continue
        if name not in latency["targets"]:
            continue
        row, tp = latency["targets"][name], throughput["targets"][name]

        def added(key, row=row):
            return f"{row[key]:+.3f}" if key in row else "-"

        cpu = tp["process_cpu_us_per_request"]
        lines.append(
            f"| {names[name]} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {added('added_p50_ms')} | "
            f"{added('added_p99_ms')} | {added('paired_added_median_ms')} | {tp['rps']:,.0f} "
            f"({tp['best_concurrency']}) | {row['errors'] + tp['errors']} | "
            f"{'-' if cpu is None else f'{cpu:,.0f}'} |"
        )
    verdict = result["verdict"]
    lines.append("")
    if "p50_added_ms" in verdict:
        lines.append(
            f"- p50 added latency: {verdict['p50_added_ms']:.3f} ms, floor {P50_FLOOR_MS:g} ms: "
            f"{'PASS' if verdict['p50_ok'] else 'FAIL'}"
        )
    else:
        lines.append(f"- FAIL: {verdict['reason']}")
    if "rps_ratio" in verdict:
        lines.append(
            f"- sustained rate: {verdict['rps_ratio']:.2f}x LiteLLM's, floor {RPS_FLOOR_RATIO:g}x: "
            f"{'PASS' if verdict['rps_ok'] else 'FAIL'}"
        )
    lines.append(
        f"- latency: {latency['requests']} requests per target at concurrency 1 after {latency['warmup']} "
        f"warm-up, targets interleaved request by request; throughput: {throughput['load_generator']}, "
        f"{throughput['rounds']} round(s) of {throughput['seconds_per_run']:g} s per target and concurrency "
        f"{throughput['concurrencies']}, targets alternated; server CPU: the target's processes (for the "
        f"direct row, the upstream, which also serves both proxies); {result['machine']['cpus']} CPUs, "
        f"load average at the end {', '.join(f'{x:.1f}' for x in result['machine']['load_average_at_end'])}"
    )
    if lite and lite.get("virtual_keys_error"):
        lines.append(
            "- LiteLLM virtual keys failed, so LiteLLM ran with its master key (less work per request for "
            "it): " + " / ".join(lite["virtual_keys_error"].splitlines()[:3])
        )
    log = result["gateway_log"]
    if log["tracebacks"]:
        top = next(iter(log["exceptions"]), "?")
        lines.append(f"- the gateway logged {log['tracebacks']:,} tracebacks during the run (most: {top})")
    return "\n".join(lines)


def _under_embedded(argv: list[str]) -> int:
    """Re-run this benchmark under the embedded PostgreSQL and Redis (what `make bench` does)."""
    command = [
        sys.executable,
        "-m",
        "controlplane.embedded",
        "--dir",
        EMBEDDED_DIR,
        sys.executable,
        str(Path(__file__).resolve()),
        *argv,
    ]
    return subprocess.run(command, cwd=REPO_ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="latency: requests per target (concurrency 1)")
    parser.add_argument("--warmup", type=int, default=200, help="latency: warm-up requests per target")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput: seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="throughput: rounds over every target and concurrency")
    parser.add_argument("--concurrency", default="8,32,64", help="throughput: comma-separated concurrencies")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="throughput load generator (auto: wrk when present or installable)",
    )
    parser.add_argument("--no-install-wrk", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--no-litellm", action="store_true", help="measure direct and ours only")
    parser.add_argument("--no-virtual-keys", action="store_true", help="LiteLLM with its master key, no database")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (300 requests, 3 s runs, 1 round)")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a floor is missed")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-tcp-to-unix", metavar="SOCKET", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        serve_upstream("127.0.0.1", args.port)
        return 0
    if args.serve_tcp_to_unix:
        serve_tcp_to_unix(args.port, args.serve_tcp_to_unix)
        return 0
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        return _under_embedded(argv)
    if args.quick:
        args.requests, args.warmup, args.seconds, args.rounds = 300, 50, 3.0, 1

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    try:
        result = run(
            requests=args.requests,
            warmup=args.warmup,
            seconds=args.seconds,
            rounds=args.rounds,
            concurrencies=tuple(int(c) for c in args.concurrency.split(",")),
            loadgen=args.loadgen,
            install_wrk=not args.no_install_wrk,
            litellm=not args.no_litellm,
            virtual_keys=not args.no_virtual_keys,
        )
    except KeyboardInterrupt:
        print("Interrupted; every process this benchmark started is stopped.", file=sys.stderr)
        return 130
    report = markdown(result)
    print("\n" + report)
    if args.out:
        args.out.write_text(json.dumps({**result, "markdown": report}, indent=2, default=str) + "\n")
        print(f"\nWrote {args.out}")
    return 1 if args.strict and not result["verdict"]["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
