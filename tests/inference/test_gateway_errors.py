"""The gateway's refusals, in OpenAI's error shape, through the official SDK against the real ASGI server.

These need no vLLM: every refusal happens before a request would be forwarded.
"""

import httpx
import openai
import pytest

from inference.models import BaseModel, InferenceCluster, VllmServer
from tenants import services
from tests import builders

pytestmark = [pytest.mark.django_db(transaction=True)]


def _client(web_server, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0)


def _chat(client, model="smollm2-135m-instruct"):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4)


def test_unknown_and_revoked_keys_are_401(web_server, org):
    with pytest.raises(openai.AuthenticationError) as unknown:
        _chat(_client(web_server, "lo_live_" + "x" * 43))
    assert unknown.value.code == "invalid_api_key"
    key, plaintext = builders.make_key(org, scopes=["inference"])
    client = _client(web_server, plaintext)
    with pytest.raises(openai.NotFoundError):  # the key works; the model does not exist here
        _chat(client, model="no-such-model")
    services.api_key_revoke(api_key=key, actor=builders.owner_actor(org))
    with pytest.raises(openai.AuthenticationError, match="revoked"):  # at once, despite the gateway's key cache
        _chat(client, model="no-such-model")


def test_suspended_organisation_is_403_and_a_key_without_inference_scope_too(web_server, org):
    _, no_scope = builders.make_key(org, scopes=["org:read"])
    with pytest.raises(openai.PermissionDeniedError) as scope_error:
        _chat(_client(web_server, no_scope))
    assert scope_error.value.code == "insufficient_scope"
    _, plaintext = builders.make_key(org, scopes=["inference"])
    client = _client(web_server, plaintext)
    services.organization_suspend(organization=org, actor=builders.owner_actor(org), reason="unpaid")
    with pytest.raises(openai.PermissionDeniedError) as suspended:
        _chat(client)
    assert suspended.value.code == "organization_suspended" and "unpaid" in suspended.value.message


def test_bad_requests_are_400(web_server, org):
    _, plaintext = builders.make_key(org, scopes=["inference"])
    headers = {"Authorization": f"Bearer {plaintext}", "Content-Type": "application/json"}
    cases = [
        ("{not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"messages": []}', "`model` is required"),
        ('{"model": "smollm2-135m-instruct"}', "`messages` is required"),
    ]
    for body, fragment in cases:
        response = httpx.post(f"{web_server}/v1/chat/completions", content=body, headers=headers, timeout=60)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert fragment in error["message"] and error["type"] == "invalid_request_error"


def test_a_model_with_no_healthy_server_is_503(web_server, org):
    base = BaseModel.objects.create(
        name="tiny-test",
        weights_path="/nowhere",
        architecture="LlamaForCausalLM",
        context_length=2048,
        license="apache-2.0",
    )
    cluster = InferenceCluster.objects.create(name="eu-test", region=org.region)
    VllmServer.objects.create(cluster=cluster, base_model=base, url="http://127.0.0.1:9/", state="down")
    _, plaintext = builders.make_key(org, scopes=["inference"])
    with pytest.raises(openai.InternalServerError) as error:
        _chat(_client(web_server, plaintext), model="tiny-test")
    assert error.value.status_code == 503 and error.value.code == "no_capacity"


def test_rate_limit_is_429_with_retry_after(web_server, org):
    # The server's limit is the default 6000/min: fill this key's window directly in Redis, then ask once more.
    import time

    from foundation.redis import get_redis

    key, plaintext = builders.make_key(org, scopes=["inference"])
    window = int(time.time() // 60)
    for w in (window, window + 1):  # both, in case the minute turns during the test
        get_redis().set(f"rl:gw:{key.pk}:{w}", 10**9, ex=121)
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(_client(web_server, plaintext))
    assert int(limited.value.response.headers["Retry-After"]) >= 1


def test_vllm_admin_endpoints_are_not_reachable_through_the_gateway(web_server, org):
    _, plaintext = builders.make_key(org, scopes=["inference"])
    headers = {"Authorization": f"Bearer {plaintext}"}
    for path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/metrics", "/v1/../metrics"):
        response = httpx.post(
            f"{web_server}{path}", json={"lora_name": "x", "lora_path": "/tmp"}, headers=headers, timeout=60
        )
        assert response.status_code == 404, path
