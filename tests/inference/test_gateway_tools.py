"""Tool calling at the gateway's door: OpenAI's `tools`, `tool_choice` and tool messages checked before anything is
counted or forwarded, and `tool_choice: "auto"` refused, by name, for a model that cannot choose tools itself.

None of these needs vLLM (test_gateway_tools_vllm.py has the real round trips)."""

import httpx
import openai
import pytest

from inference.engine.vllm_server import STRUCTURED_TOOL_PARSER, TOOL_CALL_PARSERS, VllmServer
from inference.gateway import errors
from inference.gateway.tools import tool_choice_refusal, tool_request_check
from inference.models import BaseModel, InferenceCluster
from inference.models import VllmServer as VllmServerRow
from tests import builders

TOOL = {
    "type": "function",
    "function": {
        "name": "asset_health",
        "description": "Health of one asset.",
        "parameters": {"type": "object", "properties": {"asset_code": {"type": "string"}}, "required": ["asset_code"]},
    },
}
USER = [{"role": "user", "content": "How is press P-4?"}]


def _call(call_id="call_1"):
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "asset_health", "arguments": '{"asset_code": "P-4"}'},
    }


def _refused(payload) -> errors.GatewayError:
    with pytest.raises(errors.GatewayError) as caught:
        tool_request_check(payload)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    return caught.value


@pytest.mark.parametrize(
    ("payload", "param", "fragment"),
    [
        ({"tools": []}, "tools", "non-empty"),
        ({"tools": {"a": 1}}, "tools", "non-empty"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0].type", '"type": "function"'),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "must be an object"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name", "1 to 64"),
        ({"tools": [{"type": "function", "function": {"name": "x" * 65}}]}, "tools[0].function.name", "1 to 64"),
        ({"tools": [TOOL, TOOL]}, "tools[1].function.name", "defined twice"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
            "tools[0].function.parameters",
            "describe an object",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": 3}}}
                ]
            },
            "tools[0].function.parameters",
            "not a valid JSON Schema",
        ),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {
                                "type": "object",
                                "properties": {"a": {"pattern": "a{99999999999999999999}"}},
                            },
                        },
                    }
                ]
            },
            "tools[0].function.parameters",
            "not a valid JSON Schema",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]},
            "tools[0].function.parameters",
            "JSON Schema object",
        ),
        ({"tools": [TOOL], "tool_choice": "always"}, "tool_choice", '"none", "auto", "required"'),
        ({"tool_choice": "required"}, "tool_choice", "needs `tools`"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}},
            "tool_choice",
            "not among `tools`",
        ),
        ({"tools": [TOOL], "tool_choice": {"type": "function"}}, "tool_choice", '{"type": "function"'),
        ({"tools": [TOOL], "parallel_tool_calls": "yes"}, "parallel_tool_calls", "boolean"),
        ({"functions": [TOOL["function"]]}, "functions", "send `tools`"),
    ],
)
def test_malformed_tools_are_400_with_the_param(settings, payload, param, fragment):
    error = _refused({"model": "m", "messages": USER, **payload})
    assert error.param == param and fragment in error.message, error.message


def test_tools_are_bounded_in_number_and_size(settings):
    settings.GATEWAY_MAX_TOOLS = 3
    settings.GATEWAY_MAX_TOOLS_BYTES = 2000
    many = [{"type": "function", "function": {"name": f"f{i}"}} for i in range(4)]
    assert "At most 3 tools" in _refused({"messages": USER, "tools": many}).message
    big = [{"type": "function", "function": {"name": "f", "description": "x" * 2000}}]
    assert "at most 2000" in _refused({"messages": USER, "tools": big}).message


@pytest.mark.parametrize(
    ("messages", "param", "fragment"),
    [
        ([*USER, {"role": "tool", "content": "{}"}], "messages[1].tool_call_id", "required"),
        (
            [*USER, {"role": "tool", "tool_call_id": "call_9", "content": "{}"}],
            "messages[1].tool_call_id",
            "no earlier",
        ),
        (
            [*USER, {"role": "assistant", "content": None, "tool_calls": [_call()]},
             {"role": "tool", "tool_call_id": "call_1", "content": {"health": 1}}],
            "messages[2].content",
            "as text",
        ),
        (
            [*USER, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]}],
            "messages[1].tool_calls[0]",
            '"arguments": "<JSON text>"',
        ),
        ([*USER, {"role": "assistant", "tool_calls": {"id": "c"}}], "messages[1].tool_calls", "array"),
    ],
)  # fmt: skip
def test_tool_messages_must_answer_a_call_that_was_made(settings, messages, param, fragment):
    error = _refused({"model": "m", "messages": messages, "tools": [TOOL], "tool_choice": "required"})
    assert error.param == param and fragment in error.message, error.message


def test_well_formed_requests_pass_with_the_choice_read():
    history = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [_call()]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": '{"health": 0.8}'}]},
    ]
    assert tool_request_check({"messages": USER}) is None
    assert tool_request_check({"messages": USER, "tool_choice": "none"}) is None
    assert tool_request_check({"messages": history, "tools": [TOOL]}).choice == "auto"  # OpenAI's default
    named = tool_request_check(
        {
            "messages": history,
            "tools": [TOOL],
            "tool_choice": {"type": "function", "function": {"name": "asset_health"}},
        }
    )
    assert (named.choice, named.function) == ("function", "asset_health")
    assert tool_request_check({"messages": USER, "tools": [TOOL], "tool_choice": "required"}).choice == "required"
    assert tool_request_check({"messages": USER, "tools": [TOOL], "tool_choice": "none"}).choice == "none"


def test_auto_is_refused_only_where_the_model_cannot_choose():
    auto = tool_request_check({"messages": USER, "tools": [TOOL]})
    refusal = tool_choice_refusal(auto, model="acme/assistant", can_choose_tools=False)
    assert refusal is not None and refusal.status == 400 and refusal.code == "tool_choice_unsupported"
    assert "acme/assistant" in refusal.message and '"required"' in refusal.message and "asset_health" in refusal.message
    assert tool_choice_refusal(auto, model="m", can_choose_tools=True) is None
    required = tool_request_check({"messages": USER, "tools": [TOOL], "tool_choice": "required"})
    assert tool_choice_refusal(required, model="m", can_choose_tools=False) is None


def test_the_parser_list_is_the_installed_vllms():
    """Catches a vLLM upgrade that renames or drops a parser a base model names."""
    from vllm.tool_parsers import ToolParserManager

    assert set(TOOL_CALL_PARSERS) == set(ToolParserManager.list_registered())


def test_a_server_runs_the_models_parser_or_the_structured_one(tmp_path):
    """Without a parser vLLM 0.32 refuses even required and named choices; the gateway refuses auto for it."""
    plain = VllmServer(model_dir=tmp_path, served_name="m", port=1).command()
    assert plain[-3:] == ["--enable-auto-tool-choice", "--tool-call-parser", STRUCTURED_TOOL_PARSER]
    hermes = VllmServer(model_dir=tmp_path, served_name="m", port=1, tool_call_parser="hermes").command()
    assert hermes[-3:] == ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]


# --- through the real gateway (no vLLM: the refusals come before forwarding) ---------------------------------------


@pytest.fixture
def served(org):
    """Two base models with a 'healthy' server each that nothing listens on: one chooses tools, one cannot."""
    cluster = InferenceCluster.objects.create(name="tools-test", region=org.region)
    models = {}
    for name, parser in (("plain-test", ""), ("hermes-test", "hermes")):
        models[name] = BaseModel.objects.create(
            name=name,
            weights_path="/nowhere",
            architecture="LlamaForCausalLM",
            context_length=2048,
            license="apache-2.0",
            tool_call_parser=parser,
        )
        VllmServerRow.objects.create(cluster=cluster, base_model=models[name], url=f"http://127.0.0.1:9/{name}")
    return models


@pytest.mark.django_db(transaction=True)
def test_gateway_refuses_auto_on_a_model_without_parser_in_openais_shape(web_server, org, served):
    _, key = builders.make_key(org, scopes=["inference"])
    client = openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0)
    for choice in ({}, {"tool_choice": "auto"}):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="plain-test", messages=USER, tools=[TOOL], **choice)
        assert refused.value.code == "tool_choice_unsupported" and refused.value.param == "tool_choice"
        assert "plain-test" in refused.value.message
    # The same request passes the door for a model with a parser (and then finds no server answering: 503).
    with pytest.raises(openai.InternalServerError) as unreachable:
        client.chat.completions.create(model="hermes-test", messages=USER, tools=[TOOL], max_tokens=4)
    assert unreachable.value.code == "no_capacity"
    # A malformed tool is a 400 naming the field, on the wire too.
    response = httpx.post(
        f"{web_server}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "plain-test", "messages": USER, "tools": [{"type": "function", "function": {"name": "a b"}}]},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "tools[0].function.name"


@pytest.mark.django_db(transaction=True)
def test_models_list_says_which_tool_choices_work(web_server, org, served):
    _, key = builders.make_key(org, scopes=["inference"])
    listed = httpx.get(f"{web_server}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    capabilities = {row["id"]: row["capabilities"] for row in listed}
    assert "auto" in capabilities["hermes-test"]["tool_choice"]
    assert "auto" not in capabilities["plain-test"]["tool_choice"]
    assert "required" in capabilities["plain-test"]["tool_choice"]


def test_a_schema_nested_past_the_parsers_depth_is_a_400_not_a_500(settings):
    """Catches a RecursionError escaping as a server error: 64 KiB of tools can nest thousands of levels."""
    for depth, param in ((300, "tools[0].function.parameters"), (3000, "tools")):
        schema: dict = {"type": "object"}
        inner = schema
        for _ in range(depth):
            inner["properties"] = {"a": {"type": "object"}}
            inner = inner["properties"]["a"]
        tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
        error = _refused({"messages": USER, "tools": [tool]})
        assert error.param == param and "nested too deeply" in error.message
