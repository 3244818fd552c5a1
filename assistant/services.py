"""Writes of the assistant's documents: upload (parse, split, store, queue embedding), embedding, delete.

An upload is all or nothing: the file is parsed and split before anything is stored, the rows are written in one
transaction, and the stored original is removed again if that transaction fails. Embedding runs as a job on the
default queue once the upload commits.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.contrib.postgres.search import SearchVector
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from rest_framework import status

from foundation.api.errors import ApiError
from jobs.runner import JobContext
from jobs.services import job_create
from tenants.actor import Actor
from tenants.audit import audit_record
from tenants.models import Organization

from . import engine
from .conf import EMBED_BATCH, EMBED_JOB_KIND, max_upload_bytes
from .models import Document, Passage

logger = logging.getLogger(__name__)


class DocumentRejected(ApiError):
    """An upload refused with a message for the uploader (400, or 413 when too large)."""


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes
    content_type: str = ""


def _safe_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "document"
    cleaned = "".join(c if c.isalnum() or c in "._- " else "_" for c in base)
    return cleaned[-200:]


def document_upload(*, organization: Organization, upload: Upload, title: str = "", actor: Actor) -> Document:
    limit = max_upload_bytes()
    if len(upload.content) > limit:
        raise DocumentRejected(
            f"The file is {len(upload.content)} bytes; the limit is {limit} bytes.",
            code="file_too_large",
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    filename = _safe_filename(upload.filename)
    try:
        parsed = engine.parse_document(upload.content, filename)
    except engine.DocumentUnreadable as exc:
        raise DocumentRejected(str(exc), code="unreadable_document") from None
    text, spans = engine.split_passages(parsed)
    if not spans:
        raise DocumentRejected("The file holds no text.", code="unreadable_document")
    document = Document(
        organization=organization,
        title=(title.strip() or parsed.title.strip() or filename)[:300],
        filename=filename,
        format=parsed.format,
        content_type=upload.content_type[:120],
        size_bytes=len(upload.content),
        sha256=hashlib.sha256(upload.content).hexdigest(),
        text=text,
        page_count=parsed.page_count,
        passage_count=len(spans),
        embedding_model=engine.EMBEDDING_MODEL_NAME,
        uploaded_by_label=actor.label,
    )
    stored_name = ""
    try:
        with transaction.atomic():
            document.file.save(filename, ContentFile(upload.content), save=False)
            stored_name = document.file.name or ""
            document.save()
            Passage.objects.bulk_create(
                Passage(
                    organization=organization,
                    document=document,
                    ordinal=span.ordinal,
                    text=span.text,
                    page=span.page,
                    section=span.section[:500],
                    char_start=span.char_start,
                    char_end=span.char_end,
                    word_count=span.word_count,
                )
                for span in spans
            )
            Passage.objects.filter(document=document).update(search_vector=SearchVector("text", config="simple"))
            job = job_create(
                organization=organization,
                kind=EMBED_JOB_KIND,
                params={"document_id": str(document.id)},
                actor=actor,
            )
            document.job = job
            document.save(update_fields=["job", "updated_at"])
            audit_record(
                action="assistant.document.upload",
                target=document,
                metadata={"filename": filename, "size_bytes": document.size_bytes, "passages": len(spans)},
                **actor.audit_kwargs(),
            )
    except BaseException:
        if stored_name:
            default_storage.delete(stored_name)
        raise
    return document


def document_delete(*, document: Document, actor: Actor) -> None:
    name = document.file.name
    with transaction.atomic():
        audit_record(
            action="assistant.document.delete",
            target=document,
            metadata={"title": document.title, "filename": document.filename},
            **actor.audit_kwargs(),
        )
        document.delete()
        if name:
            transaction.on_commit(lambda: default_storage.delete(name))


def document_embed(ctx: JobContext) -> dict:
    """The embedding job: embeds the document's passages that have no embedding yet, in batches, reporting
    progress; a re-run after a lost worker continues where the last committed batch ended."""
    document_id = ctx.params["document_id"]
    document = Document.objects.filter(id=document_id, organization_id=ctx.organization_id).first()
    if document is None:
        ctx.event("The document was deleted before it was embedded.")
        return {"document_id": document_id, "embedded": 0, "deleted": True}
    try:
        pending = list(
            Passage.objects.filter(document=document, embedding__isnull=True)
            .order_by("ordinal")
            .values_list("id", "section", "text")
        )
        total = document.passage_count or len(pending)
        done = total - len(pending)
        ctx.event(f"Embedding {len(pending)} of {total} passages with {engine.EMBEDDING_MODEL_NAME}.")
        for start in range(0, len(pending), EMBED_BATCH):
            ctx.raise_if_cancelled({"document_id": document_id, "embedded": done})
            batch = pending[start : start + EMBED_BATCH]
            vectors = engine.embed_texts(
                [_embedding_input(document.title, section, text) for _, section, text in batch]
            )
            with transaction.atomic():
                for (passage_id, _, _), vector in zip(batch, vectors, strict=True):
                    Passage.objects.filter(id=passage_id).update(embedding=vector.tolist())
                done += len(batch)
                Document.objects.filter(id=document.id).update(embedded_count=done)
            ctx.progress(100 * done / max(total, 1), f"{done}/{total} passages embedded.")
        Document.objects.filter(id=document.id).update(status=Document.Status.READY, embedded_count=done, error="")
    except Exception as exc:
        Document.objects.filter(id=document.id).update(status=Document.Status.FAILED, error=str(exc)[:2000])
        raise
    ctx.metrics("embedded", passages=done)
    return {"document_id": document_id, "embedded": done, "model": engine.EMBEDDING_MODEL_NAME}


def _embedding_input(title: str, section: str, text: str) -> str:
    """What the model sees for a passage: where it comes from, then its words (headings help short passages)."""
    context = " / ".join(part for part in (title, section) if part and part not in text[:200])
    return f"{context}\n{text}" if context else text
