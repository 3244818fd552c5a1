"""The fine-tuning data set of the copilot: extractive question-answer pairs from the tenant's documents and records,
reviewed and edited by people, then trained through the existing fine-tuning service.

Build (`qa_dataset_build`) reads the organisation's ready documents' passages and its assets, machines and products
(through the automation apps' selectors), turns them into pairs with `engine.qa_generation` and stores them in one
transaction, each with its source: the passage and the answer's span in it, or the record's code and fields.
Review edits (`qa_pair_update`) and deletions (`qa_pair_delete`) change single pairs. `qa_dataset_fine_tune` writes
the pairs as a JSONL file in OpenAI's chat format, uploads it as a training file (validated like any other) and
creates the fine-tuning job, so the job's lifecycle, metering and export are the ones `/v1/fine_tuning` already has.
"""

import json

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from automation.maintenance.selectors import asset_facts
from automation.scheduling.selectors import machine_facts, product_facts
from inference.fine_tuning import default_base_model, fine_tuning_job_create, training_file_upload
from inference.models import FineTuningJob
from tenants.actor import Actor
from tenants.audit import audit_record
from tenants.models import Organization

from .engine.qa_generation import PassageSource, QaCandidate, RecordSource, chat_example, passage_pairs, record_pairs
from .models import Document, Passage, QaDataset, QaPair

MAX_PAIRS = 5000  # per data set: bounded work in one request, and more than a LoRA on a small model needs
PAIRS_PER_PASSAGE = 3
DEFAULT_SYSTEM_PROMPT = "You are the factory assistant of {organization}. Answer from the factory's own documents."
QUESTION_MAX_CHARS = 2000
ANSWER_MAX_CHARS = 4000


def _passage_label(passage: Passage) -> str:
    where = f"p. {passage.page}" if passage.page else passage.section
    return f"{passage.document.title}, {where}" if where else passage.document.title


def _record_text(fields: dict[str, str]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in fields.items() if value)


def _candidates(*, organization: Organization, documents: bool, records: bool) -> list[tuple[QaCandidate, dict]]:
    """(candidate, the QaPair fields that name its source), in a stable order: documents, then records."""
    found: list[tuple[QaCandidate, dict]] = []
    if documents:
        passages = (
            Passage.objects.filter(organization=organization)
            .exclude(document__status=Document.Status.FAILED)
            .select_related("document")
            .order_by("document__created_at", "document_id", "ordinal")
        )
        for passage in passages.iterator(chunk_size=500):
            source = PassageSource(
                text=passage.text, document_title=passage.document.title, section=passage.section, page=passage.page
            )
            for candidate in passage_pairs(source, max_pairs=PAIRS_PER_PASSAGE):
                found.append(
                    (
                        candidate,
                        {
                            "source_kind": QaPair.SourceKind.PASSAGE,
                            "passage": passage,
                            "document": passage.document,
                            "source_text": passage.text,
                            "source_label": _passage_label(passage),
                        },
                    )
                )
            if len(found) >= MAX_PAIRS:
                return found
    if records:
        for kind, rows in (
            (QaPair.SourceKind.ASSET, asset_facts(organization=organization)),
            (QaPair.SourceKind.MACHINE, machine_facts(organization=organization)),
            (QaPair.SourceKind.PRODUCT, product_facts(organization=organization)),
        ):
            for row in rows:
                fields = {name: value for name, value in row.items() if name != "code"}
                for candidate in record_pairs(RecordSource(kind=kind, code=row["code"], fields=fields)):
                    found.append(
                        (
                            candidate,
                            {
                                "source_kind": kind,
                                "record_code": row["code"],
                                "record_fields": {name: fields[name] for name in candidate.fields},
                                "source_text": _record_text(fields),
                                "source_label": f"{QaPair.SourceKind(kind).label} {row['code']}",
                            },
                        )
                    )
    return found


def qa_dataset_build(
    *,
    organization: Organization,
    actor: Actor,
    name: str,
    documents: bool = True,
    records: bool = True,
    system_prompt: str = "",
) -> QaDataset:
    """Generate a data set from the organisation's ready documents and its records. 400 if nothing yields a pair."""
    candidates = _candidates(organization=organization, documents=documents, records=records)[:MAX_PAIRS]
    if not candidates:
        raise ValidationError(
            {"sources": ["No question-answer pair could be made: upload documents (and wait until they are ready) "
                         "or add assets, machines or products first."]}
        )  # fmt: skip
    with transaction.atomic():
        dataset = QaDataset.objects.create(
            organization=organization,
            name=name,
            system_prompt=system_prompt or DEFAULT_SYSTEM_PROMPT.format(organization=organization.name),
            pair_count=len(candidates),
            created_by_label=actor.label,
        )
        QaPair.objects.bulk_create(
            QaPair(
                organization=organization,
                dataset=dataset,
                ordinal=ordinal,
                question=candidate.question,
                answer=candidate.answer,
                answer_start=candidate.answer_start,
                answer_end=candidate.answer_end,
                **source,
            )
            for ordinal, (candidate, source) in enumerate(candidates)
        )
        audit_record(
            action="assistant.dataset.build",
            target=dataset,
            metadata={"pairs": len(candidates), "documents": documents, "records": records},
            **actor.audit_kwargs(),
        )
    return dataset


def qa_pair_update(*, pair: QaPair, actor: Actor, question: str | None = None, answer: str | None = None) -> QaPair:
    """A reviewer's edit of one pair. The source stays as it was; `edited` records that a person changed it."""
    problems: dict[str, list[str]] = {}
    for field, value, limit in (("question", question, QUESTION_MAX_CHARS), ("answer", answer, ANSWER_MAX_CHARS)):
        if value is not None and not value.strip():
            problems[field] = ["Must not be blank."]
        elif value is not None and len(value) > limit:
            problems[field] = [f"At most {limit} characters."]
    if problems:
        raise ValidationError(problems)
    if _locked(pair.dataset):
        raise ValidationError(
            {"dataset": ["This data set has been sent to fine-tuning; build a new one to change it."]}
        )
    if question is not None:
        pair.question = question.strip()
    if answer is not None:
        pair.answer = answer.strip()
    pair.edited = True
    pair.save(update_fields=["question", "answer", "edited", "updated_at"])
    return pair


def qa_pair_delete(*, pair: QaPair, actor: Actor) -> None:
    dataset = pair.dataset
    if _locked(dataset):
        raise ValidationError(
            {"dataset": ["This data set has been sent to fine-tuning; build a new one to change it."]}
        )
    with transaction.atomic():
        pair.delete()
        QaDataset.objects.filter(pk=dataset.pk).update(pair_count=dataset.pairs.count())


def qa_dataset_delete(*, dataset: QaDataset, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            action="assistant.dataset.delete", target=dataset, metadata={"name": dataset.name}, **actor.audit_kwargs()
        )
        dataset.delete()


def _locked(dataset: QaDataset) -> bool:
    return dataset.fine_tuning_job_id is not None


def qa_dataset_jsonl(*, dataset: QaDataset) -> bytes:
    """The pairs as OpenAI's chat fine-tuning JSONL, one example a line, in review order."""
    lines = [
        json.dumps(chat_example(system_prompt=dataset.system_prompt, question=pair.question, answer=pair.answer))
        for pair in dataset.pairs.order_by("ordinal")
    ]
    return ("\n".join(lines) + "\n").encode()


def qa_dataset_fine_tune(
    *,
    dataset: QaDataset,
    actor: Actor,
    model: str = "",
    suffix: str = "",
    hyperparameters: dict | None = None,
) -> FineTuningJob:
    """Upload the pairs as a training file and start a fine-tuning job on them (once per data set)."""
    if _locked(dataset):
        raise ValidationError({"dataset": ["A fine-tuning job was already started from this data set."]})
    if not dataset.pairs.exists():
        raise ValidationError({"dataset": ["The data set has no pairs left."]})
    organization = dataset.organization
    training_file = training_file_upload(
        organization=organization,
        upload=SimpleUploadedFile(
            f"qa-{dataset.pk}.jsonl", qa_dataset_jsonl(dataset=dataset), content_type="application/jsonl"
        ),
        purpose="fine-tune",
    )
    job = fine_tuning_job_create(
        organization=organization,
        actor=actor,
        model=model or default_base_model().name,
        training_file=training_file,
        suffix=suffix,
        hyperparameters=hyperparameters,
    )
    with transaction.atomic():
        locked = QaDataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.fine_tuning_job_id is not None:  # a concurrent request won; ours stays an orphan job
            raise ValidationError({"dataset": ["A fine-tuning job was already started from this data set."]})
        locked.training_file = training_file
        locked.fine_tuning_job = job
        locked.save(update_fields=["training_file", "fine_tuning_job"])
        audit_record(
            action="assistant.dataset.fine_tune",
            target=locked,
            metadata={"fine_tuning_job": job.id, "training_file": training_file.id, "pairs": locked.pair_count},
            **actor.audit_kwargs(),
        )
    dataset.refresh_from_db()
    return job
