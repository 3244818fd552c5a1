"""Extractive question-answer pairs for fine-tuning the tenant's model on its own factory (pure Python).

Two sources, and every answer is grounded in one of them:

- **Passages** of the tenant's documents. A sentence that states a fact (a figure with a unit, an identifier such as
  `HX-4471-B`, or a definition "X is / must be / should be Y") becomes the answer, verbatim: its character span
  in the passage is kept, so a reviewer sees exactly where it came from and `passage[start:end] == answer` holds
  for every generated pair. The question is made from the sentence's subject ("What is the torque of the X9
  spindle?") or, failing that, from the section heading ("What does the Press 4 manual say about lubrication?").
- **Records** (assets, machines, products): their lasting facts (names, types, sites, routings; not health or
  figures that change by the hour, which the copilot reads through its tools), one pair per field that holds a
  value, answered with a sentence built only from the record's own fields ("Asset P-4 is of type PRESS-200."), so
  every figure and identifier in an answer is one the record holds.

Nothing here invents: a sentence without a recognisable fact is skipped rather than paraphrased. English patterns
only; passages in other languages still yield their section questions.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# A sentence ends at . ! ? (or a line break) followed by space; keeps abbreviations like "e.g." mostly intact.
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?](?=\s|$)|\n|$)")
# A figure with a unit, or a code with letters and digits joined by dashes (part numbers, asset codes).
_FIGURE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s?(?:%|°C|°F|mm|cm|m|km|µm|um|kg|g|t|N|Nm|N·m|kN|bar|psi|Pa|kPa|MPa|V|A|W|kW|Hz|rpm|"
    r"s|sec|min|h|hours|days|weeks|months|years|l|L|ml|cycles)\b"
)
_CODE = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]+(?:-[A-Z0-9]+)+\b")
_DEFINITION = re.compile(
    r"^(?P<subject>(?:the |a |an |each |every )?[\w\s/()'\u2019-]{3,80}?)\s+"
    r"(?P<verb>is|are|must be|should be|shall be|has|have|needs|requires|takes|lasts)\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
_QUESTION_FOR_VERB = {
    "is": "What is {s}?",
    "are": "What are {s}?",
    "must be": "What must {s} be?",
    "should be": "What should {s} be?",
    "shall be": "What shall {s} be?",
    "has": "What does {s} have?",
    "have": "What do {s} have?",
    "needs": "What does {s} need?",
    "requires": "What does {s} require?",
    "takes": "How long does {s} take?",
    "lasts": "How long does {s} last?",
}
MIN_ANSWER_CHARS = 12
MAX_ANSWER_CHARS = 400


@dataclass(frozen=True)
class PassageSource:
    """One passage of a document, with where it sits (for the question's wording)."""

    text: str
    document_title: str
    section: str = ""
    page: int | None = None


@dataclass(frozen=True)
class RecordSource:
    """One record of the tenant's master data: its kind (asset, machine, product), code and named fields."""

    kind: str
    code: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QaCandidate:
    question: str
    answer: str
    # For a passage: the answer's span in the passage's text. For a record: None (the answer is built from fields).
    answer_start: int | None = None
    answer_end: int | None = None
    # The record field(s) the answer states, for records.
    fields: tuple[str, ...] = ()


def _sentences(text: str) -> Iterable[tuple[int, int]]:
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end - start >= MIN_ANSWER_CHARS:
            yield start, end


def _subject_question(sentence: str) -> str | None:
    match = _DEFINITION.match(sentence.rstrip(".!? "))
    if not match:
        return None
    subject = " ".join(match["subject"].split())
    if subject.split()[0].lower() in {"it", "this", "that", "these", "those", "they", "there", "which", "he", "she"}:
        return None  # a pronoun: the sentence does not stand on its own
    words = subject.split()
    # A name ("Press 4", "CNC-2 Spindle") keeps its capitals; a sentence's first word ("Hydraulic pressure") not.
    named = any(any(c.isdigit() for c in w) or (w.isupper() and len(w) > 1) for w in words) or (
        len(words) > 1 and words[1][0].isupper()
    )
    if not named:
        subject = subject[0].lower() + subject[1:]
    return _QUESTION_FOR_VERB[match["verb"].lower()].format(s=subject)


def _is_fact(sentence: str) -> bool:
    return bool(_FIGURE.search(sentence) or _CODE.search(sentence) or _DEFINITION.match(sentence))


def passage_pairs(source: PassageSource, *, max_pairs: int = 4) -> list[QaCandidate]:
    """Up to `max_pairs` extractive pairs from one passage; each answer is `source.text[answer_start:answer_end]`."""
    pairs: list[QaCandidate] = []
    seen: set[str] = set()
    where = source.section or "this"
    for start, end in _sentences(source.text):
        if len(pairs) >= max_pairs:
            break
        sentence = source.text[start:end]
        if len(sentence) > MAX_ANSWER_CHARS or not _is_fact(sentence):
            continue
        question = _subject_question(sentence)
        if question is None:
            question = f"What does {source.document_title} say about {where}?"
        if question in seen:
            continue
        seen.add(question)
        pairs.append(QaCandidate(question=question, answer=sentence, answer_start=start, answer_end=end))
    return pairs


# Per record kind: (field, question template, answer template). {code} and {value} are the record's own values.
_RECORD_TEMPLATES: dict[str, list[tuple[str, str, str]]] = {
    "asset": [
        ("name", "What is asset {code}?", "Asset {code} is {value}."),
        ("type", "Which asset type is {code}?", "Asset {code} is of type {value}."),
        ("site", "Where is asset {code}?", "Asset {code} is at {value}."),
    ],
    "machine": [
        ("name", "What is machine {code}?", "Machine {code} is {value}."),
        ("timezone", "Which time zone does machine {code} run in?", "Machine {code} runs in {value}."),
        (
            "running_kw",
            "How much power does machine {code} draw when running?",
            "Machine {code} draws {value} kW running.",
        ),
        ("idle_kw", "How much power does machine {code} draw when idle?", "Machine {code} draws {value} kW idle."),
    ],
    "product": [
        ("name", "What is product {code}?", "Product {code} is {value}."),
        ("family", "Which family does product {code} belong to?", "Product {code} belongs to family {value}."),
        ("operations", "Which operations make product {code}?", "Product {code} is made by: {value}."),
    ],
}


def record_pairs(source: RecordSource) -> list[QaCandidate]:
    """One pair per field of the record that holds a value; the answer states that value and the code verbatim."""
    pairs = []
    for name, question, answer in _RECORD_TEMPLATES.get(source.kind, []):
        value = (source.fields.get(name) or "").strip()
        if not value:
            continue
        pairs.append(
            QaCandidate(
                question=question.format(code=source.code),
                answer=answer.format(code=source.code, value=value),
                fields=(name,),
            )
        )
    return pairs


def chat_example(*, system_prompt: str, question: str, answer: str) -> dict[str, list[dict[str, str]]]:
    """One training example in OpenAI's chat fine-tuning format."""
    return {
        "messages": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }
