"""Tool choice by the tenant's model where its base model can call tools (a vLLM `tool_call_parser`), retrieval
otherwise or when the model's call is unusable; the choice's source is on the stored message and in the API answer.

The real round trip uses the session's gateway (uvicorn) and vLLM CPU server, which runs with
`--enable-auto-tool-choice --tool-call-parser pythonic`; the bundled model is given that parser here. Whatever the
small model answers, the copilot's choice must be valid: a model choice names an offered tool with arguments that
validate against its schema, and anything else falls back to retrieval with the reason recorded.
"""

import jsonschema
import pytest

from assistant.choosing import model_call_check, tool_choose
from assistant.demo import demo_factory_seed
from assistant.models import Message
from assistant.tools import TOOLS
from automation.maintenance.models import WorkOrder
from inference.models import BaseModel
from tests import builders

BASE = "smollm2-135m-instruct"


def _ask(client, org, question: str) -> dict:
    base = f"/api/v1/orgs/{org.slug}/assistant/conversations"
    created = client.post(base, {}, format="json")
    assert created.status_code == 201, created.json()
    response = client.post(f"{base}/{created.json()['id']}/messages", {"content": question}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def _base(parser: str) -> BaseModel:
    return BaseModel.objects.create(
        name=BASE,
        weights_path="/nonexistent",
        architecture="LlamaForCausalLM",
        context_length=2048,
        license="apache-2.0",
        tool_call_parser=parser,
    )


READS = {name: tool for name, tool in TOOLS.items() if not tool.write}


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (None, "no tool call"),
        ({"name": "drop_tables", "arguments": "{}"}, "not an offered tool"),
        ({"name": "maintenance_work_order_open", "arguments": "{}"}, "not an offered tool"),  # a write, not offered
        ({"name": "maintenance_asset_health", "arguments": "{assets: PRESS-4"}, "invalid arguments"),
        ({"name": "maintenance_asset_health", "arguments": '{"assets": "PRESS-4"}'}, "invalid arguments"),
        ({"name": "maintenance_asset_health", "arguments": '{"asset": ["PRESS-4"]}'}, "invalid arguments"),
        ({"name": "maintenance_asset_health", "arguments": "[]"}, "invalid arguments"),
        ({"name": "maintenance_asset_health"}, "invalid arguments"),
    ],
)
def test_an_unusable_model_call_says_why(call, reason):
    checked = model_call_check(call, READS)
    assert isinstance(checked, str) and checked.startswith(reason), checked


def test_a_call_of_an_offered_tool_with_valid_arguments_is_the_choice():
    tool, arguments = model_call_check(
        {"name": "maintenance_asset_health", "arguments": '{"assets": ["PRESS-4"]}'}, READS
    )
    assert tool is TOOLS["maintenance_asset_health"] and arguments == {"assets": ["PRESS-4"]}
    tool, arguments = model_call_check({"name": "scheduling_late_orders", "arguments": {}}, READS)
    assert tool.name == "scheduling_late_orders" and arguments == {}


@pytest.mark.django_db
def test_a_base_model_without_a_parser_is_never_asked(org, settings):
    settings.ASSISTANT_GATEWAY_BASE_URL = "http://127.0.0.1:9"  # asking would record a gateway fallback
    settings.ASSISTANT_MODEL = BASE
    settings.ASSISTANT_MODEL_TIMEOUT_S = 5
    _base("")
    demo_factory_seed(organization=org, actor=builders.owner_actor(org), with_documents=False)
    _, key = builders.make_key(org)
    answer = _ask(builders.key_client(key), org, "What is the health of PRESS-4?")
    assert answer["tool"] == "maintenance_asset_health"
    assert answer["choice"]["source"] == "retrieval" and "model" not in answer["choice"]
    assert Message.objects.get(pk=answer["id"]).choice["source"] == "retrieval"


@pytest.mark.django_db
def test_a_gateway_error_falls_back_to_retrieval_with_the_reason(org, settings):
    settings.ASSISTANT_GATEWAY_BASE_URL = "http://127.0.0.1:9"
    settings.ASSISTANT_MODEL_TIMEOUT_S = 5
    _base("pythonic")
    demo_factory_seed(organization=org, actor=builders.owner_actor(org), with_documents=False)
    choice = tool_choose(organization=org, question="Which orders are late?", model=BASE)
    assert choice.source == "retrieval" and choice.tool is not None and choice.tool.name == "scheduling_late_orders"
    assert choice.model is not None and choice.model["fallback"].startswith("gateway:")
    assert choice.explain()["source"] == "retrieval"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_model_that_can_call_tools_is_asked_and_its_choice_is_valid(
    org, settings, vllm_url, base_model_dir, web_server
):
    from inference.services import base_model_register, server_register

    base = base_model_register(
        name=BASE, weights_path=base_model_dir, license="apache-2.0", tool_call_parser="pythonic"
    )
    server_register(url=vllm_url, base_model=base, cluster_name="choice-eu", region=org.region, max_loras=2)
    settings.ASSISTANT_GATEWAY_BASE_URL = web_server
    settings.ASSISTANT_MODEL = BASE
    settings.ASSISTANT_MODEL_TIMEOUT_S = 180
    demo_factory_seed(organization=org, actor=builders.owner_actor(org), with_documents=False)
    work_orders = WorkOrder.objects.filter(organization=org).count()
    _, key = builders.make_key(org)
    client = builders.key_client(key)
    questions = {
        "What is the health of PRESS-4?": False,
        "Which orders are late?": False,
        "Open a work order for PRESS-4 to replace the main bearing": True,
    }
    for question, imperative in questions.items():
        answer = _ask(client, org, question)
        choice = answer["choice"]
        stored = Message.objects.get(pk=answer["id"])
        assert stored.choice["source"] == choice["source"] in ("model", "retrieval")
        assert "model" in choice, choice  # the model was asked
        if choice["source"] == "model":
            call = choice["model"]["call"]
            tool = TOOLS[call["name"]]
            assert answer["tool"] == tool.name
            jsonschema.validate(call["arguments"], tool.parameters)
            assert imperative or not tool.write  # writes are offered only on an imperative
        else:
            assert choice["model"]["fallback"], choice
        if answer["tool"] and TOOLS[answer["tool"]].write:
            assert answer["outcome"] in ("proposed", "refused")  # proposed, never run
    assert WorkOrder.objects.filter(organization=org).count() == work_orders
