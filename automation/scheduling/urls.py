from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=False)
router.register("scheduling/machines", api.MachineViewSet, basename="scheduling-machine")
router.register("scheduling/downtimes", api.DowntimeViewSet, basename="scheduling-downtime")
router.register("scheduling/materials", api.MaterialViewSet, basename="scheduling-material")
router.register("scheduling/products", api.ProductViewSet, basename="scheduling-product")
router.register("scheduling/setup-times", api.SetupTimeViewSet, basename="scheduling-setup-time")
router.register("scheduling/orders", api.OrderViewSet, basename="scheduling-order")
router.register("scheduling/suppliers", api.SupplierViewSet, basename="scheduling-supplier")
router.register("scheduling/supplier-prices", api.SupplierPriceViewSet, basename="scheduling-supplier-price")
router.register("scheduling/bom", api.BomLineViewSet, basename="scheduling-bom-line")
router.register("scheduling/tariff", api.TariffRateViewSet, basename="scheduling-tariff-rate")
router.register("scheduling/runs", api.RunViewSet, basename="scheduling-run")

# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns = [
    path("scheduling/import", api.ImportView.as_view(), name="scheduling-import"),
    *router.urls,
]
