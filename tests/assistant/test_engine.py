"""The pure document engine: every format parses with its pages or sections, passages keep exact offsets, the
fusion ranks as the formula says, and unreadable files are refused with a reason."""

import itertools

import pytest

from assistant.engine import (
    DocumentUnreadable,
    SplitSettings,
    embed_texts,
    parse_document,
    reciprocal_rank_fusion,
    split_passages,
)
from tests.assistant.documents import SECTIONS, docx_bytes, markdown_bytes, pdf_bytes


def test_pdf_keeps_pages():
    parsed = parse_document(pdf_bytes(["Page one about pumps.", "Page two about HX-4471-B."]), "manual.pdf")
    assert parsed.format == "pdf"
    assert parsed.page_count == 2
    assert [b.page for b in parsed.blocks] == [1, 2]
    _, passages = split_passages(parsed)
    assert [p.page for p in passages] == [1, 2]
    assert "HX-4471-B" in passages[1].text


def test_markdown_sections_and_offsets():
    parsed = parse_document(markdown_bytes(), "manual.md")
    assert parsed.title == "Press 4 maintenance manual"
    text, passages = split_passages(parsed)
    assert [p.section for p in passages] == ["Press 4 maintenance manual", *[h for h, _ in SECTIONS]]
    for passage in passages:
        assert text[passage.char_start : passage.char_end] == passage.text
    spare = next(p for p in passages if p.section == "Spare parts")
    assert "HX-4471-B" in spare.text


def test_docx_headings_become_sections():
    parsed = parse_document(docx_bytes([(h, [t]) for h, t in SECTIONS], title="Press 4"), "manual.docx")
    assert parsed.format == "docx"
    _, passages = split_passages(parsed)
    assert {p.section for p in passages} >= {h for h, _ in SECTIONS}
    assert any("lockout" in p.text and p.section == "Electrical cabinet" for p in passages)


def test_plain_text_korean_and_german():
    data = "프레스 4호기 유압유는 2000시간마다 교체합니다.\n\nDas Hydrauliköl alle 2000 Stunden wechseln.".encode()
    parsed = parse_document(data, "notes.txt")
    _, passages = split_passages(parsed)
    assert len(passages) == 1 and "유압유" in passages[0].text and "Hydrauliköl" in passages[0].text


def test_long_sections_split_with_overlap_within_bounds():
    words = [f"w{i}" for i in range(1000)]
    paragraphs = [" ".join(words[i : i + 50]) for i in range(0, 1000, 50)]
    parsed = parse_document(("# Long\n\n" + "\n\n".join(paragraphs)).encode(), "long.md")
    settings = SplitSettings()
    text, passages = split_passages(parsed, settings)
    assert len(passages) >= 4
    for passage in passages:
        assert passage.word_count <= settings.max_words
        assert text[passage.char_start : passage.char_end] == passage.text
    for earlier, later in itertools.pairwise(passages):
        assert later.char_start < earlier.char_end  # overlap
    assert "w999" in passages[-1].text and "w0 " in passages[0].text + " "


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.txt", "empty"),
        (b"\x00\x01\x02binary", "blob.txt", "binary"),
        (b"caf\xe9\nna\xefve", "latin.md", "Line 1"),
        (b"not a pdf at all", "fake.pdf", "not a PDF"),
        (b"%PDF-1.4\ngarbage without objects", "broken.pdf", "PDF"),
        (b"plain bytes", "fake.docx", "not a Word"),
        (b"hello", "image.png", "Unsupported"),
        (b"   \n\n  \n", "blank.md", "no text"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(data, name, message):
    with pytest.raises(DocumentUnreadable, match=message):
        parse_document(data, name)


def test_blank_pdf_pages_are_refused():
    with pytest.raises(DocumentUnreadable, match="no text"):
        parse_document(pdf_bytes(["", ""]), "scan.pdf")


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion({"vector": ["a", "b", "c"], "text": ["c", "a"]}, k=60)
    assert [h.key for h in fused] == ["a", "c", "b"]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].ranks == {"vector": 3, "text": 1}


def test_embeddings_are_unit_length_and_semantic():
    vectors = embed_texts(["How often is the oil renewed?", SECTIONS[0][1], SECTIONS[2][1]])
    assert vectors.shape == (3, 384)
    assert abs(float((vectors**2).sum(axis=1).max()) - 1.0) < 1e-4
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
