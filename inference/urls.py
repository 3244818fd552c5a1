from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=False)
router.register("models", api.TenantModelViewSet, basename="tenant-model")

# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns = router.urls

# Mounted under /api/v1/ by controlplane.urls.
public_urlpatterns = [path("base-models", api.BaseModelListView.as_view(), name="base-model-list")]
