from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=False)
router.register("quality/stations", api.StationViewSet, basename="quality-station")
router.register("quality/machines", api.MachineViewSet, basename="quality-machine")
router.register("quality/variables", api.ProcessVariableViewSet, basename="quality-variable")
router.register("quality/characteristics", api.CharacteristicViewSet, basename="quality-characteristic")
router.register("quality/lots", api.LotViewSet, basename="quality-lot")
router.register("quality/units", api.UnitViewSet, basename="quality-unit")
router.register("quality/analyses", api.AnalysisViewSet, basename="quality-analysis")
router.register("quality/alarms", api.AlarmViewSet, basename="quality-alarm")
router.register("quality/investigations", api.InvestigationViewSet, basename="quality-investigation")
router.register("quality/containment-actions", api.ContainmentActionViewSet, basename="quality-containment")
router.register("quality/corrective-actions", api.CorrectiveActionViewSet, basename="quality-corrective")
router.register("quality/ingestion-keys", api.IngestionKeyViewSet, basename="quality-ingestion-key")
router.register("quality/webhooks", api.WebhookEndpointViewSet, basename="quality-webhook")
router.register("quality/webhook-deliveries", api.WebhookDeliveryViewSet, basename="quality-webhook-delivery")

# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns = [
    path("quality/ingest/units", api.UnitIngestView.as_view(), name="quality-ingest-units"),
    path("quality/ingest/steps", api.StepIngestView.as_view(), name="quality-ingest-steps"),
    path("quality/ingest/inspections", api.InspectionIngestView.as_view(), name="quality-ingest-inspections"),
    *router.urls,
]
