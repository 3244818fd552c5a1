from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from tenants.roles import Scope
from tenants.scoping import OrganizationScopedViewMixin

from . import services
from .models import Job, JobEvent
from .serializers import JobEventSerializer, JobSerializer


class ChronologicalPagination(CursorPagination):
    ordering = ("created_at", "id")
    page_size = 200


class JobViewSet(
    OrganizationScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Every long-running job of the organisation: fine-tunes, optimisations, maintenance runs."""

    queryset = Job.objects.all()
    serializer_class = JobSerializer
    action_scopes = {"cancel": Scope.JOBS}
    filterset_fields = ("kind", "status")

    def filter_queryset(self, queryset):
        for field in self.filterset_fields:
            value = self.request.query_params.get(field)
            if value:
                queryset = queryset.filter(**{field: value})
        return super().filter_queryset(queryset)

    @extend_schema(responses={200: JobEventSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def events(self, request, *args, **kwargs):
        job = self.get_object()
        paginator = ChronologicalPagination()
        events = JobEvent.objects.filter(job=job, organization=self.organization)
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(JobEventSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        job = services.job_cancel(job=self.get_object(), actor=self.actor)
        return Response(self.get_serializer(job).data)
