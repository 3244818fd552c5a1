from rest_framework.routers import SimpleRouter

from .api import JobViewSet

router = SimpleRouter(trailing_slash=False)
router.register("jobs", JobViewSet, basename="job")

org_urlpatterns = router.urls
