"""Tool calls round-trip through the official `openai` SDK, the gateway and the session's real vLLM CPU server with
the bundled model: `tools` in, `tool_calls` out (named and required choice, arguments valid against the schema),
the result back in a `tool` message and a final answer, streamed calls assembled by the SDK's stream helper, the
refusal of `tool_choice: "auto"` on a model that cannot choose, and the tokens metered as for any completion."""

import json
import time

import jsonschema
import openai
import pytest

from billing.periods import period_containing
from billing.usage import usage_observed
from inference.services import base_model_register, server_register
from tests import builders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
BASE = "smollm2-135m-instruct"
HEALTH = {
    "type": "object",
    "properties": {"asset_code": {"type": "string", "pattern": "^[A-Z]{1,4}-[0-9]{1,3}$"}},
    "required": ["asset_code"],
    "additionalProperties": False,
}
LATE = {
    "type": "object",
    "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 50}},
    "required": ["limit"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "asset_health", "description": "Health of one asset.", "parameters": HEALTH},
    },
    {
        "type": "function",
        "function": {"name": "late_orders", "description": "Orders running late.", "parameters": LATE},
    },
]
SCHEMAS = {"asset_health": HEALTH, "late_orders": LATE}
QUESTION = [{"role": "user", "content": "How healthy is press P-4?"}]


@pytest.fixture
def plane(vllm_url, base_model_dir, web_server, org):
    base = base_model_register(name=BASE, weights_path=base_model_dir, license="apache-2.0")  # no parser
    server_register(url=vllm_url, base_model=base, cluster_name="tools-eu", region=org.region, max_loras=2)
    _, key = builders.make_key(org, scopes=["inference"])
    client = openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0, timeout=180)
    return {"org": org, "base": base, "client": client}


def _valid_call(call) -> dict:
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, SCHEMAS[call.function.name])
    assert call.id and call.type == "function"
    return arguments


def _observed_output_tokens(org) -> int:
    period = period_containing(org.created_at)
    return usage_observed(organization_id=org.pk, period=period).get("inference.output_tokens.small") or 0


def test_named_and_required_tool_calls_come_back_valid_and_are_metered(plane):
    client = plane["client"]
    named = client.chat.completions.create(
        model=BASE,
        messages=QUESTION,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "asset_health"}},
        max_tokens=60,
        temperature=0,
    )
    [call] = named.choices[0].message.tool_calls
    assert call.function.name == "asset_health" and _valid_call(call)["asset_code"] == "P-4"
    assert named.choices[0].finish_reason == "stop"  # OpenAI's: "stop" for a named function
    assert named.model == BASE
    required = client.chat.completions.create(
        model=BASE, messages=QUESTION, tools=TOOLS, tool_choice="required", max_tokens=60, temperature=0
    )
    calls = required.choices[0].message.tool_calls
    assert calls and all(c.function.name in SCHEMAS for c in calls)
    for c in calls:
        _valid_call(c)
    assert required.choices[0].finish_reason == "tool_calls"
    # Metered like any completion: the tokens reach billing's usage buffer.
    spent = named.usage.completion_tokens + required.usage.completion_tokens
    assert named.usage.prompt_tokens > 0 and spent > 0
    deadline = time.monotonic() + 60
    while _observed_output_tokens(plane["org"]) < spent and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _observed_output_tokens(plane["org"]) >= spent


def test_the_tool_result_goes_back_and_the_model_answers(plane):
    client = plane["client"]
    first = client.chat.completions.create(
        model=BASE,
        messages=QUESTION,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "asset_health"}},
        max_tokens=60,
        temperature=0,
    )
    call = first.choices[0].message.tool_calls[0]
    history = [
        *QUESTION,
        first.choices[0].message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"asset_code": "P-4", "health": 0.82})},
    ]
    final = client.chat.completions.create(
        model=BASE, messages=history, tools=TOOLS, tool_choice="none", max_tokens=30, temperature=0
    )
    message = final.choices[0].message
    assert message.content and not message.tool_calls
    assert final.usage.prompt_tokens > first.usage.prompt_tokens  # the call and its result were in the prompt


def test_streamed_tool_calls_assemble_in_the_sdks_stream_helper(plane):
    with plane["client"].chat.completions.stream(
        model=BASE,
        messages=QUESTION,
        tools=TOOLS,
        tool_choice="required",
        max_tokens=60,
        temperature=0,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].index == 0 and deltas[0].id and deltas[0].function.name in SCHEMAS
    assert len(deltas) > 1  # the arguments arrive in pieces
    [call] = final.choices[0].message.tool_calls
    assert _valid_call(call) is not None
    assert final.choices[0].finish_reason == "tool_calls"
    assert {c.model for c in chunks} == {BASE} and chunks[-1].usage.completion_tokens > 0


def test_auto_on_the_bundled_model_is_refused_with_what_works(plane):
    for extra in ({}, {"tool_choice": "auto"}):
        with pytest.raises(openai.BadRequestError) as refused:
            plane["client"].chat.completions.create(model=BASE, messages=QUESTION, tools=TOOLS, max_tokens=8, **extra)
        error = refused.value
        assert error.code == "tool_choice_unsupported" and error.param == "tool_choice"
        assert BASE in error.message and '"required"' in error.message
    models = {m.id: m for m in plane["client"].models.list()}
    assert "auto" not in models[BASE].model_extra["capabilities"]["tool_choice"]
