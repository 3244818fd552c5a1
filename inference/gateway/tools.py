"""Tool calling on /v1/chat/completions: OpenAI's `tools`, `tool_choice` and tool messages, checked at the door.

vLLM does the work: for `tool_choice: "required"` or a named function it constrains decoding to the tools' JSON
schemas (structured outputs), which any base model can follow; for `"auto"` the model decides itself, and vLLM needs
the base model's tool-call parser (`--enable-auto-tool-choice --tool-call-parser <name>`) to find the calls in its
text. A server without one would silently answer prose, so the gateway refuses `auto` for such models instead
(`tool_choice_refusal`), naming what works.

Everything here is checked before a request is counted against the quota or forwarded: the number and size of the
tools (bounded: they go into every prompt), each function's name and JSON-schema parameters, `tool_choice` naming a
tool that exists, and a history whose `tool` messages answer a call an earlier assistant message made. Errors are
OpenAI's 400 `invalid_request_error` with `param` pointing at the field (`tools[2].function.parameters`).
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from . import errors

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHOICES = ("none", "auto", "required")


@dataclass(frozen=True)
class ToolRequest:
    """What a chat request asks of tools: `choice` is none, auto, required or function (then `function` names it)."""

    tool_names: tuple[str, ...]
    choice: str
    function: str | None = None


def _text_content(content: Any) -> bool:
    """A message's content as OpenAI accepts it for tool and assistant messages: a string or text parts."""
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str) for part in content
    )


def _check_function(index: int, tool: Any) -> str:
    where = f"tools[{index}]"
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise errors.bad_request(f'`{where}` must be an object with `"type": "function"`.', param=f"{where}.type")
    function = tool.get("function")
    if not isinstance(function, dict):
        raise errors.bad_request(f"`{where}.function` must be an object.", param=f"{where}.function")
    name = function.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.match(name):
        raise errors.bad_request(
            f"`{where}.function.name` must be 1 to 64 letters, digits, underscores or dashes.",
            param=f"{where}.function.name",
        )
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise errors.bad_request(
            f"`{where}.function.description` must be a string.", param=f"{where}.function.description"
        )
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise errors.bad_request(f"`{where}.function.strict` must be a boolean.", param=f"{where}.function.strict")
    if "parameters" in function:
        _check_parameters(function["parameters"], param=f"{where}.function.parameters")
    return name


def _check_parameters(schema: Any, *, param: str) -> None:
    if not isinstance(schema, dict):
        raise errors.bad_request(f"`{param}` must be a JSON Schema object.", param=param)
    if schema and schema.get("type", "object") != "object":
        raise errors.bad_request(f'`{param}` must describe an object (`"type": "object"`).', param=param)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        location = "/".join(str(p) for p in exc.path) or "(root)"
        raise errors.bad_request(
            f"`{param}` is not a valid JSON Schema at {location}: {exc.message}", param=param
        ) from None
    except RecursionError:  # within GATEWAY_MAX_TOOLS_BYTES a schema can nest thousands of levels
        raise errors.bad_request(f"`{param}` is nested too deeply.", param=param) from None
    except (OverflowError, ValueError, TypeError) as exc:  # e.g. a `pattern` repeating more than `re` can count
        raise errors.bad_request(f"`{param}` is not a valid JSON Schema: {exc}", param=param) from None


def _check_choice(choice: Any, names: tuple[str, ...]) -> ToolRequest:
    if isinstance(choice, str):
        if choice not in CHOICES:
            raise errors.bad_request(
                f'`tool_choice` must be "none", "auto", "required" or '
                f'{{"type": "function", "function": {{"name": ...}}}}; got "{choice[:40]}".',
                param="tool_choice",
            )
        if choice != "none" and not names:
            raise errors.bad_request(f'`tool_choice` "{choice}" needs `tools`.', param="tool_choice")
        return ToolRequest(tool_names=names, choice=choice)
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise errors.bad_request(
            '`tool_choice` as an object must be {"type": "function", "function": {"name": "..."}}.',
            param="tool_choice",
        )
    if name not in names:
        raise errors.bad_request(
            f"`tool_choice` names the function `{name[:64]}`, which is not among `tools`.", param="tool_choice"
        )
    return ToolRequest(tool_names=names, choice="function", function=name)


def _check_history(messages: Any) -> None:
    """Assistant `tool_calls` well formed, and every `tool` message answering one of them."""
    if not isinstance(messages, list):
        raise errors.bad_request("`messages` must be an array.", param="messages")
    called: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise errors.bad_request(f"`{where}` must be an object.", param=where)
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls") is not None:
            calls = message["tool_calls"]
            if not isinstance(calls, list):
                raise errors.bad_request(f"`{where}.tool_calls` must be an array.", param=f"{where}.tool_calls")
            for number, call in enumerate(calls):
                at = f"{where}.tool_calls[{number}]"
                function = call.get("function") if isinstance(call, dict) else None
                if (
                    not isinstance(call, dict)
                    or not isinstance(call.get("id"), str)
                    or call.get("type", "function") != "function"
                    or not isinstance(function, dict)
                    or not isinstance(function.get("name"), str)
                    or not isinstance(function.get("arguments"), str)
                ):
                    raise errors.bad_request(
                        f'`{at}` must be {{"id": "...", "type": "function", "function": '
                        f'{{"name": "...", "arguments": "<JSON text>"}}}}.',
                        param=at,
                    )
                called.add(call["id"])
            if message.get("content") is not None and not _text_content(message["content"]):
                raise errors.bad_request(f"`{where}.content` must be text or null.", param=f"{where}.content")
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise errors.bad_request(
                    f"`{where}.tool_call_id` is required for a `tool` message.", param=f"{where}.tool_call_id"
                )
            if call_id not in called:
                raise errors.bad_request(
                    f"`{where}` answers the tool call `{call_id[:64]}`, which no earlier assistant message made.",
                    param=f"{where}.tool_call_id",
                )
            if not _text_content(message.get("content")):
                raise errors.bad_request(
                    f"`{where}.content` must be the tool's result as text.", param=f"{where}.content"
                )


def tool_request_check(payload: dict[str, Any]) -> ToolRequest | None:
    """Validate the tool fields of a chat completion request; None when it uses no tools. Raises GatewayError 400."""
    tools = payload.get("tools")
    choice = payload.get("tool_choice")
    _check_history(payload.get("messages"))
    if payload.get("functions") is not None or payload.get("function_call") is not None:
        raise errors.bad_request(
            "`functions` and `function_call` are deprecated and not supported: send `tools` and `tool_choice`.",
            param="functions" if payload.get("functions") is not None else "function_call",
        )
    parallel = payload.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise errors.bad_request("`parallel_tool_calls` must be a boolean.", param="parallel_tool_calls")
    if tools is None:
        if choice is None or choice == "none":
            return None
        return _check_choice(choice, ())  # names the missing tools
    if not isinstance(tools, list) or not tools:
        raise errors.bad_request("`tools` must be a non-empty array (or left out).", param="tools")
    limit = settings.GATEWAY_MAX_TOOLS
    if len(tools) > limit:
        raise errors.bad_request(f"At most {limit} tools per request; got {len(tools)}.", param="tools")
    try:
        size = len(json.dumps(tools, separators=(",", ":")))
    except RecursionError:
        raise errors.bad_request("`tools` are nested too deeply.", param="tools") from None
    if size > settings.GATEWAY_MAX_TOOLS_BYTES:
        raise errors.bad_request(
            f"The tools' definitions take {size} bytes; at most {settings.GATEWAY_MAX_TOOLS_BYTES} per request.",
            param="tools",
        )
    names: list[str] = []
    for index, tool in enumerate(tools):
        name = _check_function(index, tool)
        if name in names:
            raise errors.bad_request(
                f"`tools[{index}].function.name`: `{name}` is defined twice.", param=f"tools[{index}].function.name"
            )
        names.append(name)
    # OpenAI's default: "auto" when tools are given.
    return _check_choice("auto" if choice is None else choice, tuple(names))


def tool_choice_refusal(request: ToolRequest, *, model: str, can_choose_tools: bool) -> errors.GatewayError | None:
    """The 400 for `tool_choice: "auto"` on a model whose base model has no tool-call parser; None when it can."""
    if request.choice != "auto" or can_choose_tools:
        return None
    example = request.tool_names[0]
    return errors.GatewayError(
        400,
        f'The model `{model}` cannot choose tools itself (`tool_choice: "auto"`, the default when `tools` are '
        f'given): its base model has no tool-call parser. Send `tool_choice: "required"` (it calls one of the '
        f'tools) or name the function, e.g. {{"type": "function", "function": {{"name": "{example}"}}}}; '
        f'or `"none"` for an answer without tools.',
        param="tool_choice",
        code="tool_choice_unsupported",
    )
