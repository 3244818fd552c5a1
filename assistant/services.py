"""Writes of the assistant's documents: upload (parse, split, store, queue embedding), embedding, delete.

An upload is all or nothing: the file is parsed and split before anything is stored, the rows are written in one
transaction, and the stored original is removed again if that transaction fails. Embedding runs as a job on the
default queue once the upload commits.
"""

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.postgres.search import SearchVector
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ValidationError

from billing.usage import usage_record
from foundation.api.errors import ApiError
from jobs.runner import JobContext
from jobs.services import job_create
from tenants.actor import Actor
from tenants.audit import audit_record
from tenants.models import Organization

from . import engine
from .choosing import tool_choose
from .conf import EMBED_BATCH, EMBED_JOB_KIND, TOOL_CALLS_METER, copilot_model, max_upload_bytes
from .models import Conversation, Document, Message, Passage, Proposal
from .prose import ProseUnavailable, prose_check, prose_stream, template_sentence
from .tools import Tool, ToolContext, tool_get

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


# --- conversations: the copilot's tool loop ----------------------------------------------------------------------
#
# A question is answered in one pass: choose the tool from the user's words (`choosing.tool_choose`), check the
# caller may use it, run it (a read) or propose it (a write), then have the model write the prose around the facts.
# `message_answer` yields the steps as events (the API streams them as server-sent events or collects them into one
# JSON answer). Writes run only in `proposal_confirm`, a separate request naming the proposal.


def conversation_create(*, organization: Organization, actor: Actor, title: str = "") -> Conversation:
    return Conversation.objects.create(
        organization=organization,
        title=title.strip()[:200],
        user=actor.user if actor.api_key is None else None,
        api_key=actor.api_key,
        created_by_label=actor.label[:255],
    )


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def conversations_purge(organization: Organization, cutoff) -> int:
    """Retention (`conversation_history`): conversations last touched before the cutoff go, with their messages."""
    deleted, _ = Conversation.objects.filter(organization=organization, updated_at__lt=cutoff).delete()
    return deleted


def _tool_arguments(tool: Tool, resolution) -> dict:
    arguments: dict = {}
    for kind in tool.kinds:
        codes = resolution.codes(kind)
        if codes:
            arguments[f"{kind}s"] = codes
    return arguments


def _meter_tool_call(*, organization: Organization, tool: str, key: str) -> None:
    usage_record(
        organization_id=organization.pk,
        meter=TOOL_CALLS_METER,
        quantity=1,
        idempotency_key=f"assistant.tool_call:{key}",
        attributes={"tool": tool},
    )


def message_answer(
    *, conversation: Conversation, actor: Actor, content: str, model: str | None = None
) -> Iterator[tuple[str, dict]]:
    """Answer the user's message; yields (event, data): message, tool, facts, token..., citations, proposal or
    refusal, done. The assistant message is saved before `done` (and also when the consumer stops early)."""
    from .serializers import MessageSerializer

    organization = conversation.organization
    question = content.strip()
    user_message = Message.objects.create(
        organization=organization, conversation=conversation, role=Message.Role.USER, content=question
    )
    if not conversation.title:
        conversation.title = question[:200]
    conversation.save(update_fields=["title", "updated_at"])
    yield "message", {"id": str(user_message.id), "role": "user", "content": question}

    choice = tool_choose(organization=organization, question=question, model=model)
    reply = Message(
        organization=organization, conversation=conversation, role=Message.Role.ASSISTANT, choice=choice.explain()
    )
    saved = False

    def refuse(reason: str) -> tuple[str, dict]:
        reply.outcome = Message.Outcome.REFUSED
        reply.content = reason
        return "refusal", {"reason": reason}

    try:
        tool = choice.tool
        if tool is not None:
            reply.tool = tool.name
            reply.arguments = _tool_arguments(tool, choice.resolution)
            if tool.name == "documents_search":
                reply.arguments["query"] = question
            yield "tool", {"name": tool.name, "write": tool.write, "arguments": reply.arguments, "choice": reply.choice}
        if choice.refusal or tool is None:
            yield refuse(choice.refusal)
        elif tool.scope not in actor.scopes:
            yield refuse(
                f"You do not have the permission this needs ({tool.scope}), so I will not "
                + ("propose it." if tool.write else "look it up.")
            )
        else:
            ctx = ToolContext(organization=organization, actor=actor, question=question, resolution=choice.resolution)
            if tool.write:
                assert tool.propose is not None
                proposed = tool.propose(ctx)
                if isinstance(proposed, str):
                    yield refuse(proposed)
                else:
                    reply.outcome = Message.Outcome.PROPOSED
                    reply.arguments = proposed.arguments
                    reply.facts = [{"name": name, "value": value} for name, value in proposed.arguments.items()]
                    reply.content = f"{proposed.summary} Nothing has changed yet: confirm this proposal to run it."
                    reply.prose_source = "template"
                    reply.save()
                    saved = True
                    proposal = Proposal.objects.create(
                        organization=organization,
                        conversation=conversation,
                        message=reply,
                        tool=tool.name,
                        arguments=proposed.arguments,
                        summary=proposed.summary,
                    )
                    yield (
                        "proposal",
                        {
                            "id": str(proposal.id),
                            "tool": tool.name,
                            "arguments": proposal.arguments,
                            "summary": proposal.summary,
                        },
                    )
            else:
                assert tool.run is not None
                result = tool.run(ctx, reply.arguments)
                _meter_tool_call(organization=organization, tool=tool.name, key=str(reply.id))
                reply.facts, reply.citations = result.facts, result.citations
                yield "facts", {"facts": result.facts}
                if result.empty_reason:
                    yield refuse(result.empty_reason)
                else:
                    reply.outcome = Message.Outcome.ANSWERED
                    yield from _prose(reply, organization=organization, question=question, model=model, tool=tool)
                yield "citations", {"citations": result.citations}
        reply.save()
        saved = True
        conversation.save(update_fields=["updated_at"])
        yield "done", {"message": MessageSerializer(reply).data}
    finally:
        if not saved:
            reply.save()


def _prose(reply: Message, *, organization: Organization, question: str, model: str | None, tool: Tool):
    reply.model = model or copilot_model()
    fallback = template_sentence(tool.description, reply.facts)
    pieces: list[str] = []
    try:
        for token in prose_stream(organization=organization, model=reply.model, question=question, facts=reply.facts):
            pieces.append(token)
            yield "token", {"text": token}
    except ProseUnavailable as exc:
        logger.info("Copilot prose unavailable: %s", exc)
        pieces = []
    prose = "".join(pieces).strip()
    invented = prose_check(prose, facts=reply.facts, question=question) if prose else []
    if prose and not invented:
        reply.content, reply.prose_source = prose, "model"
        return
    reply.content, reply.prose_source = fallback, "template"
    yield (
        "prose_replaced",
        {
            "text": fallback,
            "reason": (
                f"the model wrote figures the data does not hold: {', '.join(invented)}"
                if invented
                else "no answer from the model"
            ),
        },
    )


def proposal_confirm(*, proposal: Proposal, actor: Actor) -> Proposal:
    """Run a proposed change, with the confirming caller's permissions; audited, metered. Once only."""
    tool = tool_get(proposal.tool)
    if tool.scope not in actor.scopes:
        raise ApiError(
            f"Confirming this needs the {tool.scope} scope.",
            code="permission_denied",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    with transaction.atomic():
        locked = Proposal.objects.select_for_update().get(pk=proposal.pk, organization_id=proposal.organization_id)
        if locked.status != Proposal.Status.PROPOSED:
            raise ApiError(
                f"This proposal was already {locked.status}.",
                code="proposal_settled",
                status_code=status.HTTP_409_CONFLICT,
            )
        assert tool.execute is not None
        try:
            with transaction.atomic():
                result = tool.execute(organization=locked.organization, actor=actor, arguments=locked.arguments)
        except (ValidationError, DjangoValidationError, ObjectDoesNotExist, ApiError) as exc:
            locked.status = Proposal.Status.FAILED
            detail = getattr(exc, "message_dict", None) or getattr(exc, "detail", None) or str(exc)
            locked.result = {"error": json.loads(json.dumps(detail, default=str))}
        else:
            locked.status = Proposal.Status.CONFIRMED
            locked.result = result
        locked.confirmed_by_label = actor.label[:255]
        locked.confirmed_at = timezone.now()
        locked.save()
        audit_record(
            action=f"assistant.proposal.{locked.status}",
            target=locked,
            metadata={"tool": locked.tool, "arguments": locked.arguments, "result": locked.result},
            **actor.audit_kwargs(),
        )
        if locked.status == Proposal.Status.CONFIRMED:
            _meter_tool_call(organization=locked.organization, tool=locked.tool, key=f"proposal:{locked.pk}")
            citations = [{"title": locked.summary, "url": result["url"], "kind": "record"}] if "url" in result else []
            Message.objects.create(
                organization=locked.organization,
                conversation=locked.conversation,
                role=Message.Role.ASSISTANT,
                outcome=Message.Outcome.CONFIRMED,
                tool=locked.tool,
                arguments=locked.arguments,
                facts=[{"name": k, "value": v} for k, v in result.items() if k != "url"],
                citations=citations,
                content=f"Done: {locked.summary}",
                prose_source="template",
            )
        Conversation.objects.filter(pk=locked.conversation_id).update(updated_at=timezone.now())
    return locked
