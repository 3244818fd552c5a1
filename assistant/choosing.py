"""Tool choice without the model, against one organisation's records (see `engine.choosing` for the method).

The tools' descriptions and example questions are embedded once per process. The tenant's codes are read fresh
for every question, filtered by organisation: a code of another tenant resolves to nothing, so a question about
another tenant's asset finds nothing. Only the user's own message is ever scored: text from documents or tool
results never reaches tool choice, so it can never lead to a proposal.

Where the copilot model's base model can call tools (it has a vLLM `tool_call_parser`), the model is asked first
(`model_choose`): the user's message alone, the read tools' JSON schemas (and the write tools' only when the message
holds an imperative), `tool_choice: "auto"`. A call of an offered tool whose arguments validate against its schema
is the choice (source "model"); no call, an unknown tool, invalid arguments, a gateway error or a timeout fall back
to retrieval (source "retrieval"), and the reason is recorded. Either way the codes a tool runs on are resolved
from the user's words against the tenant's records, and a write tool is only ever proposed.
"""

import json
import logging
from dataclasses import dataclass, replace
from functools import lru_cache

import jsonschema
from django.db.models.functions import Upper

from automation.maintenance.models import Asset
from automation.quality.models import DefectCode, Lot, Unit
from automation.scheduling.models import Machine, Order, Product
from inference.selectors import model_base_resolve
from tenants.models import Organization

from . import engine
from .conf import copilot_model
from .engine.choosing import (
    WRITE_MARGIN,
    Resolution,
    ToolProfile,
    ToolScore,
    has_imperative,
    looks_like_code,
    resolve_codes,
    score_tools,
    tokens,
)
from .prose import ProseUnavailable, model_tool_call
from .tools import IMPERATIVES, TOOLS, Tool

logger = logging.getLogger(__name__)

MIN_SCORE = 0.5  # below this, and with no keyword of the tool in the question, no tool fits: refuse
KIND_LABELS = {
    "asset": "asset",
    "machine": "machine",
    "order": "order",
    "product": "product",
    "defect": "defect code",
    "unit": "unit",
    "lot": "lot",
}
FUZZY_KINDS = ("asset", "machine", "product", "defect")


@dataclass(frozen=True)
class Choice:
    tool: Tool | None
    resolution: Resolution
    scores: list[ToolScore]
    refusal: str = ""
    source: str = "retrieval"  # "model" when the tenant's model chose the tool
    model: dict | None = None  # when the model was asked: its call, or why it was not used

    def explain(self) -> dict:
        return {
            "source": self.source,
            **({"model": self.model} if self.model is not None else {}),
            "scores": [
                {"tool": s.name, "score": round(s.score, 3), "semantic": round(s.semantic, 3)} for s in self.scores[:3]
            ],
            "resolved": {
                kind: [{"code": m.code, "said": m.said, "exact": m.exact} for m in matches]
                for kind, matches in self.resolution.matches.items()
            },
            "unresolved": self.resolution.unresolved,
        }


@lru_cache(maxsize=1)
def tool_profiles() -> tuple[ToolProfile, ...]:
    profiles = []
    for tool in TOOLS.values():
        texts = [tool.description, *tool.examples]
        profiles.append(
            ToolProfile(
                name=tool.name,
                texts=texts,
                vectors=engine.embed_texts(texts),
                keywords=tool.keywords,
                kinds=tool.kinds,
                write=tool.write,
            )
        )
    return tuple(profiles)


def tenant_records(*, organization: Organization, question: str) -> dict[str, list[tuple[str, str]]]:
    """(alias, code) of the organisation's records the question could name. Master data whole; units and lots
    only where a word of the question equals their code (there may be millions)."""
    records: dict[str, list[tuple[str, str]]] = {}
    for kind, model in (("asset", Asset), ("machine", Machine)):
        rows = model.objects.filter(organization=organization).values_list("code", "name")
        records[kind] = [(code, code) for code, _ in rows] + [(name, code) for code, name in rows if name]
    records["order"] = [(c, c) for c in Order.objects.filter(organization=organization).values_list("code", flat=True)]
    records["product"] = [
        (c, c) for c in Product.objects.filter(organization=organization).values_list("code", flat=True)
    ]
    records["defect"] = [
        (c, c) for c in DefectCode.objects.filter(organization=organization).values_list("code", flat=True)
    ]
    words = sorted({w.upper() for w in tokens(question) if looks_like_code(w)})
    if words:
        records["unit"] = [
            (s, s)
            for s in Unit.objects.filter(organization=organization)
            .annotate(u=Upper("serial"))
            .filter(u__in=words)
            .values_list("serial", flat=True)
        ]
        records["lot"] = [
            (c, c)
            for c in Lot.objects.filter(organization=organization)
            .annotate(u=Upper("code"))
            .filter(u__in=words)
            .values_list("code", flat=True)
        ]
    return records


def tool_choose(*, organization: Organization, question: str, model: str | None = None) -> Choice:
    """The tool for the user's question, or a refusal that says why none: the model's choice where its base model
    can call tools and it made a valid one, else retrieval's."""
    choice = retrieval_choose(organization=organization, question=question)
    model = model or copilot_model()
    base = model_base_resolve(organization_id=str(organization.pk), model=model)
    if base is None or not base.can_choose_tools:
        return choice
    return model_choose(organization=organization, question=question, model=model, fallback=choice)


def tool_spec(tool: Tool) -> dict:
    """The tool as OpenAI's `tools` entry."""
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def model_choose(*, organization: Organization, question: str, model: str, fallback: Choice) -> Choice:
    """Ask the model to choose among the tools the message may use; `fallback` (retrieval's) unless it made a valid
    call. Only the user's message is sent."""
    imperative = has_imperative(question, IMPERATIVES)
    offered = {name: tool for name, tool in TOOLS.items() if imperative or not tool.write}
    try:
        call = model_tool_call(
            organization=organization, model=model, question=question, tools=[tool_spec(t) for t in offered.values()]
        )
    except ProseUnavailable as exc:
        logger.info("Copilot tool choice by the model unavailable: %s", exc)
        return replace(fallback, model={"model": model, "fallback": f"gateway: {exc}"[:300]})
    checked = model_call_check(call, offered)
    if isinstance(checked, str):
        return replace(fallback, model={"model": model, "call": call, "fallback": checked})
    tool, arguments = checked
    asked = {"model": model, "call": {"name": tool.name, "arguments": arguments}}
    refusal = unresolved_refusal(tool, fallback.resolution)
    return Choice(tool, fallback.resolution, fallback.scores, refusal=refusal, source="model", model=asked)


def model_call_check(call: dict | None, offered: dict[str, Tool]) -> tuple[Tool, dict] | str:
    """The offered tool and its parsed arguments when the model's call is usable, else why not."""
    if call is None:
        return "no tool call"
    tool = offered.get(str(call.get("name")))
    if tool is None:
        return f"not an offered tool: {str(call.get('name'))[:64]}"
    try:
        raw = call.get("arguments")
        arguments = json.loads(raw) if isinstance(raw, str) else raw
        jsonschema.validate(arguments, tool.parameters)
    except (ValueError, jsonschema.ValidationError) as exc:
        return f"invalid arguments: {str(exc)[:200]}"
    if not isinstance(arguments, dict):
        return "invalid arguments: not a JSON object"
    return tool, arguments


def unresolved_refusal(tool: Tool, resolution: Resolution) -> str:
    """Why the tool cannot answer: the question names a code that is none of the tenant's records of its kinds."""
    if tool.kinds and resolution.unresolved and not any(resolution.matches.get(k) for k in tool.kinds):
        kinds = " or ".join(dict.fromkeys(KIND_LABELS[k] for k in tool.kinds))
        names = ", ".join(resolution.unresolved)
        return f"I found no {kinds} named {names} in your organisation's records, so I cannot answer."
    return ""


def retrieval_choose(*, organization: Organization, question: str) -> Choice:
    """Tool choice without the model (see `engine.choosing`)."""
    resolution = resolve_codes(
        question, tenant_records(organization=organization, question=question), fuzzy_kinds=FUZZY_KINDS
    )
    vector = engine.embed_texts([question])[0]
    scores = score_tools(question, vector, tool_profiles(), resolution)
    imperative = has_imperative(question, IMPERATIVES)
    allowed = [s for s in scores if imperative or not TOOLS[s.name].write]
    if imperative and allowed:
        writes = [s for s in allowed if TOOLS[s.name].write]
        if writes and writes[0].score >= allowed[0].score - WRITE_MARGIN:
            allowed = [writes[0], *[s for s in allowed if s is not writes[0]]]
    # A keyword phrase of the tool in the question (how Korean and German are recognised) lets it through
    # below the semantic threshold; an unrelated question has neither.
    if not allowed or (allowed[0].score < MIN_SCORE and allowed[0].keyword == 0):
        return Choice(
            None,
            resolution,
            scores,
            refusal="I cannot answer that from your factory's data: none of my tools covers this question.",
        )
    tool = TOOLS[allowed[0].name]
    return Choice(tool, resolution, scores, refusal=unresolved_refusal(tool, resolution))
