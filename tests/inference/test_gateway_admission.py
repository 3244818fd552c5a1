"""The gateway's admission (rate limit and quota in one Redis script, entitlements cached in process) and its
keep-alive upstream client, against real Redis, PostgreSQL and the real ASGI server.

No vLLM here: a small OpenAI-shaped HTTP server on loopback stands in for the upstream, so these stay fast.
"""

import asyncio
import hashlib
import http.server
import json
import threading
import time

import openai
import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.utils import timezone

from billing import keys
from billing.errors import QuotaExceeded
from billing.models import Plan
from billing.periods import period_containing
from billing.quotas import quota_reserve
from billing.services import quota_override_set, subscription_change_plan, subscription_for
from billing.usage import usage_observed
from controlplane.embedded import free_port
from foundation.redis import get_redis
from inference.gateway.admission import Admission
from inference.gateway.errors import GatewayError
from inference.gateway.upstream import UpstreamPool
from inference.selectors import gateway_key_lookup, gateway_route_resolve
from inference.services import base_model_register, server_register
from tenants.actor import Actor
from tests import builders
from tests.workers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]
SMALL_OUT = "inference.output_tokens.small"


class _Upstream(http.server.ThreadingHTTPServer):
    """Answers every POST with a small completion (or with `status`), over keep-alive HTTP/1.1; counts requests
    and connections. An idle connection is closed after `idle_s`, as uvicorn does after its keep-alive time."""

    daemon_threads = True

    def __init__(self, status: int = 200, idle_s: float = 5.0):
        self.status, self.idle_s = status, idle_s
        self.requests = self.connections = 0
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.timeout = self.server.idle_s
        self.server.connections += 1
        super().setup()

    def do_POST(self):  # http.server's naming
        self.server.requests += 1
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.status == 200 and request.get("stream"):
            self._stream(request)
            return
        if self.server.status != 200:
            body = json.dumps({"object": "error", "message": "upstream trouble", "code": self.server.status})
        else:
            body = json.dumps(
                {
                    "id": "cmpl-test",
                    "object": "chat.completion",
                    "created": 0,
                    "model": request["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "OK"},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                }
            )
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def _stream(self, request):
        """Server-sent events as vLLM sends them: content chunks, the usage chunk (asked for by the gateway), [DONE]."""
        base = {"id": "cmpl-test", "object": "chat.completion.chunk", "created": 0, "model": request["model"]}
        delta = {"index": 0, "delta": {"role": "assistant", "content": "OK"}, "logprobs": None, "finish_reason": None}
        chunks = [
            {**base, "choices": [delta]},
            {**base, "choices": [{**delta, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
        ]
        body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    servers = []

    def start(**kwargs) -> _Upstream:
        servers.append(_Upstream(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _base_model(tmp_path, name: str, weights_bytes: int = 0):
    """A registered base model; its size class follows from the (sparse) weights file's size."""
    directory = tmp_path / name
    directory.mkdir()
    (directory / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 2048})
    )
    with open(directory / "model.safetensors", "wb") as weights:
        weights.truncate(weights_bytes)
    return base_model_register(name=name, weights_path=directory, license="apache-2.0")


def _serve(base, *upstreams_or_urls) -> None:
    for target in upstreams_or_urls:
        server_register(
            url=getattr(target, "url", target), base_model=base, cluster_name="eu-test", region="eu-central"
        )


def _client(web_server, org) -> openai.OpenAI:
    _, plaintext = builders.make_key(org, scopes=["inference"])
    return openai.OpenAI(base_url=f"{web_server}/v1", api_key=plaintext, max_retries=0, timeout=30)


def _ask(client, model: str, max_tokens: int):
    return client.chat.completions.create(
        model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": "Hi"}]
    )


def _held(org) -> int:
    counters = keys.counters(str(org.pk), period_containing(timezone.now()).key)
    return int(get_redis().hget(counters, f"held:{SMALL_OUT}") or 0)


# --- through the real ASGI server ----------------------------------------------------------------------------------


def test_a_lowered_or_raised_quota_applies_at_once_despite_the_entitlement_cache(web_server, org, upstream, tmp_path):
    """Catches an in-process entitlement cache that is not dropped when an operator changes a limit."""
    _serve(_base_model(tmp_path, "tiny-small"), upstream())
    client = _client(web_server, org)
    assert _ask(client, "tiny-small", 100).model == "tiny-small"  # Starter's limit, now cached in the gateway
    actor = builders.owner_actor(org)
    quota_override_set(organization=org, meter=SMALL_OUT, hard_limit=10, reason="test", actor=actor)
    with pytest.raises(openai.RateLimitError) as refused:
        _ask(client, "tiny-small", 11)
    assert refused.value.code == "quota_exceeded" and refused.value.type == "insufficient_quota"
    assert "resets at" in refused.value.message and int(refused.value.response.headers["Retry-After"]) > 0
    quota_override_set(organization=org, meter=SMALL_OUT, hard_limit=1_000, reason="test", actor=actor)
    assert _ask(client, "tiny-small", 500).choices[0].message.content == "OK"


def test_a_plan_change_applies_at_once_despite_the_entitlement_cache(web_server, org, upstream, tmp_path):
    """Catches a cached plan that keeps refusing (or allowing) a size class after the organisation's plan changed."""
    _serve(_base_model(tmp_path, "tiny-medium", weights_bytes=3 * 10**9), upstream())  # 1.5B parameters: medium
    client = _client(web_server, org)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _ask(client, "tiny-medium", 10)
    assert refused.value.code == "plan_restriction" and "Starter" in refused.value.message
    subscription = subscription_for(organization=org)
    actor = Actor.system(organization=org)
    subscription_change_plan(subscription=subscription, plan=Plan.objects.get(code="pro"), actor=actor)
    assert _ask(client, "tiny-medium", 10).model == "tiny-medium"
    # Enterprise sets no limit: admission only counts the request.
    subscription_change_plan(subscription=subscription, plan=Plan.objects.get(code="enterprise"), actor=actor)
    assert _ask(client, "tiny-medium", 10**9).model == "tiny-medium"


def test_a_request_over_the_rate_limit_is_429_and_holds_no_quota(web_server, org, upstream, tmp_path):
    """Catches a merged script that reserves quota for a request its rate limit refuses."""
    _serve(_base_model(tmp_path, "tiny-small"), upstream())
    key, plaintext = builders.make_key(org, scopes=["inference"])
    client = openai.OpenAI(base_url=f"{web_server}/v1", api_key=plaintext, max_retries=0, timeout=30)
    assert _ask(client, "tiny-small", 50).model == "tiny-small"  # the route is cached now
    wait_until(lambda: _held(org) == 0, timeout=10, what="the first completion's hold to be settled")
    window = int(time.time() // 60)
    for w in (window, window + 1):  # both, in case the minute turns during the test; over any configured limit
        get_redis().set(f"rl:gw:{key.pk}:{w}", 10**9, ex=121)
    with pytest.raises(openai.RateLimitError) as limited:
        _ask(client, "tiny-small", 50)
    assert limited.value.code == "rate_limit_exceeded" and int(limited.value.response.headers["Retry-After"]) >= 1
    assert _held(org) == 0


def test_a_non_streaming_request_is_retried_on_another_server_before_its_first_byte(
    web_server, org, upstream, tmp_path
):
    """Catches a keep-alive client that gives up on a refused connection or a 5xx instead of trying the other
    server."""
    healthy, other_healthy, failing = upstream(), upstream(), upstream(status=500)
    _serve(_base_model(tmp_path, "tiny-refused"), f"http://127.0.0.1:{free_port()}", healthy)  # nobody listens
    _serve(_base_model(tmp_path, "tiny-failing"), failing, other_healthy)  # a server serves one base model
    client = _client(web_server, org)
    for model in ("tiny-refused", "tiny-failing"):
        assert [_ask(client, model, 5).model for _ in range(4)] == [model] * 4
    assert healthy.requests == other_healthy.requests == 4
    assert failing.requests > 0  # round robin sent some to the failing one first


def _observed(org) -> dict[str, int]:
    return usage_observed(organization_id=org.pk, period=period_containing(timezone.now()))


USED = {"inference.input_tokens.small": 5, "inference.output_tokens.small": 2}


def test_a_completions_usage_is_in_redis_when_its_answer_returns(web_server, org, upstream, tmp_path):
    """Catches usage that is only buffered in the gateway process when the client has the whole answer: a gateway
    killed then (SIGKILL, OOM) would lose it. `usage_observed` is written by the same Redis script, in the same step,
    as the ledger stream's entry, so the event is in the stream when this holds."""
    _serve(_base_model(tmp_path, "tiny-small"), upstream())
    client = _client(web_server, org)
    assert _ask(client, "tiny-small", 10).usage.completion_tokens == 2
    assert _observed(org) == USED  # no wait: durable before the answer ended
    get_redis().script_flush()  # as after a Redis restart: the gateway's pipeline must load its scripts again
    assert _ask(client, "tiny-small", 10).model == "tiny-small"
    assert _observed(org) == {meter: 2 * tokens for meter, tokens in USED.items()}
    assert _held(org) == 0  # both holds settled with their usage


def test_a_streams_usage_is_in_redis_before_its_usage_chunk_reaches_the_client(web_server, org, upstream, tmp_path):
    """Catches a stream whose usage is settled only after the last event was relayed (or not at all)."""
    _serve(_base_model(tmp_path, "tiny-small"), upstream())
    client = _client(web_server, org)
    seen_at_usage_chunk = None
    stream = client.chat.completions.create(
        model="tiny-small",
        max_tokens=10,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
        if chunk.usage is not None:
            seen_at_usage_chunk = _observed(org)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "OK"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2
    assert seen_at_usage_chunk == USED
    # A client that did not ask for the usage chunk is billed all the same, by the end of its stream.
    plain = client.chat.completions.create(
        model="tiny-small", max_tokens=10, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    assert all(chunk.usage is None for chunk in plain)
    assert _observed(org) == {meter: 2 * tokens for meter, tokens in USED.items()}


# --- the admission script and the upstream client in this process --------------------------------------------------


def _admit_concurrently(org, model: str, budgets: list[int]):
    """Admit one completion per budget at once through a fresh Admission; granted reservations, or GatewayErrors."""
    _, plaintext = builders.make_key(org, scopes=["inference"])
    info = gateway_key_lookup(key_hash=hashlib.sha256(plaintext.encode()).hexdigest())
    assert info is not None
    route = gateway_route_resolve(organization_id=info.organization_id, region=info.region, model=model)

    async def run():
        client = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        admission = Admission()
        admission.connect(client)
        try:
            return await asyncio.gather(
                *(admission.admit(info, route, budget, counted=False) for budget in budgets), return_exceptions=True
            )
        finally:
            await client.aclose()
            await sync_to_async(connections.close_all)()  # the loader's thread: no connection outlives the test

    return asyncio.run(run())


def test_concurrent_admissions_cannot_overshoot_and_share_counters_with_quota_reserve(org, tmp_path):
    """Catches a check-then-act race in the merged script, or gateway holds that billing's side does not see."""
    _serve(_base_model(tmp_path, "tiny-small"), "http://127.0.0.1:9")
    quota_override_set(organization=org, meter=SMALL_OUT, hard_limit=30, reason="test", actor=builders.owner_actor(org))
    outcomes = _admit_concurrently(org, "tiny-small", [10] * 8)
    granted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, GatewayError)]
    assert len(granted) == 3 and len(refused) == 5
    assert {(e.status, e.code, e.type) for e in refused} == {(429, "quota_exceeded", "insufficient_quota")}
    assert _held(org) == 30
    with pytest.raises(QuotaExceeded):  # the sync side sees the gateway's holds
        quota_reserve(organization=org, meter=SMALL_OUT, quantity=1)
    granted[0].commit(4)  # used 4 of its 10: 6 come back
    quota_reserve(organization=org, meter=SMALL_OUT, quantity=6)
    with pytest.raises(QuotaExceeded):
        quota_reserve(organization=org, meter=SMALL_OUT, quantity=1)


def test_the_rate_limit_refuses_in_the_same_script_before_anything_is_held(org, tmp_path, settings):
    """Catches a rate limit that no longer counts, or holds quota for the requests it refuses."""
    settings.GATEWAY_RATE_LIMIT_PER_MINUTE = 3
    _serve(_base_model(tmp_path, "tiny-small"), "http://127.0.0.1:9")
    outcomes = _admit_concurrently(org, "tiny-small", [10] * 5)
    refused = [o for o in outcomes if isinstance(o, GatewayError)]
    assert len(refused) == 2 and {e.code for e in refused} == {"rate_limit_exceeded"}
    assert all(int(e.headers["Retry-After"]) >= 1 for e in refused)
    assert _held(org) == 30  # three holds of 10, none for the refused two


def test_the_upstream_client_keeps_connections_alive_and_survives_the_server_closing_them(upstream):
    """Catches a client that opens a connection per request, or fails on one the server closed while idle."""
    server = upstream(idle_s=0.3)

    async def run():
        pool = UpstreamPool(connect_timeout_s=5, read_timeout_s=10)
        try:
            answers = [await pool.post(server.url + "/", "/v1/chat/completions", b'{"model": "m"}') for _ in range(5)]
            await asyncio.sleep(0.6)  # the server closes the idle connection
            answers.append(await pool.post(server.url, "/v1/chat/completions", b'{"model": "m"}'))
            return answers
        finally:
            pool.close()

    answers = asyncio.run(run())
    assert [status for status, _ in answers] == [200] * 6
    assert json.loads(answers[-1][1])["usage"]["completion_tokens"] == 2
    assert (server.requests, server.connections) == (6, 2)


def test_the_upstream_client_reports_a_refused_connection_as_oserror():
    """Catches failures the gateway would not recognise as 'try another server'."""

    async def run():
        pool = UpstreamPool(connect_timeout_s=5, read_timeout_s=10)
        try:
            await pool.post(f"http://127.0.0.1:{free_port()}", "/v1/completions", b"{}")
        finally:
            pool.close()

    with pytest.raises(OSError):
        asyncio.run(run())
