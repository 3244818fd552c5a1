"""The documents API's JSON."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Conversation, Document, Message, Passage, Proposal, QaDataset, QaPair


def document_path(document: Document) -> str:
    return reverse("assistant-document-detail", kwargs={"org_slug": document.organization.slug, "pk": str(document.pk)})


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True, help_text="PDF, Markdown (.md), plain text (.txt) or Word (.docx)."
    )
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)


class DocumentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "filename",
            "format",
            "content_type",
            "size_bytes",
            "sha256",
            "page_count",
            "passage_count",
            "embedded_count",
            "status",
            "error",
            "embedding_model",
            "job",
            "uploaded_by_label",
            "created_at",
            "url",
            "download_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_url(self, document: Document) -> str:
        return self.context["request"].build_absolute_uri(document_path(document))

    @extend_schema_field(serializers.CharField())
    def get_download_url(self, document: Document) -> str:
        return self.context["request"].build_absolute_uri(document_path(document) + "/file")


class PassageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Passage
        fields = ["id", "ordinal", "page", "section", "char_start", "char_end", "word_count", "text"]
        read_only_fields = fields


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=1000, trim_whitespace=True)
    k = serializers.IntegerField(min_value=1, default=5)

    def validate_k(self, value: int) -> int:
        from .conf import max_search_k

        limit = max_search_k()
        if value > limit:
            raise serializers.ValidationError(f"At most {limit}.")
        return value


class SearchHitSerializer(serializers.Serializer):
    passage_id = serializers.UUIDField()
    text = serializers.CharField()
    score = serializers.FloatField(help_text="Reciprocal rank fusion score (higher is better).")
    similarity = serializers.FloatField(allow_null=True, help_text="Cosine similarity to the question.")
    vector_rank = serializers.IntegerField(allow_null=True)
    text_rank = serializers.IntegerField(allow_null=True)
    document_id = serializers.UUIDField()
    document_title = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    section = serializers.CharField()
    char_start = serializers.IntegerField()
    char_end = serializers.IntegerField()
    citation_url = serializers.CharField()


# --- the fine-tuning data set ----------------------------------------------------------------------------------------


class QaDatasetBuildSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    documents = serializers.BooleanField(default=True, help_text="Pairs from the ready documents' passages.")
    records = serializers.BooleanField(default=True, help_text="Pairs from assets, machines and products.")
    system_prompt = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, help_text="The system message of every example."
    )


class QaDatasetSerializer(serializers.ModelSerializer):
    fine_tuning_job = serializers.CharField(source="fine_tuning_job_id", read_only=True, allow_null=True)
    training_file = serializers.CharField(source="training_file_id", read_only=True, allow_null=True)

    class Meta:
        model = QaDataset
        fields = [
            "id",
            "name",
            "system_prompt",
            "pair_count",
            "training_file",
            "fine_tuning_job",
            "created_by_label",
            "created_at",
        ]
        read_only_fields = fields


class QaPairSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    passage = serializers.UUIDField(source="passage_id", read_only=True, allow_null=True)
    document = serializers.UUIDField(source="document_id", read_only=True, allow_null=True)
    question = serializers.CharField(max_length=2000, required=False)
    answer = serializers.CharField(max_length=4000, required=False)

    class Meta:
        model = QaPair
        fields = [
            "id",
            "dataset",
            "ordinal",
            "question",
            "answer",
            "source_kind",
            "source_label",
            "source_text",
            "passage",
            "document",
            "answer_start",
            "answer_end",
            "record_code",
            "record_fields",
            "edited",
            "updated_at",
        ]
        read_only_fields = [f for f in fields if f not in ("question", "answer")]


class QaFineTuneSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, help_text="A base model name.")
    suffix = serializers.RegexField(r"^[a-z0-9-]{0,40}$", required=False, allow_blank=True, default="")
    hyperparameters = serializers.DictField(required=False, help_text="As in POST /v1/fine_tuning/jobs.")


# --- conversations -----------------------------------------------------------------------------------------------


class ProposalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Proposal
        fields = [
            "id",
            "message",
            "tool",
            "arguments",
            "summary",
            "status",
            "result",
            "confirmed_by_label",
            "confirmed_at",
            "created_at",
        ]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    proposals = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "content",
            "outcome",
            "tool",
            "arguments",
            "facts",
            "citations",
            "choice",
            "model",
            "prose_source",
            "proposals",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ProposalSerializer(many=True))
    def get_proposals(self, message: Message) -> list:
        if message.role != Message.Role.ASSISTANT or message.outcome != Message.Outcome.PROPOSED:
            return []
        return list(ProposalSerializer(message.proposals.all(), many=True).data)


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "title", "created_by_label", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by_label", "created_at", "updated_at"]
        extra_kwargs = {"title": {"required": False, "allow_blank": True}}


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages"]


class MessageCreateSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=2000, trim_whitespace=True)
    stream = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Answer as server-sent events (also chosen by `Accept: text/event-stream`).",
    )
