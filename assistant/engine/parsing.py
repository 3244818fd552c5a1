"""Uploaded bytes to text blocks: one block per PDF page, per Markdown/Word paragraph under its heading, per plain
text paragraph. Every block knows its page (PDF) or section heading (the others).

Anything that cannot be read, or holds no text, raises `DocumentUnreadable` with a message for the uploader.
"""

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Literal

Format = Literal["pdf", "markdown", "text", "docx"]

SUPPORTED_SUFFIXES: dict[str, Format] = {
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".docx": "docx",
}

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_BLANK = re.compile(r"\n\s*\n")


class DocumentUnreadable(ValueError):
    """The file cannot be turned into text; the message says why, for the person who uploaded it."""


@dataclass(frozen=True)
class Block:
    """A paragraph (or a PDF page) of text, with the page it is on (PDF, 1-based) or the heading it sits under."""

    text: str
    page: int | None = None
    heading: str = ""


@dataclass(frozen=True)
class ParsedDocument:
    format: Format
    blocks: tuple[Block, ...]
    page_count: int | None = None
    title: str = ""


def format_for(filename: str) -> Format:
    lowered = filename.lower()
    for suffix, fmt in SUPPORTED_SUFFIXES.items():
        if lowered.endswith(suffix):
            return fmt
    allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
    raise DocumentUnreadable(f"Unsupported file type {filename!r}: upload one of {allowed}.")


def parse_document(data: bytes, filename: str) -> ParsedDocument:
    fmt = format_for(filename)
    if not data:
        raise DocumentUnreadable("The file is empty.")
    if fmt == "pdf":
        parsed = _parse_pdf(data)
    elif fmt == "docx":
        parsed = _parse_docx(data)
    elif fmt == "markdown":
        parsed = _parse_markdown(_decode(data))
    else:
        parsed = _parse_text(_decode(data))
    if not any(block.text.strip() for block in parsed.blocks):
        hint = " (a scanned PDF needs OCR first)" if fmt == "pdf" else ""
        raise DocumentUnreadable(f"The file holds no text{hint}.")
    return parsed


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentUnreadable("The file is binary, not text.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DocumentUnreadable(f"Line {line}: the text is not valid UTF-8.") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _BLANK.split(text) if p.strip()]


def _parse_text(text: str) -> ParsedDocument:
    return ParsedDocument(format="text", blocks=tuple(Block(text=p) for p in _paragraphs(text)))


def _parse_markdown(text: str) -> ParsedDocument:
    """ATX headings (`#` to `######`) open sections; fenced code never does."""
    blocks: list[Block] = []
    heading = ""
    title = ""
    buffer: list[str] = []

    def flush() -> None:
        blocks.extend(Block(text=paragraph, heading=heading) for paragraph in _paragraphs("\n".join(buffer)))
        buffer.clear()

    in_fence = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            flush()
            heading = match.group(2).strip()
            title = title or heading
            blocks.append(Block(text=heading, heading=heading))
        else:
            buffer.append(line)
    flush()
    return ParsedDocument(format="markdown", blocks=tuple(blocks), title=title)


def _parse_pdf(data: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise DocumentUnreadable("The file is not a PDF (it does not start with %PDF-).")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentUnreadable("The PDF is encrypted; upload an unprotected copy.")
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata = reader.metadata
        title = str(metadata.title) if metadata is not None and metadata.title else ""
    except DocumentUnreadable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise DocumentUnreadable(f"The PDF cannot be read: {exc}.") from None
    blocks = tuple(
        Block(text=_normalise_page(text), page=number) for number, text in enumerate(pages, start=1) if text.strip()
    )
    return ParsedDocument(format="pdf", blocks=blocks, page_count=len(pages), title=title)


def _normalise_page(text: str) -> str:
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _parse_docx(data: bytes) -> ParsedDocument:
    import docx

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise DocumentUnreadable("The file is not a Word .docx document (not a ZIP package).")
    try:
        document = docx.Document(io.BytesIO(data))
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise DocumentUnreadable(f"The Word document cannot be read: {exc}.") from None
    except Exception as exc:  # python-docx raises its own PackageNotFoundError and lxml parse errors
        raise DocumentUnreadable(f"The Word document cannot be read: {exc}.") from None
    blocks: list[Block] = []
    heading = ""
    title = str(document.core_properties.title or "")
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = paragraph.style.name if paragraph.style is not None and paragraph.style.name else ""
        if style.startswith("Heading") or style == "Title":
            heading = text
            title = title or text
        blocks.append(Block(text=text, heading=heading))
    for table in document.tables:
        for row in table.rows:
            cells = " | ".join(cell.text.strip() for cell in row.cells if cell.text.strip())
            if cells:
                blocks.append(Block(text=cells, heading=heading))
    return ParsedDocument(format="docx", blocks=tuple(blocks), title=title)
