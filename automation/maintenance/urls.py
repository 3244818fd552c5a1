from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=False)
router.register("maintenance/asset-types", api.AssetTypeViewSet, basename="maintenance-asset-type")
router.register("maintenance/assets", api.AssetViewSet, basename="maintenance-asset")
router.register("maintenance/events", api.AssetEventViewSet, basename="maintenance-event")
router.register("maintenance/models", api.TrainedModelViewSet, basename="maintenance-model")
router.register("maintenance/health", api.AssetHealthViewSet, basename="maintenance-health")
router.register("maintenance/anomalies", api.AnomalyViewSet, basename="maintenance-anomaly")
router.register("maintenance/recommendations", api.RecommendationViewSet, basename="maintenance-recommendation")
router.register("maintenance/work-orders", api.WorkOrderViewSet, basename="maintenance-work-order")
router.register("maintenance/captures", api.CaptureViewSet, basename="maintenance-capture")
router.register("maintenance/diagnoses", api.DiagnosisViewSet, basename="maintenance-diagnosis")
router.register("maintenance/ingestion-keys", api.IngestionKeyViewSet, basename="maintenance-ingestion-key")
router.register("maintenance/webhooks", api.WebhookEndpointViewSet, basename="maintenance-webhook")
router.register("maintenance/webhook-deliveries", api.WebhookDeliveryViewSet, basename="maintenance-webhook-delivery")

# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns = [
    path("maintenance/telemetry", api.TelemetryIngestView.as_view(), name="maintenance-telemetry"),
    path(
        "maintenance/imports/run-to-failure",
        api.RunToFailureImportView.as_view(),
        name="maintenance-import-run-to-failure",
    ),
    path("maintenance/bearings", api.BearingCatalogueView.as_view(), name="maintenance-bearings"),
    *router.urls,
]
