"""Control-plane API for tenant models: create, upload adapter versions, deploy, see placements."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from foundation.api.errors import ApiError
from tenants.scoping import OrganizationScopedViewMixin

from . import serializers, services
from .models import AdapterVersion, BaseModel, TenantModel
from .placement import NoCapacity, placement_ensure


class BaseModelListView(ListAPIView):
    """The shared base models tenants can build on."""

    queryset = BaseModel.objects.order_by("name")
    serializer_class = serializers.BaseModelSerializer
    pagination_class = None


class TenantModelViewSet(
    OrganizationScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = TenantModel.objects.select_related("base_model", "current_version")
    serializer_class = serializers.TenantModelSerializer

    @extend_schema(request=serializers.TenantModelCreateSerializer, responses={201: serializers.TenantModelSerializer})
    def create(self, request, *args, **kwargs):
        data = serializers.TenantModelCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.tenant_model_create(organization=self.organization, **data.validated_data)
        return Response(self.get_serializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": serializers.AdapterUploadSerializer},
        responses={201: serializers.AdapterVersionSerializer},
    )
    @action(detail=True, methods=["post"], url_path="adapters")
    def upload_adapter(self, request, *args, **kwargs):
        """Upload a PEFT adapter (archive) as the model's next version; validated before anything is stored."""
        tenant_model = self.get_object()
        data = serializers.AdapterUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.adapter_version_upload(
            tenant_model=tenant_model,
            archive=data.validated_data["archive"],
            make_current=data.validated_data["deploy"],
        )
        if data.validated_data["deploy"]:
            self._place(version, replicas=1)
        return Response(serializers.AdapterVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.DeploySerializer, responses={200: serializers.TenantModelSerializer})
    @action(detail=True, methods=["post"])
    def deploy(self, request, *args, **kwargs):
        """Load the current version on `replicas` healthy servers of its base model in the organisation's region."""
        tenant_model = self.get_object()
        data = serializers.DeploySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if tenant_model.current_version is None:
            raise ValidationError({"non_field_errors": ["This model has no version to deploy yet."]})
        self._place(tenant_model.current_version, replicas=data.validated_data["replicas"])
        tenant_model.refresh_from_db()
        return Response(self.get_serializer(tenant_model).data)

    @staticmethod
    def _place(version: AdapterVersion, *, replicas: int) -> None:
        try:
            placement_ensure(adapter=version, replicas=replicas)
        except NoCapacity as exc:
            raise ApiError(str(exc), code="no_capacity", status_code=status.HTTP_503_SERVICE_UNAVAILABLE) from exc
