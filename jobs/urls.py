from rest_framework.routers import SimpleRouter

from .api import JobViewSet
from .data_export import DataExportViewSet

router = SimpleRouter(trailing_slash=False)
router.register("jobs", JobViewSet, basename="job")
router.register("data-exports", DataExportViewSet, basename="data-export")

org_urlpatterns = router.urls
