"""Tenant documents and their passages, the sources the copilot cites.

The original file lives in Django's storage (`default_storage`, S3 in production), never in the database; the
extracted text does, so a passage's `char_start`/`char_end` point into `Document.text` and a citation can show the
words around it. Each passage carries two indexes: a 384-dimension embedding under an HNSW index (cosine) and a
`tsvector` built with the 'simple' configuration (no stemming, no stop words, so Korean, German and part numbers
are indexed as written) under a GIN index. Every row, passages included, carries its organisation.
"""

import uuid

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from .engine import EMBEDDING_DIMENSIONS


def document_upload_to(instance: "Document", filename: str) -> str:
    return f"assistant/{instance.organization_id}/{instance.id}/{filename}"


class Document(models.Model):
    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        PDF = "pdf", "PDF"
        MARKDOWN = "markdown", "Markdown"
        TEXT = "text", "Plain text"
        DOCX = "docx", "Word"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=300)
    filename = models.CharField(max_length=255)
    format = models.CharField(max_length=16, choices=Format.choices)
    content_type = models.CharField(max_length=120, blank=True)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=document_upload_to, max_length=500)
    text = models.TextField(help_text="The extracted text; passages' character offsets point into it.")
    page_count = models.PositiveIntegerField(null=True, blank=True)
    passage_count = models.PositiveIntegerField(default=0)
    embedded_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    error = models.TextField(blank=True)
    embedding_model = models.CharField(max_length=120, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_by_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return self.title


class Passage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="passages")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    page = models.PositiveIntegerField(null=True, blank=True)
    section = models.CharField(max_length=500, blank=True)
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    word_count = models.PositiveIntegerField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    search_vector = SearchVectorField(null=True, blank=True)

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="assistant_passage_unique_ordinal"),
            models.CheckConstraint(
                condition=models.Q(char_end__gt=models.F("char_start")), name="assistant_passage_span_not_empty"
            ),
        ]
        indexes = [
            HnswIndex(
                name="assistant_passage_embedding",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="assistant_passage_fts"),
        ]

    def __str__(self) -> str:
        where = f"p. {self.page}" if self.page else (self.section or f"#{self.ordinal}")
        return f"{self.document_id} {where}"


# --- The fine-tuning data set: question-answer pairs from the tenant's documents and records (issue #20, "a model
# that knows the factory"). Separate from the documents above and from the conversations; see assistant/datasets.py.


class QaDataset(models.Model):
    """A reviewable set of extractive question-answer pairs, and the fine-tuning job started from it (if any)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    system_prompt = models.CharField(max_length=1000, help_text="The system message of every training example.")
    pair_count = models.PositiveIntegerField(default=0)
    training_file = models.ForeignKey(
        "inference.TrainingFile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fine_tuning_job = models.ForeignKey(
        "inference.FineTuningJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return self.name


class QaPair(models.Model):
    """One question and its answer, grounded in a passage (the answer's span in it) or a record (its fields)."""

    class SourceKind(models.TextChoices):
        PASSAGE = "passage", "Document passage"
        ASSET = "asset", "Asset"
        MACHINE = "machine", "Machine"
        PRODUCT = "product", "Product"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(QaDataset, on_delete=models.CASCADE, related_name="pairs")
    ordinal = models.PositiveIntegerField()
    question = models.TextField()
    answer = models.TextField()
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    # A passage source: the passage (null once its document is deleted; the text below stays for review).
    passage = models.ForeignKey(Passage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    answer_start = models.PositiveIntegerField(null=True, blank=True, help_text="The answer's span in source_text.")
    answer_end = models.PositiveIntegerField(null=True, blank=True)
    # A record source: its code and the fields the answer states.
    record_code = models.CharField(max_length=128, blank=True)
    record_fields = models.JSONField(default=dict, blank=True)
    source_text = models.TextField(help_text="The passage or the record's fields, as they were when generated.")
    source_label = models.CharField(max_length=500, help_text='Where it came from, e.g. "Press 4 manual, p. 3".')
    edited = models.BooleanField(default=False, help_text="Changed by a reviewer since it was generated.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dataset", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "ordinal"], name="assistant_qapair_unique_ordinal"),
        ]

    def __str__(self) -> str:
        return self.question[:80]


class Conversation(models.Model):
    """A copilot conversation. It belongs to the member (or API key) that started it: others of the organisation
    do not see it. Its messages and proposals go with it (retention kind `conversation_history`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("tenants.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_by_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["organization", "-updated_at"], name="assistant_conv_updated")]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Message(models.Model):
    """One turn. A user message holds the question; an assistant message holds the chosen tool with its exact
    arguments, the structured facts and citations the tool returned (verbatim), and the prose around them."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Outcome(models.TextChoices):
        ANSWERED = "answered", "Answered from the data"
        PROPOSED = "proposed", "A change proposed for confirmation"
        REFUSED = "refused", "Refused: the data holds no answer"
        CONFIRMED = "confirmed", "A proposal confirmed and run"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    tool = models.CharField(max_length=64, blank=True)
    arguments = models.JSONField(default=dict, blank=True)
    facts = models.JSONField(default=list, blank=True)
    citations = models.JSONField(default=list, blank=True)
    choice = models.JSONField(default=dict, blank=True, help_text="How the tool was chosen: scores, resolved codes.")
    model = models.CharField(max_length=200, blank=True)
    prose_source = models.CharField(max_length=16, blank=True, help_text="model or template")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="assistant_msg_conv")]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class Proposal(models.Model):
    """A change the copilot proposes (a write tool with its exact arguments). It runs only when the user confirms
    it by id in a second request, with that caller's permissions; the run is audited."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        CONFIRMED = "confirmed", "Confirmed and run"
        FAILED = "failed", "Confirmed, but the change was refused"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="proposals")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="proposals")
    tool = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    summary = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    result = models.JSONField(default=dict, blank=True)
    confirmed_by_label = models.CharField(max_length=255, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.tool} ({self.status})"
