"""The owner's data-protection endpoints: delete the organisation, and its retention periods per data kind.

(The export is a job, so its endpoints live with the jobs app: `jobs/data_export.py`.)
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from foundation.api.errors import ApiError

from . import erasure, retention
from .actor import Actor
from .models import OrganizationDeletion
from .roles import Role, Scope
from .scoping import OrganizationScopedViewMixin


def require_owner(actor: Actor) -> None:
    """Data-protection actions are the owner's alone: not an admin's, not an API key's."""
    if actor.role != Role.OWNER or actor.user is None:
        raise ApiError(
            "Only an owner of the organisation may do this, signed in as themselves (not with an API key).",
            code="owner_required",
            status_code=status.HTTP_403_FORBIDDEN,
        )


class OwnerOnlyMixin(OrganizationScopedViewMixin):
    method_scopes = dict.fromkeys(OrganizationScopedViewMixin.method_scopes, Scope.ORG_ADMIN)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if "pk" in self.kwargs:
            self.get_object()  # another organisation's object is a 404 before anything else
        require_owner(self.actor)


class DeletionRequestSerializer(serializers.Serializer):
    confirm = serializers.CharField(max_length=50, help_text="The organisation's short name, typed to confirm.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class DeletionSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrganizationDeletion
        fields = ["id", "status", "requested_by_label", "requested_at", "erase_after"]
        read_only_fields = fields


class OrganizationDeletionView(OwnerOnlyMixin, GenericAPIView):
    """Delete the organisation: it is suspended at once and erased after the grace period, unless an operator
    undoes it first. Invoices and the usage ledger are kept (billing law), detached from people."""

    serializer_class = DeletionSerializer

    @extend_schema(
        operation_id="org_deletion_request", request=DeletionRequestSerializer, responses={202: DeletionSerializer}
    )
    def post(self, request, org_slug):
        data = DeletionRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deletion = erasure.organization_deletion_request(
            organization=self.organization, actor=self.actor, **data.validated_data
        )
        return Response(DeletionSerializer(deletion).data, status=status.HTTP_202_ACCEPTED)


class RetentionPeriodSerializer(serializers.Serializer):
    kind = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]  # DRF takes declared fields off the class
    days = serializers.IntegerField(read_only=True)
    default_days = serializers.IntegerField(read_only=True)
    is_default = serializers.BooleanField(read_only=True)


class RetentionUpdateSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=64, help_text="A data kind, as listed by GET.")
    days = serializers.IntegerField(
        min_value=1, max_value=retention.MAX_DAYS, allow_null=True, help_text="null: back to the platform default."
    )


class RetentionView(OrganizationScopedViewMixin, GenericAPIView):
    """How long each kind of the organisation's data is kept (every member may read it; the owner changes it)."""

    serializer_class = RetentionPeriodSerializer
    pagination_class = None
    method_scopes = {**OrganizationScopedViewMixin.method_scopes, "PUT": Scope.ORG_ADMIN}

    @extend_schema(operation_id="org_retention_list", responses={200: RetentionPeriodSerializer(many=True)})
    def get(self, request, org_slug):
        periods = retention.retention_for(organization=self.organization)
        return Response(RetentionPeriodSerializer(periods, many=True).data)

    @extend_schema(
        operation_id="org_retention_set", request=RetentionUpdateSerializer, responses={200: RetentionPeriodSerializer}
    )
    def put(self, request, org_slug):
        require_owner(self.actor)
        data = RetentionUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        period = retention.retention_set(organization=self.organization, actor=self.actor, **data.validated_data)
        return Response(RetentionPeriodSerializer(period).data)
