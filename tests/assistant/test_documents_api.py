"""The documents API end to end: uploads in every format through the API, the embedding job on a real worker
(default queue), hybrid search (semantic and lexical) restricted to the caller's organisation, and refusals
that store nothing."""

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from assistant.models import Document, Passage
from jobs.models import Job
from tests import builders
from tests.assistant.documents import SECTIONS, docx_bytes, markdown_bytes, pdf_bytes
from tests.workers import running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_worker(
        queues="default", name="assistant", log_path=tmp_path_factory.mktemp("worker") / "worker.log"
    ) as process:
        yield process


def _client(org):
    _, plaintext = builders.make_key(org)
    return builders.key_client(plaintext)


def _url(org, path: str = "") -> str:
    return f"/api/v1/orgs/{org.slug}/assistant/{path}"


def _upload(client, org, name: str, content: bytes, **extra):
    return client.post(_url(org, "documents"), {"file": SimpleUploadedFile(name, content), **extra}, format="multipart")


def _ready(client, org, document_id: str, timeout: float = 300) -> dict:
    def done():
        body = client.get(_url(org, f"documents/{document_id}")).json()
        return body if body["status"] in ("ready", "failed") else None

    body = wait_until(done, timeout=timeout, interval=0.5, what=f"document {document_id} embedded")
    assert body["status"] == "ready", body
    return body


def _stored_files(org) -> list[Path]:
    root = Path(default_storage.path("assistant")) / str(org.pk)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_formats_upload_embed_search_and_isolation(worker, org, other_org):
    client = _client(org)
    pdf = pdf_bytes([f"{h}\n{t}" for h, t in SECTIONS])
    uploads = {
        "manual.pdf": pdf,
        "manual.md": markdown_bytes(),
        "manual.docx": docx_bytes([(h, [t]) for h, t in SECTIONS], title="Press 4 manual"),
        "notes.txt": (
            "Die Hydraulikpumpe P-220 alle 500 Stunden prüfen.\n\n유압 펌프 P-220 점검 주기는 500시간입니다."
        ).encode(),
    }
    ids = {}
    for name, content in uploads.items():
        response = _upload(client, org, name, content, title=f"Doc {name}")
        assert response.status_code == 201, response.json()
        ids[name] = response.json()["id"]
        assert response.json()["passage_count"] >= 1
    pdf_doc = _ready(client, org, ids["manual.pdf"])
    assert pdf_doc["page_count"] == len(SECTIONS) and pdf_doc["passage_count"] == len(SECTIONS)
    for document_id in ids.values():
        body = _ready(client, org, document_id)
        assert body["embedded_count"] == body["passage_count"]
    # The job's result persisted: every passage has its embedding, the job succeeded with progress events.
    assert not Passage.objects.filter(organization=org, embedding__isnull=True).exists()
    job = Job.objects.get(id=pdf_doc["job"])
    assert job.status == Job.Status.SUCCEEDED and job.result["embedded"] == len(SECTIONS)
    assert job.events.filter(message__contains="passages embedded").exists()

    listing = client.get(_url(org, "documents")).json()
    assert {d["id"] for d in listing["results"]} == set(ids.values())
    passages = client.get(_url(org, f"documents/{ids['manual.pdf']}/passages")).json()["results"]
    assert [p["page"] for p in passages] == list(range(1, len(SECTIONS) + 1))
    original = client.get(_url(org, f"documents/{ids['manual.md']}/file"))
    assert b"".join(original.streaming_content) == markdown_bytes()

    # Semantic: no word in common with the passage, found by meaning.
    hits = client.get(_url(org, "search"), {"q": "how frequently must oil be renewed", "k": 5}).json()["results"]
    assert hits and "hydraulic fluid every 2000" in hits[0]["text"], hits
    assert hits[0]["vector_rank"] == 1 and hits[0]["text_rank"] is None
    assert hits[0]["citation_url"].endswith(f"/api/v1/orgs/{org.slug}/assistant/documents/{hits[0]['document_id']}")
    assert hits[0]["page"] is not None or hits[0]["section"] == "Hydraulic system"

    # Lexical: an exact part number, ranked first by full text, with page (PDF) or section (others) to cite.
    hits = client.get(_url(org, "search"), {"q": "HX-4471-B", "k": 4}).json()["results"]
    assert len(hits) == 4
    assert all(h["text_rank"] is not None and "HX-4471-B" in h["text"] for h in hits[:3]), hits
    cited = {(h["document_id"], h["page"], h["section"]) for h in hits[:3]}
    assert (ids["manual.pdf"], 4, "") in cited
    assert (ids["manual.md"], None, "Spare parts") in cited
    # Korean and German are indexed word by word ('simple' configuration).
    hits = client.get(_url(org, "search"), {"q": "점검 주기는", "k": 1}).json()["results"]
    assert hits[0]["document_id"] == ids["notes.txt"] and hits[0]["text_rank"] == 1
    hits = client.get(_url(org, "search"), {"q": "Hydraulikpumpe", "k": 1}).json()["results"]
    assert hits[0]["document_id"] == ids["notes.txt"] and hits[0]["text_rank"] == 1

    # Another tenant with the same words finds only its own passages, and never org's documents.
    other = _client(other_org)
    response = _upload(other, other_org, "theirs.md", b"# Spare parts\n\nThe HX-4471-B bushing is obsolete here.")
    assert response.status_code == 201
    theirs = _ready(other, other_org, response.json()["id"])
    for query in ("HX-4471-B", "how frequently must oil be renewed"):
        hits = other.get(_url(other_org, "search"), {"q": query, "k": 10}).json()["results"]
        assert {h["document_id"] for h in hits} == {theirs["id"]}
    assert other.get(_url(other_org, f"documents/{ids['manual.pdf']}")).status_code == 404
    assert other.get(_url(org, "search"), {"q": "HX-4471-B"}).status_code == 404

    # Delete removes the rows, the passages and the stored original.
    stored_before = len(_stored_files(org))
    assert client.delete(_url(org, f"documents/{ids['manual.md']}")).status_code == 204
    assert not Document.objects.filter(id=ids["manual.md"]).exists()
    assert not Passage.objects.filter(document_id=ids["manual.md"]).exists()
    assert len(_stored_files(org)) == stored_before - 1


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("broken.pdf", b"%PDF-1.4\nthis is not a pdf body", "unreadable_document"),
        ("empty.md", b"", "unreadable_document"),
        ("scan.pdf", pdf_bytes(["", ""]), "unreadable_document"),
        ("fake.docx", b"not a zip", "unreadable_document"),
        ("photo.png", b"\x89PNG....", "unreadable_document"),
    ],
)
def test_unreadable_files_are_refused_and_nothing_is_stored(org, name, content, code):
    response = _upload(_client(org), org, name, content)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert not Document.objects.filter(organization=org).exists()
    assert not Job.objects.filter(organization=org).exists()
    assert _stored_files(org) == []


def test_oversized_file_is_refused_with_413_and_nothing_is_stored(org, settings):
    settings.ASSISTANT_MAX_UPLOAD_BYTES = 1000
    response = _upload(_client(org), org, "big.txt", b"word " * 400)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert "1000" in response.json()["error"]["message"]
    assert not Document.objects.filter(organization=org).exists()
    assert _stored_files(org) == []


def test_viewer_cannot_upload_and_search_needs_a_question(org):
    viewer = builders.session_client(builders.add_member(org, "viewer"))
    response = _upload(viewer, org, "a.md", b"# A\n\ntext")
    assert response.status_code == 403
    response = _client(org).get(_url(org, "search"))
    assert response.status_code == 400 and "q" in response.json()["error"]["fields"]
