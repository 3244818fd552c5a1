"""The documents API under /api/v1/orgs/{org_slug}/assistant/: upload, list, retrieve, delete, the original file,
the passages, and hybrid search. Reads need org:read, uploads and deletes org:write."""

from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from foundation.api.downloads import file_download
from tenants.roles import Scope
from tenants.scoping import OrganizationScopedViewMixin

from . import datasets, events, selectors, serializers, services
from .conf import max_upload_bytes
from .models import Conversation, Document, Proposal, QaDataset, QaPair

_MULTIPART_OVERHEAD = 64 * 1024


class PassagePagination(CursorPagination):
    ordering = ("ordinal",)
    page_size = 100


class DocumentViewSet(
    OrganizationScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Document.objects.select_related("organization").defer("text")
    serializer_class = serializers.DocumentSerializer
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": serializers.DocumentUploadSerializer},
        responses={201: serializers.DocumentSerializer},
    )
    def create(self, request, org_slug):
        limit = max_upload_bytes()
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > limit + _MULTIPART_OVERHEAD:  # refuse before reading the body
            raise services.DocumentRejected(
                f"The upload is {declared} bytes; the limit is {limit} bytes.",
                code="file_too_large",
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        form = serializers.DocumentUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        if upload.size > limit:
            raise services.DocumentRejected(
                f"The file is {upload.size} bytes; the limit is {limit} bytes.",
                code="file_too_large",
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        document = services.document_upload(
            organization=self.organization,
            upload=services.Upload(
                filename=upload.name or "document", content=upload.read(), content_type=upload.content_type or ""
            ),
            title=form.validated_data.get("title", ""),
            actor=self.actor,
        )
        return Response(self.get_serializer(document).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.document_delete(document=instance, actor=self.actor)

    @extend_schema(responses={200: serializers.PassageSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="passages")
    def passages(self, request, org_slug, pk):
        document = self.get_object()
        paginator = PassagePagination()
        page = paginator.paginate_queryset(document.passages.all(), request, view=self)
        return paginator.get_paginated_response(serializers.PassageSerializer(page, many=True).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="file")
    def file(self, request, org_slug, pk):
        document = self.get_object()
        handle = default_storage.open(document.file.name, "rb")
        return file_download(
            request,
            handle,
            filename=document.filename,
            content_type=document.content_type or "application/octet-stream",
        )


class SearchView(OrganizationScopedViewMixin, GenericAPIView):
    """Hybrid retrieval: semantic (MiniLM + pgvector) and lexical (PostgreSQL full text) top-k fused by reciprocal
    rank fusion. Only the caller's organisation's passages, always."""

    queryset = Document.objects.all()
    serializer_class = serializers.SearchHitSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True, description="The question or the words to find."),
            OpenApiParameter("k", int, required=False, description="How many passages (default 5)."),
        ],
        responses={200: serializers.SearchHitSerializer(many=True)},
    )
    def get(self, request, org_slug):
        form = serializers.SearchQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        hits = selectors.passage_search(
            organization=self.organization, query=form.validated_data["q"], k=form.validated_data["k"]
        )
        data = [
            {
                "passage_id": hit.passage.id,
                "text": hit.passage.text,
                "score": hit.score,
                "similarity": hit.similarity,
                "vector_rank": hit.vector_rank,
                "text_rank": hit.text_rank,
                "document_id": hit.passage.document_id,
                "document_title": hit.passage.document.title,
                "page": hit.passage.page,
                "section": hit.passage.section,
                "char_start": hit.passage.char_start,
                "char_end": hit.passage.char_end,
                "citation_url": request.build_absolute_uri(serializers.document_path(hit.passage.document)),
            }
            for hit in hits
        ]
        return Response(
            {"query": form.validated_data["q"], "results": serializers.SearchHitSerializer(data, many=True).data}
        )


# --- the fine-tuning data set ----------------------------------------------------------------------------------------


class QaPairPagination(CursorPagination):
    ordering = ("ordinal",)
    page_size = 100


class QaDatasetViewSet(
    OrganizationScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Question-answer data sets built from the organisation's documents and records, for fine-tuning its model."""

    queryset = QaDataset.objects.all()
    serializer_class = serializers.QaDatasetSerializer
    action_scopes = {"fine_tune": Scope.JOBS}  # as POST /v1/fine_tuning/jobs

    @extend_schema(request=serializers.QaDatasetBuildSerializer, responses={201: serializers.QaDatasetSerializer})
    def create(self, request, org_slug):
        form = serializers.QaDatasetBuildSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        dataset = datasets.qa_dataset_build(organization=self.organization, actor=self.actor, **form.validated_data)
        return Response(self.get_serializer(dataset).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        datasets.qa_dataset_delete(dataset=instance, actor=self.actor)

    @extend_schema(responses={200: serializers.QaPairSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="pairs")
    def pairs(self, request, org_slug, pk):
        dataset = self.get_object()
        paginator = QaPairPagination()
        page = paginator.paginate_queryset(dataset.pairs.all(), request, view=self)
        return paginator.get_paginated_response(serializers.QaPairSerializer(page, many=True).data)

    @extend_schema(
        request=serializers.QaFineTuneSerializer,
        responses={201: serializers.QaDatasetSerializer},
        description="Upload the pairs as a training file (OpenAI chat JSONL) and start a fine-tuning job on them; "
        "follow it at /v1/fine_tuning/jobs/{fine_tuning_job}.",
    )
    @action(detail=True, methods=["post"], url_path="fine-tune")
    def fine_tune(self, request, org_slug, pk):
        dataset = self.get_object()
        form = serializers.QaFineTuneSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        datasets.qa_dataset_fine_tune(dataset=dataset, actor=self.actor, **form.validated_data)
        dataset.refresh_from_db()
        return Response(self.get_serializer(dataset).data, status=status.HTTP_201_CREATED)


class QaPairViewSet(
    OrganizationScopedViewMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """One pair of a data set: read it, correct its question or answer (PATCH), or drop it."""

    queryset = QaPair.objects.select_related("dataset")
    serializer_class = serializers.QaPairSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def perform_update(self, serializer):
        serializer.instance = datasets.qa_pair_update(
            pair=serializer.instance,
            actor=self.actor,
            question=serializer.validated_data.get("question"),
            answer=serializer.validated_data.get("answer"),
        )

    def perform_destroy(self, instance):
        datasets.qa_pair_delete(pair=instance, actor=self.actor)


# --- conversations -----------------------------------------------------------------------------------------------


class EventStreamRenderer(BaseRenderer):
    """`text/event-stream`: lets a client ask for the streamed answer with its Accept header; a refusal before the
    stream starts (a bad body, a missing scope) is sent as one `error` event in the API's error shape."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return events.sse_event("error", data).encode()


class ConversationViewSet(
    OrganizationScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own copilot conversations. Asking is reading: every action needs org:read, and each tool then
    needs its own scope (a change proposed by the copilot needs the change's scope, checked again on confirmation)."""

    queryset = Conversation.objects.select_related("organization")
    serializer_class = serializers.ConversationSerializer
    renderer_classes = [JSONRenderer, EventStreamRenderer]
    method_scopes = dict.fromkeys(OrganizationScopedViewMixin.method_scopes, Scope.ORG_READ)

    def get_base_queryset(self):
        return _owned_by(self.queryset.all(), self.actor)

    def get_serializer_class(self):
        if self.action == "retrieve":
            return serializers.ConversationDetailSerializer
        return serializers.ConversationSerializer

    def perform_create(self, serializer):
        serializer.instance = services.conversation_create(
            organization=self.organization, actor=self.actor, title=serializer.validated_data.get("title", "")
        )

    def perform_destroy(self, instance):
        services.conversation_delete(conversation=instance)

    @extend_schema(
        request=serializers.MessageCreateSerializer,
        responses={
            200: serializers.MessageSerializer,
            (200, "text/event-stream"): OpenApiTypes.STR,
        },
        description=(
            "Ask the copilot. JSON: the assistant's message (tool, arguments, facts, citations, prose, proposals). "
            "With `stream: true` or `Accept: text/event-stream`: server-sent events `message`, `tool`, `facts`, "
            "`token` (prose), `prose_replaced`, `citations`, `proposal` or `refusal`, then `done` with the message."
        ),
    )
    @action(detail=True, methods=["post"], url_path="messages")
    def messages(self, request, org_slug, pk):
        conversation = self.get_object()
        form = serializers.MessageCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        answer = services.message_answer(
            conversation=conversation, actor=self.actor, content=form.validated_data["content"]
        )
        wants_stream = form.validated_data["stream"] or "text/event-stream" in request.META.get("HTTP_ACCEPT", "")
        if wants_stream:
            response = StreamingHttpResponse(events.sse_stream(request, answer), content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
            return response
        final: dict = {}
        for event, data in answer:
            if event == "done":
                final = data["message"]
        return Response(final)


def _owned_by(queryset, actor, prefix: str = ""):
    """Conversations (and what hangs off them) belong to the member or API key that started them."""
    if actor.api_key is not None:
        return queryset.filter(**{f"{prefix}api_key": actor.api_key})
    return queryset.filter(**{f"{prefix}user": actor.user, f"{prefix}api_key__isnull": True})


class ProposalViewSet(
    OrganizationScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Changes the copilot proposed in the caller's conversations. `POST {id}/confirm` runs one, once, with the
    caller's permissions (the tool's own scope is checked then: a viewer cannot start a run), and audits it."""

    queryset = Proposal.objects.select_related("organization", "conversation")
    serializer_class = serializers.ProposalSerializer
    method_scopes = dict.fromkeys(OrganizationScopedViewMixin.method_scopes, Scope.ORG_READ)
    list_filters = {"status": "status", "conversation": "conversation_id"}

    def get_base_queryset(self):
        return _owned_by(self.queryset.all(), self.actor, "conversation__").order_by("-created_at")

    @extend_schema(request=None, responses={200: serializers.ProposalSerializer})
    @action(detail=True, methods=["post"], url_path="confirm")
    def confirm(self, request, org_slug, pk):
        proposal = services.proposal_confirm(proposal=self.get_object(), actor=self.actor)
        return Response(self.get_serializer(proposal).data)
