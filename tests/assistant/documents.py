"""Small documents in every supported format, built in the test (no fixture files, nothing from /work/shared)."""

import io


def pdf_bytes(pages: list[str]) -> bytes:
    """A minimal valid PDF: one Helvetica text line per line of each page's text, with a correct xref table."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(len(pages)).encode() + b" >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for page_id, text in zip(page_ids, pages, strict=True):
        lines = []
        for line in text.split("\n"):
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            lines.append(f"({escaped}) Tj T*")
        stream = ("BT /F1 10 Tf 12 TL 50 780 Td " + " ".join(lines) + " ET").encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_id + 1} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx_bytes(sections: list[tuple[str, list[str]]], *, title: str = "") -> bytes:
    import docx

    document = docx.Document()
    if title:
        document.add_heading(title, level=0)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# A press manual: each section on its own topic, so a paraphrased question has one right answer.
SECTIONS = [
    (
        "Hydraulic system",
        "Replace the hydraulic fluid every 2000 operating hours. Drain the reservoir completely, change the return "
        "filter and refill with ISO VG 46 through the breather port.",
    ),
    (
        "Electrical cabinet",
        "Before opening the electrical cabinet, apply lockout and tagout to the main isolator and verify that no "
        "voltage is present with a tested meter.",
    ),
    (
        "Conveyor",
        "Check the conveyor belt tension weekly. The belt should deflect about fifteen millimetres under thumb "
        "pressure at mid span.",
    ),
    (
        "Spare parts",
        "The ram guide bushing has the part number HX-4471-B. Keep two in stock; the supplier lead time is six weeks.",
    ),
    (
        "Shift handover",
        "At shift handover the operator records open alarms, counts of good and scrapped parts, and any "
        "tooling change in the log book.",
    ),
]


def markdown_bytes() -> bytes:
    parts = ["# Press 4 maintenance manual", ""]
    for heading, text in SECTIONS:
        parts += [f"## {heading}", "", text, ""]
    return "\n".join(parts).encode()
