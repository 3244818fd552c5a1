"""Tool choice without the model, against one organisation's records (see `engine.choosing` for the method).

The tools' descriptions and example questions are embedded once per process. The tenant's codes are read fresh
for every question, filtered by organisation: a code of another tenant resolves to nothing, so a question about
another tenant's asset finds nothing. Only the user's own message is ever scored: text from documents or tool
results never reaches tool choice, so it can never lead to a proposal.

A model that can call tools (a base-model capability the gateway records) would choose here instead; this module
is the path for models that cannot, and the one the copilot uses today.
"""

from dataclasses import dataclass
from functools import lru_cache

from django.db.models.functions import Upper

from automation.maintenance.models import Asset
from automation.quality.models import DefectCode, Lot, Unit
from automation.scheduling.models import Machine, Order, Product
from tenants.models import Organization

from . import engine
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
from .tools import IMPERATIVES, TOOLS, Tool

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

    def explain(self) -> dict:
        return {
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


def tool_choose(*, organization: Organization, question: str) -> Choice:
    """The tool for the user's question, or a refusal that says why none."""
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
    if tool.kinds and resolution.unresolved and not any(resolution.matches.get(k) for k in tool.kinds):
        kinds = " or ".join(dict.fromkeys(KIND_LABELS[k] for k in tool.kinds))
        names = ", ".join(resolution.unresolved)
        return Choice(
            tool,
            resolution,
            scores,
            refusal=f"I found no {kinds} named {names} in your organisation's records, so I cannot answer.",
        )
    return Choice(tool, resolution, scores)
