"""Blocks to passages for retrieval and citation.

The document's text is its blocks joined by blank lines (`document_text`); every passage is a contiguous span
of it (`char_start`, `char_end`), so `text[char_start:char_end]` is the passage and a citation can point into the
stored text. A passage never crosses a PDF page or a section heading. Within one page or section, passages hold
about `target_words` words (never more than `max_words`), end at a paragraph boundary where one falls between
`min_words` and `max_words`, and the next passage starts `overlap_words` words before the previous one ended, so
a sentence cut at a boundary is whole in one of the two.
"""

import re
from dataclasses import dataclass

from .parsing import Block, ParsedDocument

SEPARATOR = "\n\n"
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class SplitSettings:
    target_words: int = 220
    min_words: int = 120
    max_words: int = 320
    overlap_words: int = 40

    def __post_init__(self) -> None:
        if not 0 < self.min_words <= self.target_words <= self.max_words:
            raise ValueError("Need 0 < min_words <= target_words <= max_words.")
        if not 0 <= self.overlap_words < self.min_words:
            raise ValueError("Need 0 <= overlap_words < min_words.")


@dataclass(frozen=True)
class PassageSpan:
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    section: str
    word_count: int


def document_text(parsed: ParsedDocument) -> tuple[str, tuple[int, ...]]:
    """The full text and the offset at which each block starts in it."""
    starts: list[int] = []
    position = 0
    for block in parsed.blocks:
        starts.append(position)
        position += len(block.text) + len(SEPARATOR)
    return SEPARATOR.join(block.text for block in parsed.blocks), tuple(starts)


def _units(blocks: tuple[Block, ...], starts: tuple[int, ...]) -> list[list[tuple[Block, int]]]:
    """Runs of consecutive blocks on the same page under the same heading."""
    units: list[list[tuple[Block, int]]] = []
    for block, start in zip(blocks, starts, strict=True):
        if units and (units[-1][-1][0].page, units[-1][-1][0].heading) == (block.page, block.heading):
            units[-1].append((block, start))
        else:
            units.append([(block, start)])
    return units


def split_passages(parsed: ParsedDocument, settings: SplitSettings | None = None) -> tuple[str, list[PassageSpan]]:
    """The document's text and its passages, in reading order."""
    settings = settings or SplitSettings()
    text, starts = document_text(parsed)
    passages: list[PassageSpan] = []
    for unit in _units(parsed.blocks, starts):
        words: list[tuple[int, int]] = []  # (start, end) offsets in `text`
        boundaries: set[int] = set()  # word counts at which a paragraph ends
        for block, offset in unit:
            words.extend((offset + m.start(), offset + m.end()) for m in _WORD.finditer(block.text))
            boundaries.add(len(words))
        if not words:
            continue
        first = unit[0][0]
        for begin, end in _windows(len(words), boundaries, settings):
            char_start, char_end = words[begin][0], words[end - 1][1]
            passages.append(
                PassageSpan(
                    ordinal=len(passages),
                    text=text[char_start:char_end],
                    char_start=char_start,
                    char_end=char_end,
                    page=first.page,
                    section=first.heading,
                    word_count=end - begin,
                )
            )
    return text, passages


def _windows(count: int, boundaries: set[int], settings: SplitSettings) -> list[tuple[int, int]]:
    windows: list[tuple[int, int]] = []
    begin = 0
    while True:
        if count - begin <= settings.max_words:
            end = count
        else:
            low, high = begin + settings.min_words, begin + settings.max_words
            aim = begin + settings.target_words
            candidates = [b for b in boundaries if low <= b <= high]
            end = min(candidates, key=lambda b: (abs(b - aim), b)) if candidates else aim
        windows.append((begin, end))
        if end >= count:
            return windows
        begin = max(end - settings.overlap_words, begin + 1)
