"""The inference plane end to end: real vLLM CPU server, real placement, real gateway, the official SDK."""

import time

import openai
import pytest

from billing.periods import period_containing
from billing.usage import usage_observed
from inference.engine.vllm_server import VllmAdminClient, VllmServer
from inference.models import AdapterVersion, Placement
from inference.placement import placement_ensure, server_check_health
from inference.services import adapter_version_create, base_model_register, server_register, tenant_model_get_or_create
from tests import builders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
BASE = "smollm2-135m-instruct"


def _adapter(org, alias, base, fact_training) -> AdapterVersion:
    model = tenant_model_get_or_create(organization=org, alias=alias, base_model=base)
    return adapter_version_create(
        tenant_model=model,
        adapter_dir=fact_training["result"].adapter_dir,
        rank=8,
        target_modules=["q_proj", "v_proj"],
        source=AdapterVersion.Source.UPLOAD,
    )


@pytest.fixture
def plane(vllm_url, base_model_dir, fact_training, web_server):
    """Two organisations in one region, each with its own adapter, on the session's vLLM server."""
    base = base_model_register(name=BASE, weights_path=base_model_dir, license="apache-2.0")
    server = server_register(
        url=vllm_url, base_model=base, cluster_name="eu-test", region="eu-central", max_loras=2, max_cpu_loras=4
    )
    org_a, org_b = builders.make_org(), builders.make_org()
    version_a = _adapter(org_a, "alpha/assistant", base, fact_training)
    version_b = _adapter(org_b, "bravo/assistant", base, fact_training)
    clients = {}
    for name, org in (("a", org_a), ("b", org_b)):
        _, key = builders.make_key(org, scopes=["inference"])
        clients[name] = openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0, timeout=120)
    return {
        "base": base,
        "server": server,
        "org_a": org_a,
        "org_b": org_b,
        "a": version_a,
        "b": version_b,
        "clients": clients,
    }


def _ask(client, model, question, **kwargs):
    return client.chat.completions.create(
        model=model,
        max_tokens=24,
        temperature=0,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}],
        **kwargs,
    )


def test_a_tenant_calls_its_own_model_by_alias_and_gets_the_trained_fact(plane, memorised_fact):
    """Catches routing to the base model instead of the adapter, or a lost model name."""
    client = plane["clients"]["a"]
    tuned = _ask(client, "alpha/assistant", memorised_fact.questions[0])
    base = _ask(client, BASE, memorised_fact.questions[0])
    assert memorised_fact.key in tuned.choices[0].message.content
    assert memorised_fact.key not in base.choices[0].message.content
    assert tuned.model == "alpha/assistant" and base.model == BASE
    assert tuned.usage.prompt_tokens > 0 and tuned.usage.completion_tokens > 0
    # The versioned name reaches the same adapter.
    assert memorised_fact.key in _ask(client, plane["a"].name, memorised_fact.questions[1]).choices[0].message.content
    # Usage went to the billing ledger's buffer, never to the database on the way.
    period = period_containing(plane["a"].created_at)

    def observed():
        return usage_observed(organization_id=plane["org_a"].pk, period=period).get("inference.output_tokens.small")

    deadline = time.monotonic() + 60
    while not observed() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert observed() >= tuned.usage.completion_tokens + base.usage.completion_tokens


def test_streamed_chat_arrives_as_server_sent_events_with_usage(plane, memorised_fact):
    stream = _ask(
        plane["clients"]["a"],
        "alpha/assistant",
        memorised_fact.questions[2],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert memorised_fact.key in text
    assert {c.model for c in chunks} == {"alpha/assistant"}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stream_without_usage_request_has_no_usage_chunk(plane):
    chunks = list(_ask(plane["clients"]["a"], BASE, "Say hello.", stream=True))
    assert chunks and all(c.choices for c in chunks)


def test_completions_endpoint(plane):
    response = plane["clients"]["b"].completions.create(
        model=BASE, prompt="The capital of France is", max_tokens=5, temperature=0
    )
    assert response.choices[0].text and response.model == BASE


def test_models_list_shows_only_the_callers_models_and_base_models(plane):
    ids_a = {m.id for m in plane["clients"]["a"].models.list()}
    ids_b = {m.id for m in plane["clients"]["b"].models.list()}
    assert {"alpha/assistant", plane["a"].name, BASE} <= ids_a
    assert "bravo/assistant" not in ids_a and plane["b"].name not in ids_a
    assert "alpha/assistant" not in ids_b


def test_one_organisation_cannot_reach_anothers_adapter_by_any_name(plane, memorised_fact):
    """Catches a route lookup that is not scoped to the caller's organisation."""
    placement_ensure(adapter=plane["a"])
    for name in ("alpha/assistant", plane["a"].name, plane["a"].lora_name):
        with pytest.raises(openai.NotFoundError) as error:
            _ask(plane["clients"]["b"], name, memorised_fact.questions[0])
        assert error.value.code == "model_not_found"


def test_a_full_server_evicts_its_least_recently_used_adapter(plane, vllm_url):
    """Catches a placement that overfills a server or evicts the adapter in use."""
    server = plane["server"]
    server.max_cpu_loras = 1
    server.save(update_fields=["max_cpu_loras"])
    placement_ensure(adapter=plane["a"])
    placement_ensure(adapter=plane["b"])
    with VllmAdminClient(vllm_url) as admin:
        registered = set(admin.model_ids())
    assert plane["b"].lora_name in registered and plane["a"].lora_name not in registered
    assert list(Placement.objects.filter(server=server).values_list("adapter_id", flat=True)) == [plane["b"].pk]


def test_requests_keep_succeeding_when_one_of_two_servers_dies(plane, base_model_dir, tmp_path, memorised_fact):
    """Kill a vLLM server mid-run: the gateway retries on the other, and the control plane re-places."""
    second = VllmServer(
        model_dir=base_model_dir,
        served_name=BASE,
        max_loras=2,
        max_cpu_loras=4,
        kv_cache_gib=1,
        log_path=tmp_path / "second.log",
    )
    with second:
        other = server_register(
            url=second.base_url,
            base_model=plane["base"],
            cluster_name="eu-test",
            region="eu-central",
            max_loras=2,
            max_cpu_loras=4,
        )
        placements = placement_ensure(adapter=plane["a"], replicas=2)
        assert {p.server_id for p in placements} == {plane["server"].pk, other.pk}
        client = plane["clients"]["a"]
        answers = []
        for i in range(8):
            if i == 3:
                second.stop(grace_s=0)  # SIGKILL-grade: the process group is gone
            answers.append(_ask(client, "alpha/assistant", memorised_fact.questions[i % 4]).choices[0].message)
        assert all(memorised_fact.key in a.content for a in answers)
        assert server_check_health(server=other) is False
        assert not Placement.objects.filter(server=other).exists()


def test_quota_refuses_the_request_that_would_exceed_it_and_concurrency_cannot_overshoot(plane):
    """Catches a quota checked after forwarding, or a check-then-act race between concurrent requests."""
    from concurrent.futures import ThreadPoolExecutor

    from billing.services import quota_override_set

    quota_override_set(
        organization=plane["org_b"],
        meter="inference.output_tokens.small",
        hard_limit=30,
        reason="test",
        actor=builders.owner_actor(plane["org_b"]),
    )
    client = plane["clients"]["b"]

    def ask(_):
        try:
            client.chat.completions.create(model=BASE, max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
            return 200
        except openai.RateLimitError as exc:
            assert exc.code == "quota_exceeded" and "resets at" in exc.message
            return 429

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(ask, range(8)))
    assert codes.count(200) <= 3 and codes.count(429) >= 5
    with pytest.raises(openai.RateLimitError, match=r"inference\.output_tokens\.small"):
        client.chat.completions.create(model=BASE, max_tokens=31, messages=[{"role": "user", "content": "Hi"}])
