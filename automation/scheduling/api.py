"""Production-scheduling API under /api/v1/orgs/{org_slug}/scheduling/: master data, import, runs and results.

Reads need org:read, writes org:write; starting and re-planning runs needs `jobs` (cancelling is the jobs
API's /jobs/{id}/cancel, with the same scope).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from foundation.api.downloads import attachment
from foundation.api.errors import ApiError, error_body
from foundation.api.pagination import CreatedCursorPagination
from tenants.roles import Scope
from tenants.scoping import OrganizationScopedViewMixin

from . import importing, runs, serializers, services
from .models import (
    BomLine,
    Downtime,
    Machine,
    Material,
    Order,
    Product,
    Run,
    SetupTime,
    Supplier,
    SupplierPrice,
    TariffRate,
)
from .outputs import comparison as comparison_json
from .outputs import purchase_rows, purchases_csv, schedule_by_machine, schedule_csv, schedule_png


class _Crud(NamedTuple):
    create: Callable[..., Any]  # (organization=, **fields); some are "set": they replace the row a key names
    update: Callable[..., Any]  # (<row>=, data=)
    delete: Callable[..., None]  # (<row>=)


class _MasterData(OrganizationScopedViewMixin, viewsets.ModelViewSet):
    """CRUD through the services; references by code within the organisation."""

    row: str  # the services' keyword for the row: `machine=`, `supplier_price=`
    crud: _Crud

    def perform_create(self, serializer):
        serializer.instance = self.crud.create(organization=self.organization, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = self.crud.update(**{self.row: serializer.instance}, data=serializer.validated_data)

    def perform_destroy(self, instance):
        self.crud.delete(**{self.row: instance})


class MachineViewSet(_MasterData):
    queryset = Machine.objects.prefetch_related("shifts")
    serializer_class = serializers.MachineSerializer
    row = "machine"
    crud = _Crud(services.machine_create, services.machine_update, services.machine_delete)


class DowntimeViewSet(_MasterData):
    queryset = Downtime.objects.select_related("machine")
    serializer_class = serializers.DowntimeSerializer
    row = "downtime"
    crud = _Crud(services.downtime_create, services.downtime_update, services.downtime_delete)


class MaterialViewSet(_MasterData):
    queryset = Material.objects.all()
    serializer_class = serializers.MaterialSerializer
    row = "material"
    crud = _Crud(services.material_create, services.material_update, services.material_delete)


class ProductViewSet(_MasterData):
    queryset = Product.objects.prefetch_related("operations__options__machine", "operations__materials")
    serializer_class = serializers.ProductSerializer
    row = "product"
    crud = _Crud(services.product_create, services.product_update, services.product_delete)


class SetupTimeViewSet(_MasterData):
    queryset = SetupTime.objects.select_related("machine")
    serializer_class = serializers.SetupTimeSerializer
    row = "setup_time"
    crud = _Crud(services.setup_time_create, services.setup_time_update, services.setup_time_delete)


class OrderViewSet(_MasterData):
    queryset = Order.objects.select_related("product")
    serializer_class = serializers.OrderSerializer
    row = "order"
    crud = _Crud(services.order_create, services.order_update, services.order_delete)


class _IdCursorPagination(CreatedCursorPagination):
    """For rows without a creation time (prices, bill-of-materials lines, tariff hours): pages in id order."""

    ordering = ("id",)  # type: ignore[assignment]  # one unique field is all a cursor needs


class SupplierViewSet(_MasterData):
    queryset = Supplier.objects.select_related("material")
    serializer_class = serializers.SupplierSerializer
    list_filters = {"material": "material__code"}
    row = "supplier"
    crud = _Crud(services.supplier_create, services.supplier_update, services.supplier_delete)


class SupplierPriceViewSet(_MasterData):
    pagination_class = _IdCursorPagination
    queryset = SupplierPrice.objects.select_related("supplier")
    serializer_class = serializers.SupplierPriceSerializer
    list_filters = {"supplier": "supplier__code"}
    row = "supplier_price"
    crud = _Crud(services.supplier_price_set, services.supplier_price_update, services.supplier_price_delete)


class BomLineViewSet(_MasterData):
    pagination_class = _IdCursorPagination
    queryset = BomLine.objects.select_related("product", "material")
    serializer_class = serializers.BomLineSerializer
    list_filters = {"product": "product__code"}
    row = "bom_line"
    crud = _Crud(services.bom_line_set, services.bom_line_update, services.bom_line_delete)


class TariffRateViewSet(_MasterData):
    pagination_class = _IdCursorPagination
    queryset = TariffRate.objects.all()
    serializer_class = serializers.TariffRateSerializer
    row = "tariff_rate"
    crud = _Crud(services.tariff_rate_set, services.tariff_rate_update, services.tariff_rate_delete)


class ImportView(OrganizationScopedViewMixin, GenericAPIView):
    """Bulk import, all or nothing: CSV files (multipart, one field per entity: `machines`, `shifts`,
    `materials`, `products`, `operations`, `setup_times`, `downtimes`, `orders`) or one JSON object with lists
    under the same names. Existing codes are updated. Errors name the file and line, or list and index."""

    parser_classes = [JSONParser, MultiPartParser]
    serializer_class = serializers.ImportResultSerializer

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT, "multipart/form-data": OpenApiTypes.OBJECT},
        responses={200: serializers.ImportResultSerializer},
    )
    def post(self, request, org_slug):
        try:
            rows = self._rows(request)
            result = importing.scheduling_import(organization=self.organization, rows=rows)
        except importing.ImportRejected as rejected:
            return Response(
                error_body(code="invalid", message=str(rejected), fields=rejected.errors),
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"created": dict(result.created), "updated": dict(result.updated)})

    def _rows(self, request) -> list[importing.Row]:
        if not request.content_type.startswith("multipart/"):
            return importing.rows_from_json(request.data)
        if request.POST:
            raise importing.ImportRejected(
                {name: {"non_field_errors": ["Send files, one per entity."]} for name in request.POST}
            )
        return importing.rows_from_csv_files(
            (name, upload) for name, uploads in request.FILES.lists() for upload in uploads
        )


_FILE_ACTIONS = {"schedule_csv", "gantt_png", "purchases_csv"}


class RunViewSet(
    OrganizationScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Optimisation runs: start one (a job on the optimisation queue), follow it, fetch its schedule."""

    # Lists and details leave out the problem and the schedule, which can be large.
    queryset = Run.objects.select_related("job").defer("problem", "schedule", "frozen")
    serializer_class = serializers.RunSerializer
    action_scopes = {"create": Scope.JOBS, "reschedule": Scope.JOBS, "what_if": Scope.JOBS}

    def perform_content_negotiation(self, request, force=False):
        # Downloads answer their own content type whatever Accept says; their errors are JSON.
        return super().perform_content_negotiation(request, force=force or self.action in _FILE_ACTIONS)

    @extend_schema(request=serializers.RunCreateSerializer, responses={201: serializers.RunSerializer})
    def create(self, request, *args, **kwargs):
        data = serializers.RunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        run = runs.run_create(
            organization=self.organization, actor=self.actor, order_codes=fields.pop("orders", None), **fields
        )
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.RescheduleSerializer, responses={201: serializers.RunSerializer})
    @action(detail=True, methods=["post"])
    def reschedule(self, request, *args, **kwargs):
        """Re-plan from `now` after a breakdown or with rush orders; operations already started stay."""
        run = self.get_object()  # 404 for another tenant's run comes before any 400
        data = serializers.RescheduleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        replan = runs.run_reschedule(run=run, actor=self.actor, rush_order_codes=fields.pop("rush_orders"), **fields)
        return Response(self.get_serializer(replan).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.WhatIfSerializer, responses={201: serializers.RunSerializer})
    @action(detail=True, methods=["post"], url_path="what-if", url_name="what-if")
    def what_if(self, request, *args, **kwargs):
        """Re-optimise this cost run's plan under a scenario (prices, tariff, lead times, a machine down, rush
        orders); compare the two with GET .../{new run}/comparison."""
        run = self.get_object()
        data = serializers.WhatIfSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scenario = runs.run_what_if(run=run, actor=self.actor, **data.validated_data)
        return Response(self.get_serializer(scenario).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: serializers.ComparisonSerializer})
    @action(detail=True, methods=["get"])
    def comparison(self, request, *args, **kwargs):
        """This cost run's plan beside its base run's (a what-if's, or a re-plan's): cost delta by kind, orders
        that moved, became late or were declined, purchases that changed, and the base plan kept as it was."""
        run = self._with_schedule()
        parent = run.parent
        if run.objective != Run.Objective.COST or parent is None or parent.schedule is None or not parent.costs:
            raise ApiError(
                "Only a cost run made from another cost run's plan (a what-if or a re-plan) has a comparison.",
                code="no_comparison",
                status_code=status.HTTP_409_CONFLICT,
            )
        return Response(comparison_json(run))

    @extend_schema(responses={200: serializers.MachineScheduleSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def schedule(self, request, *args, **kwargs):
        """The schedule per machine, with datetimes (UTC) and minutes from the horizon start."""
        return Response(schedule_by_machine(self._with_schedule()))

    @extend_schema(
        operation_id="scheduling_runs_schedule_csv", responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)}
    )
    @action(detail=True, methods=["get"], url_path="schedule.csv", url_name="schedule-csv")
    def schedule_csv(self, request, *args, **kwargs):
        """The schedule as CSV, one row per operation ordered by machine then start."""
        run = self._with_schedule()
        return attachment(schedule_csv(run), filename=f"schedule-{run.id}.csv", content_type="text/csv; charset=utf-8")

    @extend_schema(
        operation_id="scheduling_runs_gantt_png", responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY)}
    )
    @action(detail=True, methods=["get"], url_path="gantt.png", url_name="gantt-png")
    def gantt_png(self, request, *args, **kwargs):
        """A Gantt chart: a row per machine, off-shift and downtime shaded, changeovers hatched."""
        return HttpResponse(schedule_png(self._with_schedule()), content_type="image/png")

    @extend_schema(responses={200: serializers.PurchaseOrderSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def purchases(self, request, *args, **kwargs):
        """The purchase orders planned with a cost run's schedule, by order date."""
        return Response(purchase_rows(self._with_schedule()))

    @extend_schema(
        operation_id="scheduling_runs_purchases_csv", responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)}
    )
    @action(detail=True, methods=["get"], url_path="purchases.csv", url_name="purchases-csv")
    def purchases_csv(self, request, *args, **kwargs):
        """The purchase orders as CSV."""
        run = self._with_schedule()
        return attachment(
            purchases_csv(run), filename=f"purchases-{run.id}.csv", content_type="text/csv; charset=utf-8"
        )

    def _with_schedule(self) -> Run:
        run = self.get_object()
        if run.schedule is None:
            raise ApiError(
                f"This run has no schedule (its job is {run.job.status}"
                + (f": {run.job.error_code}" if run.job.error_code else "")
                + ").",
                code="no_schedule",
                status_code=status.HTTP_409_CONFLICT,
            )
        return run
