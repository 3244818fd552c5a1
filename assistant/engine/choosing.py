"""Choosing a tool without the model: retrieval over the tools' descriptions and example questions, and the
tenant's own codes resolved from the question. Pure Python (numpy), no Django.

A small model (the bundled SmolLM2-135M) cannot choose tools reliably, so the copilot does not ask it to:
- each tool is scored by the best cosine similarity between the question's embedding and its description's and
  example questions' embeddings (MiniLM, English), plus a lexical part: the question's words the tool's vocabulary
  shares, weighted by how few tools use them (IDF), and whole keyword phrases found in the question (how Korean and
  German questions are matched: the embedding model is English-only);
- codes (assets, machines, orders, products, defect codes, units) are resolved from the question by exact match
  of normalised n-grams ("press 4" and "Press-4" both normalise to "press4") or by a fuzzy match that keeps the
  digits (a typo in the letters is tolerated, "PRESS-5" never stands for "PRESS-4"); a tool whose records were
  named gets a bonus;
- a write tool needs an imperative in the question ("Open ...", "Start ...", "re-plan", "best plan", ...): without
  one, the best read tool answers, so "which work orders are open?" reads and "open a work order" proposes; with
  one, the best write tool wins when it scores within WRITE_MARGIN of the best tool (an imperative question about
  a defect reads much like the question about its analysis).
"""

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np
import numpy.typing as npt

LEXICAL_WEIGHT = 0.25
KEYWORD_WEIGHT = 0.3
ENTITY_BONUS = 0.12
FUZZY_MIN_RATIO = 0.8
MAX_NGRAM = 3
WRITE_MARGIN = 0.15

_TOKEN = re.compile(r"[\w][\w\-./#]*", re.UNICODE)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "show",
        "tell",
        "that",
        "the",
        "their",
        "there",
        "this",
        "to",
        "us",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


_SCRIPT_BOUNDARY = re.compile(r"(?<=[A-Za-z0-9])(?=[^\x00-\x7f\s])|(?<=[^\x00-\x7f\s])(?=[A-Za-z0-9])")


def split_scripts(text: str) -> str:
    """NFKC, and a space where Latin letters or digits meet another script: 'PRESS-4의' (a Korean particle on a
    code) reads as 'PRESS-4 의'."""
    return _SCRIPT_BOUNDARY.sub(" ", unicodedata.normalize("NFKC", text))


def normalise_code(text: str) -> str:
    """Lower case, letters and digits only (NFKC first): 'Press-4', 'PRESS 4' and 'press4' are one code."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def tokens(text: str) -> list[str]:
    return [t.casefold().strip("-./#") for t in _TOKEN.findall(split_scripts(text))]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def looks_like_code(token: str) -> bool:
    """A token that names a record rather than a word: letters and digits together (CNC-2, ORD1001, HX-4471-B)."""
    has_digit = any(ch.isdigit() for ch in token)
    has_alpha = any(ch.isalpha() for ch in token)
    return has_digit and (has_alpha or "-" in token) and len(normalise_code(token)) >= 2


@dataclass(frozen=True)
class CodeMatch:
    kind: str
    code: str  # as the record spells it
    said: str  # the words of the question it was read from
    exact: bool
    score: float


@dataclass
class Resolution:
    matches: dict[str, list[CodeMatch]] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)  # code-like words that name nothing of the tenant's

    def codes(self, kind: str) -> list[str]:
        return [m.code for m in self.matches.get(kind, [])]

    def first(self, kind: str) -> str | None:
        found = self.matches.get(kind)
        return found[0].code if found else None


def _ngrams(words: Sequence[str]) -> list[tuple[str, int, int]]:
    """(normalised text, start, end) for every run of 1..MAX_NGRAM consecutive words, longest first."""
    grams = []
    for size in range(MAX_NGRAM, 0, -1):
        for start in range(0, len(words) - size + 1):
            grams.append((normalise_code("".join(words[start : start + size])), start, start + size))
    return [g for g in grams if g[0]]


def resolve_codes(
    question: str, records: Mapping[str, Iterable[tuple[str, str]]], *, fuzzy_kinds: Iterable[str] = ()
) -> Resolution:
    """Which of the tenant's records the question names. `records` maps a kind ('asset', 'machine', ...) to
    (alias, code) pairs: the code itself and, say, the record's name ('Press 4' for PRESS-4). Only kinds in
    `fuzzy_kinds` are matched fuzzily (small master data, not thousands of unit serials)."""
    words = _TOKEN.findall(split_scripts(question))
    index: dict[str, list[tuple[str, str]]] = {}
    fuzzy_pool: list[tuple[str, str, str]] = []
    fuzzy_set = set(fuzzy_kinds)
    for kind, codes in records.items():
        for alias, code in codes:
            key = normalise_code(alias)
            if not key:
                continue
            index.setdefault(key, []).append((kind, code))
            if kind in fuzzy_set:
                fuzzy_pool.append((kind, code, key))
    resolution = Resolution()
    used: set[int] = set()
    seen: set[tuple[str, str]] = set()

    def add(match: CodeMatch, start: int, end: int) -> None:
        used.update(range(start, end))
        if (match.kind, match.code) not in seen:
            seen.add((match.kind, match.code))
            resolution.matches.setdefault(match.kind, []).append(match)

    for gram, start, end in _ngrams(words):
        if used.intersection(range(start, end)):
            continue
        said = " ".join(words[start:end])
        if gram in index and (any(ch.isdigit() for ch in gram) or len(gram) >= 3):
            for kind, code in index[gram]:
                add(CodeMatch(kind, code, said, True, 1.0), start, end)
            continue
        digits = _digits(gram)
        if not digits or len(gram) < 3:
            continue
        best: tuple[float, str, str] | None = None
        for kind, code, key in fuzzy_pool:
            if _digits(key) != digits:
                continue
            ratio = SequenceMatcher(None, gram, key).ratio()
            if ratio >= FUZZY_MIN_RATIO and (best is None or ratio > best[0]):
                best = (ratio, kind, code)
        if best is not None:
            add(CodeMatch(best[1], best[2], said, False, best[0]), start, end)
    for position, word in enumerate(words):
        if position not in used and looks_like_code(word):
            resolution.unresolved.append(word)
    return resolution


@dataclass(frozen=True)
class ToolProfile:
    """What the chooser knows of a tool: its words and its example questions' embeddings."""

    name: str
    texts: Sequence[str]  # the description and the example questions
    vectors: npt.NDArray[np.float32]  # one unit-length row per text
    keywords: Sequence[str] = ()  # phrases that point at the tool in any language
    kinds: Sequence[str] = ()  # the record kinds it answers about
    write: bool = False


@dataclass(frozen=True)
class ToolScore:
    name: str
    score: float
    semantic: float
    lexical: float
    keyword: float
    entity: float


def _vocabulary(profile: ToolProfile) -> set[str]:
    words = {t for text in profile.texts for t in tokens(text)}
    words.update(t for phrase in profile.keywords for t in tokens(phrase))
    return {w for w in words if w not in _STOP and not any(ch.isdigit() for ch in w)}


def score_tools(
    question: str,
    question_vector: npt.NDArray[np.float32],
    profiles: Sequence[ToolProfile],
    resolution: Resolution,
) -> list[ToolScore]:
    """Every tool's score for the question, best first."""
    vocabularies = [_vocabulary(p) for p in profiles]
    document_frequency: dict[str, int] = {}
    for vocabulary in vocabularies:
        for word in vocabulary:
            document_frequency[word] = document_frequency.get(word, 0) + 1
    words = [w for w in dict.fromkeys(tokens(question)) if w not in _STOP and not looks_like_code(w)]
    idf = {w: math.log(1 + len(profiles) / document_frequency[w]) for w in words if w in document_frequency}
    total_idf = sum(idf.values()) or 1.0
    folded = unicodedata.normalize("NFKC", question).casefold()
    scores = []
    for profile, vocabulary in zip(profiles, vocabularies, strict=True):
        semantic = float(np.max(profile.vectors @ question_vector)) if len(profile.vectors) else 0.0
        lexical = sum(weight for word, weight in idf.items() if word in vocabulary) / total_idf
        hits = sum(1 for phrase in profile.keywords if _keyword_in(phrase.casefold(), folded))
        keyword = min(1.0, 0.5 * hits)
        entity = ENTITY_BONUS if any(resolution.matches.get(kind) for kind in profile.kinds) else 0.0
        total = semantic + LEXICAL_WEIGHT * lexical + KEYWORD_WEIGHT * keyword + entity
        scores.append(ToolScore(profile.name, total, semantic, lexical, keyword, entity))
    scores.sort(key=lambda s: (-s.score, s.name))
    return scores


_POLITE = frozenset({"please", "can", "could", "would", "will", "you", "kindly", "now", "then", "and"})


def _keyword_in(phrase: str, folded: str) -> bool:
    """A keyword found in the question: at the start of a word for Latin script ('anomal' finds 'anomalies', 'part'
    does not find 'department'), anywhere for scripts without spaces between words."""
    if not phrase.isascii():
        return phrase in folded
    return re.search(r"(?<![\w])" + re.escape(phrase), folded) is not None


def has_imperative(question: str, imperatives: Iterable[str]) -> bool:
    """Whether the question asks for a change. A phrase of several words, or in a script without spaces between
    words, counts anywhere ("best plan", "재계획"); a single English word only as the sentence's first word after
    courtesies ("Please open a work order", not "Which work orders are open?")."""
    folded = split_scripts(question).casefold()
    words = tokens(question)
    while words and words[0] in _POLITE:
        words = words[1:]
    first = words[0] if words else ""
    for phrase in imperatives:
        phrase = phrase.casefold()
        if " " in phrase or not phrase.isascii():
            if phrase in folded:
                return True
        elif phrase == first:
            return True
    return False
