from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=False)
router.register("assistant/documents", api.DocumentViewSet, basename="assistant-document")

# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns = [
    path("assistant/search", api.SearchView.as_view(), name="assistant-search"),
    *router.urls,
]
